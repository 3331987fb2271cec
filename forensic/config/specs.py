"""The parts of a model configuration: base backbones, heads, streams and the vote."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PRESET_NAMES", "STREAM_NAMES", "BackboneSpec", "HeadConfig", "StreamConfig", "VoteConfig"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STREAM_NAMES = ("texture", "face", "fusion")
#: the architecture presets a config may name; :data:`forensic.presets.PRESETS` defines one for each
PRESET_NAMES = ("paper", "small", "tiny-random")


@dataclass(frozen=True)
class BackboneSpec:
    """A base backbone: its architecture and where its (frozen) weights come from.

    Attributes:
        family: ``"dinov2"`` (built with timm) or ``"clip"`` (the visual tower of open_clip).
        arch: timm model name or open_clip model config name.
        overrides: JSON-able constructor overrides (tiny test configurations).
        hub_id: Hugging Face Hub repo holding the base weights, or None.
        filename: file in that repo.
        revision: pinned commit of that repo (None means the default branch).
        weights_file: a file inside the weights folder holding the base instead of the Hub
            (used for random or converted bases that exist nowhere else).
        init_seed: seed of the random initialisation when there are no base weights at all.
    """

    family: Literal["dinov2", "clip"]
    arch: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    hub_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    weights_file: str | None = None
    init_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackboneSpec:
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class HeadConfig:
    """A stream's classifier head: ``linear`` (D -> 2) or ``mlp`` (D -> hidden -> GELU -> dropout -> 2)."""

    kind: Literal["linear", "mlp"] = "linear"
    hidden: int | None = None
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadConfig:
        return cls(**_known_fields(cls, data))


@dataclass(frozen=True)
class StreamConfig:
    """One stream: how its input is made from the image, and what it runs.

    Attributes:
        name: ``texture``, ``face`` or ``fusion``.
        input: ``center-crop`` (native-resolution centre crop, no resampling), ``face-crop``
            (the face region resized to ``face_size`` then centre-cropped) or ``resize`` (the whole
            image resized to ``size`` x ``size``, aspect not kept).
        size: the square input side fed to the backbone.
        face_size: for ``face-crop``, the side the face region is resized to before the crop.
        mean, std: input normalisation (ImageNet for both backbones, as the authors trained).
        uses_clip: whether the CLIP tower's pooled feature is concatenated to DINOv2's CLS.
        head: the classifier head.
        temperature: calibration temperature applied to the logits (1.0 = uncalibrated).
    """

    name: str
    input: Literal["center-crop", "face-crop", "resize"]
    size: int
    face_size: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    uses_clip: bool = False
    head: HeadConfig = HeadConfig()
    temperature: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamConfig:
        kw = _known_fields(cls, data)
        kw["head"] = HeadConfig.from_dict(kw.get("head", {}))
        kw["mean"], kw["std"] = tuple(kw.get("mean", IMAGENET_MEAN)), tuple(kw.get("std", IMAGENET_STD))
        if "temperature" in kw:
            from ..calibration import bounded_temperature  # one rule for training and inference

            kw["temperature"] = bounded_temperature(kw["temperature"])
        return cls(**kw)


@dataclass(frozen=True)
class VoteConfig:
    """The discretized weighted vote (SEED_FACTS section 4).

    Attributes:
        weights: stream name -> weight (the paper: texture 2, face 1, fusion 2).
        decimals: rounding of each stream's P(fake) and of the result (1 = the 0.1 grid).
        threshold: P(fake) at or above which the label is ``fake``.
        face_fallback: what the face stream does when no usable face crop exists:
            ``vote`` (it still votes on the whole image, as the paper does) or ``abstain``
            (its weight is dropped and the others are renormalised).
    """

    weights: Mapping[str, float] = field(default_factory=lambda: {"texture": 2.0, "face": 1.0, "fusion": 2.0})
    decimals: int = 1
    threshold: float = 0.5
    face_fallback: Literal["vote", "abstain"] = "vote"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VoteConfig:
        kw = _known_fields(cls, data)
        if "weights" in kw:
            kw["weights"] = {k: float(v) for k, v in kw["weights"].items()}
        return cls(**kw)


def _known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields in config: {sorted(unknown)}")
    return dict(data)
