"""The model configuration that travels with the weights (``config.json``).

A :class:`ModelConfig` says everything needed to rebuild a detector: which base backbones (and
where their weights come from, at which revision), the LoRA settings, each stream's
preprocessing and head, the calibration temperatures and the vote. Presets
(:mod:`forensic.presets`) are just named ``ModelConfig`` values.

A ``config.json`` comes from outside (a folder, a Hub repo), so :meth:`ModelConfig.from_dict`
checks all of it before anything is built: types, ranges, known base architectures and their
sizes, paths that stay inside the weights folder. A bad field is one :class:`ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

from .lora import LoraConfig

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "STREAM_NAMES",
    "BASE_ARCHS",
    "MAX_BASE_PARAMS",
    "ConfigError",
    "check_config_dict",
    "BackboneSpec",
    "HeadConfig",
    "StreamConfig",
    "VoteConfig",
    "ModelConfig",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STREAM_NAMES = ("texture", "face", "fusion")
FORMAT_VERSION = 1

#: the base architectures a config may name, with their (depth, width, heads): DINOv2 in timm,
#: CLIP towers in open_clip. Overrides may change the sizes within the bounds below.
BASE_ARCHS: dict[str, dict[str, tuple[int, int, int]]] = {
    "dinov2": {
        f"vit_{size}_patch14{reg}_dinov2": dims
        for size, dims in (("small", (12, 384, 6)), ("base", (12, 768, 12)), ("large", (24, 1024, 16)), ("giant", (40, 1536, 24)))
        for reg in ("", "_reg4")
    },
    "clip": {
        f"{name}{act}": dims
        for name, dims in (("ViT-B-32", (12, 768, 12)), ("ViT-B-16", (12, 768, 12)), ("ViT-L-14", (24, 1024, 16)),
                           ("ViT-L-14-336", (24, 1024, 16)), ("ViT-H-14", (32, 1280, 16)))
        for act in ("", "-quickgelu")
    },
}
#: the most parameters one base may have (about 8 GB in float32); DINOv2-giant has 1.1 billion
MAX_BASE_PARAMS = 2_000_000_000


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
            from .calibration import bounded_temperature  # one rule for training and inference

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


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a detector; serialised as the weights folder's ``config.json``."""

    preset: str
    dinov2: BackboneSpec
    clip: BackboneSpec | None
    lora: LoraConfig | None
    streams: tuple[StreamConfig, ...]
    vote: VoteConfig = VoteConfig()
    untrained: bool = False
    description: str = ""
    #: free-form provenance (training recipe, metrics, conversion source)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def stream(self, name: str) -> StreamConfig:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(f"no stream named {name!r}; this model has {[s.name for s in self.streams]}")

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.streams)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def with_stream(self, stream: StreamConfig) -> ModelConfig:
        """Returns a copy where the stream of the same name is replaced (or added)."""
        streams = [stream if s.name == stream.name else s for s in self.streams]
        if stream.name not in self.stream_names:
            streams.append(stream)
        return self.replace(streams=tuple(streams))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "preset": self.preset,
            "description": self.description,
            "untrained": self.untrained,
            "dinov2": self.dinov2.to_dict(),
            "clip": self.clip.to_dict() if self.clip else None,
            "lora": self.lora.to_dict() if self.lora else None,
            "streams": [s.to_dict() for s in self.streams],
            "vote": self.vote.to_dict(),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Builds a config from its JSON form, after :func:`check_config_dict` (raises :class:`ConfigError`)."""
        check_config_dict(data)
        return cls(
            preset=data["preset"],
            description=data.get("description", ""),
            untrained=bool(data.get("untrained", False)),
            dinov2=BackboneSpec.from_dict(data["dinov2"]),
            clip=BackboneSpec.from_dict(data["clip"]) if data.get("clip") else None,
            lora=LoraConfig.from_dict(data["lora"]) if data.get("lora") else None,
            streams=tuple(StreamConfig.from_dict(s) for s in data["streams"]),
            vote=VoteConfig.from_dict(data.get("vote", {})),
            meta=dict(data.get("meta", {})),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json_file(cls, path: str | Path) -> ModelConfig:
        """Reads and checks a ``config.json``.

        Raises:
            ConfigError: not JSON, or a field is missing, of the wrong type or out of range.
            OSError: the file cannot be read.
        """
        path = Path(path)
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"is {path.stat().st_size} bytes long; a config.json is a few kilobytes")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError("", "is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise ConfigError("", f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        return cls.from_dict(data)


def _known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields in config: {sorted(unknown)}")
    return dict(data)


# --------------------------------------------------------------------------------- checking config.json
#: a config.json is a few kilobytes; refuse to parse anything absurdly large
MAX_CONFIG_BYTES = 1 << 20
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# constructor overrides a config may give, with their bounds (others could allocate without end)
_DINOV2_OVERRIDES: dict[str, tuple[type, float, float]] = {
    "embed_dim": (int, 1, 4096),
    "depth": (int, 1, 64),
    "num_heads": (int, 1, 64),
    "mlp_ratio": (float, 0.25, 8),
    "init_values": (float, 0, 10),
    "img_size": (int, 14, 1036),
    "patch_size": (int, 8, 32),
}
_CLIP_OVERRIDES: dict[str, tuple[type, float, float]] = {"embed_dim": (int, 1, 4096)}
_CLIP_VISION: dict[str, tuple[type, float, float]] = {
    "layers": (int, 1, 64),
    "width": (int, 1, 4096),
    "head_width": (int, 1, 4096),
    "mlp_ratio": (float, 0.25, 8),
    "image_size": (int, 32, 1036),
    "patch_size": (int, 8, 32),
}


class ConfigError(ValueError):
    """A ``config.json`` that cannot be used: the message names the field and what is wrong with it.

    Attributes:
        field: the field's path, e.g. ``streams[0].temperature`` ("" for the file as a whole).
        problem: what is wrong, e.g. ``must be a number > 0, got -1.0``.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"config.json field {field} {problem}" if field else f"config.json {problem}")


def check_config_dict(data: Any) -> None:
    """Checks an untrusted ``config.json`` object before anything is built from it.

    Every field is checked for type and range; base architectures must be known ones
    (:data:`BASE_ARCHS`) and their overridden sizes bounded (:data:`MAX_BASE_PARAMS`); base files
    must stay inside the weights folder; temperatures must be positive.

    Raises:
        ConfigError: naming the first bad field.
    """
    top = _object(data, "")
    _only(top, {"format_version", *(f.name for f in dataclasses.fields(ModelConfig))}, "")
    version = _int(top.get("format_version", FORMAT_VERSION), "format_version", 1, None)
    if version > FORMAT_VERSION:
        raise ConfigError(
            "format_version", f"is {version}, newer than this library understands ({FORMAT_VERSION}): upgrade the forensic package"
        )
    from .presets import PRESETS  # presets are built from this module's classes

    _choice(_required(top, "preset", ""), "preset", tuple(PRESETS))
    _str(top.get("description", ""), "description")
    _bool(top.get("untrained", False), "untrained")
    _object(top.get("meta", {}), "meta")
    _check_backbone(_required(top, "dinov2", ""), "dinov2")
    if top.get("clip") is not None:
        _check_backbone(top["clip"], "clip")
    if top.get("lora") is not None:
        _check_lora(top["lora"])
    streams = _list(_required(top, "streams", ""), "streams", 1, len(STREAM_NAMES))
    names = [_check_stream(s, f"streams[{i}]", has_clip=top.get("clip") is not None) for i, s in enumerate(streams)]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"streams[{i}].name", f"repeats the stream {name!r}")
    _check_vote(top.get("vote", {}), names)


def _check_backbone(value: Any, where: str) -> None:
    spec = _object(value, where)
    _only(spec, {f.name for f in dataclasses.fields(BackboneSpec)}, where)
    _choice(_required(spec, "family", where), f"{where}.family", (where,))
    arch = _choice(_required(spec, "arch", where), f"{where}.arch", tuple(BASE_ARCHS[where]))
    depth, width, heads = BASE_ARCHS[where][arch]
    overrides = _object(spec.get("overrides", {}), f"{where}.overrides")
    mlp_ratio = 4.0
    if where == "dinov2":
        _bounded(overrides, _DINOV2_OVERRIDES, f"{where}.overrides")
        depth, width = overrides.get("depth", depth), overrides.get("embed_dim", width)
        heads, mlp_ratio = overrides.get("num_heads", heads), overrides.get("mlp_ratio", mlp_ratio)
        if width % heads:
            raise ConfigError(f"{where}.overrides", f"gives embed_dim {width}, which {heads} heads do not divide")
    else:
        _only(overrides, {*_CLIP_OVERRIDES, "vision_cfg"}, f"{where}.overrides")
        _bounded({k: v for k, v in overrides.items() if k != "vision_cfg"}, _CLIP_OVERRIDES, f"{where}.overrides")
        vision = _object(overrides.get("vision_cfg", {}), f"{where}.overrides.vision_cfg")
        _bounded(vision, _CLIP_VISION, f"{where}.overrides.vision_cfg")
        depth, width = vision.get("layers", depth), vision.get("width", width)
        head_width, mlp_ratio = vision.get("head_width", 64), vision.get("mlp_ratio", mlp_ratio)
        if width % head_width:
            raise ConfigError(f"{where}.overrides.vision_cfg", f"gives width {width}, which head_width {head_width} does not divide")
    # a ViT block holds about (4 + 2 * mlp_ratio) * width^2 parameters (attention + MLP)
    params = depth * (4 + 2 * mlp_ratio) * width * width
    if params > MAX_BASE_PARAMS:
        raise ConfigError(
            f"{where}.overrides",
            f"make the base about {params / 1e9:.1f} billion parameters ({depth} blocks of width {width}); "
            f"the limit is {MAX_BASE_PARAMS / 1e9:.0f} billion",
        )
    hub_id = _optional_str(spec.get("hub_id"), f"{where}.hub_id")
    if hub_id is not None and not _HUB_ID.match(hub_id):
        raise ConfigError(f"{where}.hub_id", f"must look like owner/repo, got {hub_id!r}")
    for key in ("filename", "weights_file"):
        path = _optional_str(spec.get(key), f"{where}.{key}")
        if path is not None:
            _inside(path, f"{where}.{key}")
    weights_file = spec.get("weights_file")
    if weights_file is not None and not weights_file.endswith(".safetensors"):
        raise ConfigError(f"{where}.weights_file", f"must name a .safetensors file, got {weights_file!r}")
    revision = _optional_str(spec.get("revision"), f"{where}.revision")
    if revision is not None and not re.fullmatch(r"[\w./-]{1,100}", revision):
        raise ConfigError(f"{where}.revision", f"must be a commit hash, branch or tag, got {revision!r}")
    if spec.get("init_seed") is not None and _int(spec["init_seed"], f"{where}.init_seed", 0, None) >= 2**64:
        raise ConfigError(f"{where}.init_seed", "must be below 2**64 (a torch.Generator seed)")


def _check_lora(value: Any) -> None:
    lora = _object(value, "lora")
    _only(lora, {"rank", "alpha", "dropout", "targets"}, "lora")
    _int(_required(lora, "rank", "lora"), "lora.rank", 1, 1024)
    _number(_required(lora, "alpha", "lora"), "lora.alpha", 0, None, low_open=True)
    _number(lora.get("dropout", 0.0), "lora.dropout", 0, 1, high_open=True)
    if "targets" in lora:
        for i, target in enumerate(_list(lora["targets"], "lora.targets", 1, 16)):
            if not _str(target, f"lora.targets[{i}]") or len(target) > 100:
                raise ConfigError(f"lora.targets[{i}]", "must name a Linear module inside a block, e.g. attn.qkv")


def _check_stream(value: Any, where: str, *, has_clip: bool) -> str:
    stream = _object(value, where)
    _only(stream, {f.name for f in dataclasses.fields(StreamConfig)}, where)
    name = _choice(_required(stream, "name", where), f"{where}.name", STREAM_NAMES)
    _choice(_required(stream, "input", where), f"{where}.input", ("center-crop", "face-crop", "resize"))
    size = _int(_required(stream, "size", where), f"{where}.size", 14, 1036)
    if stream.get("face_size") is not None:
        _int(stream["face_size"], f"{where}.face_size", size, 4096)
    for key, positive in (("mean", False), ("std", True)):
        if key in stream:
            for i, x in enumerate(_list(stream[key], f"{where}.{key}", 3, 3)):
                _number(x, f"{where}.{key}[{i}]", 0 if positive else None, None, low_open=positive)
    if _bool(stream.get("uses_clip", False), f"{where}.uses_clip") and not has_clip:
        raise ConfigError(f"{where}.uses_clip", "is true but the config has no clip base")
    head = _object(stream.get("head", {}), f"{where}.head")
    _only(head, {f.name for f in dataclasses.fields(HeadConfig)}, f"{where}.head")
    kind = _choice(head.get("kind", "linear"), f"{where}.head.kind", ("linear", "mlp"))
    if head.get("hidden") is not None or kind == "mlp":
        _int(_required(head, "hidden", f"{where}.head"), f"{where}.head.hidden", 1, 16384)
    _number(head.get("dropout", 0.0), f"{where}.head.dropout", 0, 1, high_open=True)
    _number(stream.get("temperature", 1.0), f"{where}.temperature", 0, None, low_open=True)
    return name


def _check_vote(value: Any, streams: list[str]) -> None:
    vote = _object(value, "vote")
    _only(vote, {f.name for f in dataclasses.fields(VoteConfig)}, "vote")
    if "weights" in vote:
        weights = _object(vote["weights"], "vote.weights")
        for key, weight in weights.items():
            if key not in STREAM_NAMES:
                raise ConfigError(f"vote.weights.{key}", f"is not a stream (the streams are {', '.join(STREAM_NAMES)})")
            _number(weight, f"vote.weights.{key}", 0, None)
        missing = [n for n in streams if n not in weights]
        if missing:
            raise ConfigError("vote.weights", f"has no weight for the stream(s) {missing}")
        if not any(weights[n] > 0 for n in streams):
            raise ConfigError("vote.weights", f"are all zero for the streams {streams}")
    _int(vote.get("decimals", 1), "vote.decimals", 0, 6)
    _number(vote.get("threshold", 0.5), "vote.threshold", 0, 1)
    _choice(vote.get("face_fallback", "vote"), "vote.face_fallback", ("vote", "abstain"))


# ---- field checks: each returns the value, or raises ConfigError naming the field
def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"must be a JSON object, not {_kind(value)}")
    return value


def _list(value: Any, where: str, low: int, high: int) -> list:
    if not isinstance(value, list):
        raise ConfigError(where, f"must be a list, not {_kind(value)}")
    if not low <= len(value) <= high:
        count = f"{low}" if low == high else f"{low} to {high}"
        raise ConfigError(where, f"must hold {count} items, got {len(value)}")
    return value


def _required(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}.{key}" if where else key, "is missing (it is required)")
    return data[key]


def _only(data: Mapping[str, Any], allowed: set[str] | Mapping, where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        field = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(field, f"is not a known field (known: {', '.join(sorted(allowed))})")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, f"must be a string, not {_kind(value)}")
    return value


def _optional_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, f"must be true or false, not {_show(value)}")
    return value


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(where, f"must be one of {', '.join(choices)}; got {_show(value)}")
    return value


def _int(value: Any, where: str, low: int | None, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, f"must be an integer, not {_show(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise ConfigError(where, f"must be an integer {bound}, got {value}")
    return value


def _number(
    value: Any, where: str, low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(where, f"must be a finite number, not {_show(value)}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        if high is None:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(where, f"must be a number {bound}, got {value:g}")
    return float(value)


def _bounded(data: Mapping[str, Any], bounds: Mapping[str, tuple[type, float, float]], where: str) -> None:
    _only(data, bounds, where)
    for key, value in data.items():
        kind, low, high = bounds[key]
        if kind is int:
            _int(value, f"{where}.{key}", int(low), int(high))
        else:
            _number(value, f"{where}.{key}", low, high)


def _inside(path: str, where: str) -> None:
    """A file name from the config must stay inside its folder: relative, no ``..``, no drive."""
    posix, windows = PurePosixPath(path), PureWindowsPath(path)
    if not path or posix.is_absolute() or windows.is_absolute() or windows.drive or path.startswith(("/", "\\")):
        raise ConfigError(where, f"must be a file name inside the weights folder, not the absolute path {path!r}")
    if ".." in posix.parts or ".." in windows.parts or "\\" in path or "\x00" in path:
        raise ConfigError(where, f"must be a file name inside the weights folder, not {path!r}")
