"""The checks of a config's parts (backbones, LoRA, streams, vote), with their bounds.

Base architectures must be known ones (:data:`BASE_ARCHS`) and their overridden sizes bounded
(:data:`MAX_BASE_PARAMS`): a config from outside must not make the library allocate without end.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from .fields import (
    ConfigError,
    as_bool,
    as_choice,
    as_int,
    as_list,
    as_number,
    as_object,
    as_optional_str,
    as_str,
    check_bounded,
    check_inside,
    only_known,
    required,
)
from .specs import STREAM_NAMES, BackboneSpec, HeadConfig, StreamConfig, VoteConfig

__all__ = ["BASE_ARCHS", "MAX_BASE_PARAMS", "check_backbone", "check_lora", "check_stream", "check_vote"]

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


def check_backbone(value: Any, where: str) -> None:
    spec = as_object(value, where)
    only_known(spec, {f.name for f in dataclasses.fields(BackboneSpec)}, where)
    as_choice(required(spec, "family", where), f"{where}.family", (where,))
    arch = as_choice(required(spec, "arch", where), f"{where}.arch", tuple(BASE_ARCHS[where]))
    depth, width, heads = BASE_ARCHS[where][arch]
    overrides = as_object(spec.get("overrides", {}), f"{where}.overrides")
    mlp_ratio = 4.0
    if where == "dinov2":
        check_bounded(overrides, _DINOV2_OVERRIDES, f"{where}.overrides")
        depth, width = overrides.get("depth", depth), overrides.get("embed_dim", width)
        heads, mlp_ratio = overrides.get("num_heads", heads), overrides.get("mlp_ratio", mlp_ratio)
        if width % heads:
            raise ConfigError(f"{where}.overrides", f"gives embed_dim {width}, which {heads} heads do not divide")
    else:
        only_known(overrides, {*_CLIP_OVERRIDES, "vision_cfg"}, f"{where}.overrides")
        check_bounded({k: v for k, v in overrides.items() if k != "vision_cfg"}, _CLIP_OVERRIDES, f"{where}.overrides")
        vision = as_object(overrides.get("vision_cfg", {}), f"{where}.overrides.vision_cfg")
        check_bounded(vision, _CLIP_VISION, f"{where}.overrides.vision_cfg")
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
    hub_id = as_optional_str(spec.get("hub_id"), f"{where}.hub_id")
    if hub_id is not None and not _HUB_ID.match(hub_id):
        raise ConfigError(f"{where}.hub_id", f"must look like owner/repo, got {hub_id!r}")
    for key in ("filename", "weights_file"):
        path = as_optional_str(spec.get(key), f"{where}.{key}")
        if path is not None:
            check_inside(path, f"{where}.{key}")
    weights_file = spec.get("weights_file")
    if weights_file is not None and not weights_file.endswith(".safetensors"):
        raise ConfigError(f"{where}.weights_file", f"must name a .safetensors file, got {weights_file!r}")
    revision = as_optional_str(spec.get("revision"), f"{where}.revision")
    if revision is not None and not re.fullmatch(r"[\w./-]{1,100}", revision):
        raise ConfigError(f"{where}.revision", f"must be a commit hash, branch or tag, got {revision!r}")
    if spec.get("init_seed") is not None and as_int(spec["init_seed"], f"{where}.init_seed", 0, None) >= 2**64:
        raise ConfigError(f"{where}.init_seed", "must be below 2**64 (a torch.Generator seed)")


def check_lora(value: Any) -> None:
    lora = as_object(value, "lora")
    only_known(lora, {"rank", "alpha", "dropout", "targets"}, "lora")
    as_int(required(lora, "rank", "lora"), "lora.rank", 1, 1024)
    as_number(required(lora, "alpha", "lora"), "lora.alpha", 0, None, low_open=True)
    as_number(lora.get("dropout", 0.0), "lora.dropout", 0, 1, high_open=True)
    if "targets" in lora:
        for i, target in enumerate(as_list(lora["targets"], "lora.targets", 1, 16)):
            if not as_str(target, f"lora.targets[{i}]") or len(target) > 100:
                raise ConfigError(f"lora.targets[{i}]", "must name a Linear module inside a block, e.g. attn.qkv")


def check_stream(value: Any, where: str, *, has_clip: bool) -> str:
    stream = as_object(value, where)
    only_known(stream, {f.name for f in dataclasses.fields(StreamConfig)}, where)
    name = as_choice(required(stream, "name", where), f"{where}.name", STREAM_NAMES)
    as_choice(required(stream, "input", where), f"{where}.input", ("center-crop", "face-crop", "resize"))
    size = as_int(required(stream, "size", where), f"{where}.size", 14, 1036)
    if stream.get("face_size") is not None:
        as_int(stream["face_size"], f"{where}.face_size", size, 4096)
    for key, positive in (("mean", False), ("std", True)):
        if key in stream:
            for i, x in enumerate(as_list(stream[key], f"{where}.{key}", 3, 3)):
                as_number(x, f"{where}.{key}[{i}]", 0 if positive else None, None, low_open=positive)
    if as_bool(stream.get("uses_clip", False), f"{where}.uses_clip") and not has_clip:
        raise ConfigError(f"{where}.uses_clip", "is true but the config has no clip base")
    head = as_object(stream.get("head", {}), f"{where}.head")
    only_known(head, {f.name for f in dataclasses.fields(HeadConfig)}, f"{where}.head")
    kind = as_choice(head.get("kind", "linear"), f"{where}.head.kind", ("linear", "mlp"))
    if head.get("hidden") is not None or kind == "mlp":
        as_int(required(head, "hidden", f"{where}.head"), f"{where}.head.hidden", 1, 16384)
    as_number(head.get("dropout", 0.0), f"{where}.head.dropout", 0, 1, high_open=True)
    as_number(stream.get("temperature", 1.0), f"{where}.temperature", 0, None, low_open=True)
    return name


def check_vote(value: Any, streams: list[str]) -> None:
    vote = as_object(value, "vote")
    only_known(vote, {f.name for f in dataclasses.fields(VoteConfig)}, "vote")
    if "weights" in vote:
        weights = as_object(vote["weights"], "vote.weights")
        for key, weight in weights.items():
            if key not in STREAM_NAMES:
                raise ConfigError(f"vote.weights.{key}", f"is not a stream (the streams are {', '.join(STREAM_NAMES)})")
            as_number(weight, f"vote.weights.{key}", 0, None)
        missing = [n for n in streams if n not in weights]
        if missing:
            raise ConfigError("vote.weights", f"has no weight for the stream(s) {missing}")
        if not any(weights[n] > 0 for n in streams):
            raise ConfigError("vote.weights", f"are all zero for the streams {streams}")
    as_int(vote.get("decimals", 1), "vote.decimals", 0, 6)
    as_number(vote.get("threshold", 0.5), "vote.threshold", 0, 1)
    as_choice(vote.get("face_fallback", "vote"), "vote.face_fallback", ("vote", "abstain"))
