"""The stages of an analysis, each with one job and plain inputs and outputs.

::

    load      source -> Loaded          decode safely, then the optional degradation (CPU)
    locate    Loaded -> FaceResult      MTCNN, batched across images (the model's device)
    prepare   Loaded + face -> Prepared what each stream sees (CPU)
    forward   [Prepared] -> Forwarded   one batched pass per input size (the device)
    assemble  Prepared + HostOutputs -> Report   vote, calibration, stability (CPU)

:class:`forensic.pipeline.Detector` composes them for one image (``analyze``), for many
(``analyze_many``, overlapping the CPU stages with the device, :mod:`forensic.batching`), and for
the robustness sweep; nothing else re-implements the vote, stability or preprocessing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .config import ModelConfig
from .ensemble import vote
from .explain.attention import attention_entropy
from .explain.similarity import cosine, feature_similarity
from .faces import FaceResult
from .images import DecodedImage, bounded, decode_image
from .model import ForensicModel, StreamOutput
from .report import DegradationInfo, Report, StreamReport
from .streams import StreamInput, prepare_inputs, to_tensor

__all__ = [
    "Loaded",
    "Prepared",
    "Forwarded",
    "HostOutput",
    "load",
    "prepare",
    "forward",
    "to_host",
    "assemble",
    "stability",
    "timed",
]


@dataclass(frozen=True)
class Loaded:
    """A decoded image, maybe degraded.

    Attributes:
        source: a name for the report (the path when the input was one).
        decoded: the decoded input.
        image: what the streams analyse: the decoded pixels, or their degraded copy.
        degradation: what was applied, or None.
        timings: seconds per stage so far (filled in by later stages too).
    """

    source: str | None
    decoded: DecodedImage
    image: np.ndarray
    degradation: DegradationInfo | None = None
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def clean(self) -> np.ndarray | None:
        """The image before degradation (None when nothing was applied)."""
        return self.decoded.pixels if self.degradation is not None else None


@dataclass(frozen=True)
class Prepared:
    """A loaded image with its face analysis and each stream's input."""

    loaded: Loaded
    face: FaceResult
    inputs: dict[str, StreamInput]


@dataclass(frozen=True)
class HostOutput:
    """One stream's outputs for one image, on the host in float32."""

    prob_fake: float
    logits: tuple[float, ...]
    cls: np.ndarray
    features: np.ndarray
    cls_attention: torch.Tensor | None


@dataclass(frozen=True)
class Forwarded:
    """One batched forward pass: the device tensors (Score-CAM needs them) and outputs."""

    tensors: dict[str, torch.Tensor]
    outputs: dict[str, StreamOutput]

    def host(self) -> list[dict[str, HostOutput]]:
        """Per image, each stream's outputs on the host (one transfer per tensor kind and stream)."""
        return to_host(self.outputs)


@contextmanager
def timed(timings: dict[str, float], stage: str, share: int = 1) -> Iterator[None]:
    """Adds the seconds spent in the block (divided by ``share`` images) to ``timings[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) / share


# ------------------------------------------------------------------------------------------ load
def load(
    image: Any,
    *,
    degradation: str | None = None,
    compound: float | None = None,
    seed: int = 0,
    source: str | None = None,
    max_pixels: int | None = None,
) -> Loaded:
    """Decodes ``image`` (a path, bytes, PIL image, array or :class:`DecodedImage`) and degrades it.

    ``max_pixels`` bounds the memory of what follows: a larger image is scaled down to fit before
    the degradation, and the report's notes say so (see :func:`forensic.images.bounded`).

    Raises:
        forensic.images.ImageError: the input is not a usable image.
        forensic.degrade.SpecError: the degradation spec is invalid.
    """
    timings: dict[str, float] = {}
    with timed(timings, "decode"):
        if isinstance(image, DecodedImage):
            decoded = image if max_pixels is None else bounded(image, max_pixels)
        else:
            decoded = decode_image(image, fit=max_pixels)
    if source is None and isinstance(image, (str, os.PathLike)):
        source = os.fspath(image)
    if degradation is None and compound is None:
        return Loaded(source, decoded, decoded.pixels, None, timings)
    with timed(timings, "degrade"):
        pixels, info = degrade(decoded.pixels, degradation, compound, seed)
    return Loaded(source, decoded, pixels, info, timings)


def degrade(image: np.ndarray, spec: str | None, compound: float | None, seed: int) -> tuple[np.ndarray, DegradationInfo]:
    """``image`` degraded by a spec or the compound engine, and the record of what was applied."""
    from .degrade import degrade_result, psnr

    result = degrade_result(image, spec, compound=compound, seed=seed)
    applied = tuple({"name": op.name, "params": dict(op.params), "stage": op.stage} for op in result.applied)
    info = DegradationInfo(
        spec=str(spec) if spec is not None else None, compound=compound, seed=seed, applied=applied, psnr=psnr(image, result.image)
    )
    return result.image, info


# --------------------------------------------------------------------------------------- prepare
def prepare(loaded: Loaded, face: FaceResult, config: ModelConfig, *, clean: bool = False) -> Prepared:
    """What each stream sees of the loaded image (or, with ``clean``, of its undegraded original)."""
    image = loaded.clean if clean else loaded.image
    if image is None:
        raise ValueError("this image was not degraded: it has no separate clean original")
    return Prepared(loaded=loaded, face=face, inputs=prepare_inputs(image, config.streams, face=face))


# --------------------------------------------------------------------------------------- forward
def forward(
    model: ForensicModel,
    inputs: Sequence[Mapping[str, StreamInput]],
    *,
    return_norm1: bool = False,
    return_attention: bool = True,
    run: Callable[..., dict[str, StreamOutput]] | None = None,
) -> Forwarded:
    """One batched pass of every stream over several images' inputs (no host synchronisation).

    ``return_attention=False`` skips the CLS attention (and so the reports' attention entropy),
    for callers that only want probabilities (a distillation teacher). ``run`` replaces
    ``model.forward_streams`` (e.g. its compiled form, :mod:`forensic.compiled`).
    """
    device, dtype = _device_dtype(model)
    tensors = {
        s.name: to_tensor([inp[s.name].pixels for inp in inputs], s, device=device, dtype=dtype) for s in model.config.streams
    }
    with torch.inference_mode():
        outputs = (run or model.forward_streams)(tensors, return_attention=return_attention, return_norm1=return_norm1)
    return Forwarded(tensors=tensors, outputs=outputs)


def _device_dtype(model: ForensicModel) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


def to_host(outputs: Mapping[str, StreamOutput]) -> list[dict[str, HostOutput]]:
    """Splits a batch's outputs per image, on the host in float32."""
    per_stream = {}
    for name, out in outputs.items():
        att = None if out.cls_attention is None else out.cls_attention.float().cpu()
        per_stream[name] = (
            out.prob_fake.float().cpu().numpy(),
            out.logits.float().cpu().numpy(),
            out.cls.float().cpu().numpy(),
            out.features.float().cpu().numpy(),
            att,
        )
    n = len(next(iter(per_stream.values()))[0]) if per_stream else 0
    return [
        {
            name: HostOutput(
                prob_fake=float(prob[i]),
                logits=tuple(float(v) for v in logits[i]),
                cls=cls[i],
                features=feats[i],
                cls_attention=None if att is None else att[i],
            )
            for name, (prob, logits, cls, feats, att) in per_stream.items()
        }
        for i in range(n)
    ]


# -------------------------------------------------------------------------------------- assemble
def stability(clean: Mapping[str, np.ndarray], degraded: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per stream, the cosine between its pooled feature on the clean and on the degraded image."""
    return {name: cosine(clean[name], degraded[name]) for name in degraded if name in clean}


def assemble(
    prepared: Prepared,
    host: Mapping[str, HostOutput],
    *,
    config: ModelConfig,
    weights: str | None,
    device: str,
    clean: Mapping[str, HostOutput] | None = None,
) -> Report:
    """The report of one image: calibrated stream probabilities, the vote, similarity, stability.

    Args:
        prepared: the image, its face analysis and stream inputs.
        host: each stream's outputs on the host (see :func:`to_host`).
        config: the model's configuration (vote rules, preset, untrained flag).
        weights: where the weights came from, for the report.
        device: the device the streams ran on, for the report.
        clean: the same streams' outputs on the clean image, when the image was degraded and
            stability is wanted.
    """
    loaded = prepared.loaded
    timings = loaded.timings
    with timed(timings, "vote"):
        probs = {n: o.prob_fake for n, o in host.items()}
        verdict = vote(probs, config.vote, face_fallback=prepared.face.mode != "crop")
    stable = stability({n: o.features for n, o in clean.items()}, {n: o.features for n, o in host.items()}) if clean else {}
    streams = {
        name: StreamReport(
            name=name,
            prob_fake=probs[name],
            vote_prob=verdict.stream_probs[name],
            weight=float(verdict.weights.get(name, 0.0)),
            logits=out.logits,
            input=prepared.inputs[name],
            attention=None if out.cls_attention is None else attention_entropy(out.cls_attention),
            stability=stable.get(name),
            cls=out.cls,
            features=out.features,
        )
        for name, out in host.items()
    }
    decoded = loaded.decoded
    return Report(
        source=loaded.source,
        prob_fake=verdict.prob_fake,
        label=verdict.label,
        vote=verdict,
        streams=streams,
        face=prepared.face,
        preset=config.preset,
        untrained=config.untrained,
        weights=weights,
        device=device,
        image_size=(decoded.width, decoded.height),
        image_notes=decoded.notes,
        degradation=loaded.degradation,
        feature_similarity=feature_similarity({n: s.cls for n, s in streams.items()}),
        timings=timings,
        image=loaded.image,
        original=loaded.clean,
    )
