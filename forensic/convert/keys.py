"""The authors' keys -> timm (DINOv2), open_clip (CLIP) and our stream file (adapters, head).

Each function returns what it mapped and the keys it could not map; the caller lists those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..config import HeadConfig
from .adapters import LORA_KEY, layer_adapters, one_rank
from .errors import ConversionError

__all__ = ["convert_clip", "convert_dinov2", "convert_head", "split_parts"]

# segments that may precede the DINOv2 model's own keys in the authors' wrappers
_WRAPPER_SEGMENTS = {"module", "backbone", "vision_model", "base_model", "model", "dinov2", "encoder_model"}
_DINO_ROOTS = {"embeddings", "encoder", "layernorm"}
_HEAD_ROOTS = {"last_layer", "fusion_head"}
# tensors that exist in the checkpoints but have no counterpart at inference, dropped on purpose
_DROPPED = (
    re.compile(r"^embeddings\.mask_token$"),  # DINOv2 masked-image-modelling token
    re.compile(r"^embeddings\.position_ids$"),  # CLIP buffer saved by old transformers
    re.compile(r"^visual_projection\.weight$"),  # CLIP projection into the text space (unused)
)


# --------------------------------------------------------------------------------- key classification
def split_parts(state: Mapping[str, torch.Tensor]):
    dino: dict[str, torch.Tensor] = {}
    clip: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    unmatched: list[str] = []
    for key, value in state.items():
        seg = key.split(".")
        if "clip_model" in seg:
            rest = seg[seg.index("clip_model") + 1 :]
            if rest and rest[0] == "vision_model":
                rest = rest[1:]
            clip[".".join(rest)] = value
            continue
        head_at = next((i for i, s in enumerate(seg) if s in _HEAD_ROOTS), None)
        if head_at is not None and set(seg[:head_at]) <= _WRAPPER_SEGMENTS:
            head[".".join(seg[head_at:])] = value
            continue
        root = next((i for i, s in enumerate(seg) if s in _DINO_ROOTS), None)
        if root is not None and set(seg[:root]) <= _WRAPPER_SEGMENTS:
            dino[".".join(seg[root:])] = value
            continue
        unmatched.append(key)
    return dino, clip, head, unmatched


# --------------------------------------------------------------------------------- DINOv2
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
# attention projections in both transformers layouts -> (which, part)
_ATTN = {
    "attention.attention.query": "q",
    "attention.attention.key": "k",
    "attention.attention.value": "v",
    "attention.output.dense": "o",
    "attention.q_proj": "q",
    "attention.k_proj": "k",
    "attention.v_proj": "v",
    "attention.o_proj": "o",
}
_SIMPLE_LAYER = {
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "layer_scale1.lambda1": "ls1.gamma",
    "layer_scale2.lambda1": "ls2.gamma",
    "mlp.weights_in.weight": "mlp.fc1.weight",
    "mlp.weights_in.bias": "mlp.fc1.bias",
    "mlp.weights_out.weight": "mlp.fc2.weight",
    "mlp.weights_out.bias": "mlp.fc2.bias",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
    "mlp.down_proj.weight": "mlp.fc2.weight",
    "mlp.down_proj.bias": "mlp.fc2.bias",
}
_SIMPLE_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
_PROJ = re.compile(r"^(?P<mod>.+?)\.(?:(?P<base>base_layer)\.)?(?P<param>weight|bias)$")


def convert_dinov2(dino: Mapping[str, torch.Tensor]):
    base: dict[str, torch.Tensor] = {}
    adapter: dict[str, torch.Tensor] = {}
    unmatched: list[str] = []
    attn: dict[tuple[int, str, str], torch.Tensor] = {}  # (layer, q/k/v/o, weight|bias|A|B)
    gate_up: dict[tuple[int, str, str], torch.Tensor] = {}
    layout = "transformers-4"
    for key, value in dino.items():
        if any(p.match(key) for p in _DROPPED):
            continue
        if key in _SIMPLE_TOP:
            base[_SIMPLE_TOP[key]] = value
            continue
        m = _LAYER.match(key)
        if not m:
            unmatched.append(key)
            continue
        layer, rest = int(m.group(1)), m.group(2)
        if rest in _SIMPLE_LAYER:
            base[f"blocks.{layer}.{_SIMPLE_LAYER[rest]}"] = value
            continue
        gm = re.match(r"^mlp\.(gate_proj|up_proj)\.(weight|bias)$", rest)
        if gm:
            gate_up[(layer, gm.group(1), gm.group(2))] = value
            layout = "transformers-5"
            continue
        lm, pm = LORA_KEY.match(rest), _PROJ.match(rest)
        if lm and lm.group("mod") in _ATTN:
            attn[(layer, _ATTN[lm.group("mod")], lm.group("ab"))] = value
        elif pm and pm.group("mod") in _ATTN:
            attn[(layer, _ATTN[pm.group("mod")], pm.group("param"))] = value
            if "_proj" in pm.group("mod"):
                layout = "transformers-5"
        else:
            unmatched.append(key)
    layers = sorted({k[0] for k in attn} | {int(k.split(".")[1]) for k in base if k.startswith("blocks.")})
    ranks = set()
    for n in layers:
        for param in ("weight", "bias"):
            parts = [attn.get((n, p, param)) for p in "qkv"]
            if all(t is not None for t in parts):
                base[f"blocks.{n}.attn.qkv.{param}"] = torch.cat(parts, dim=0)
            elif any(t is not None for t in parts):
                raise ConversionError(f"layer {n}: query/key/value {param} incomplete")
            if (n, "o", param) in attn:
                base[f"blocks.{n}.attn.proj.{param}"] = attn[(n, "o", param)]
        adapters, layer_ranks = layer_adapters(attn, n)
        adapter.update(adapters)
        ranks.update(layer_ranks)
        for param in ("weight", "bias"):
            gate, up = gate_up.get((n, "gate_proj", param)), gate_up.get((n, "up_proj", param))
            if gate is not None and up is not None:
                base[f"blocks.{n}.mlp.fc1.{param}"] = torch.cat([gate, up], dim=0)  # gate first, as weights_in
            elif gate is not None or up is not None:
                raise ConversionError(f"layer {n}: mlp gate/up {param} incomplete")
    return base, adapter, one_rank(ranks), layout, unmatched


# --------------------------------------------------------------------------------- CLIP
_CLIP_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_CLIP_SIMPLE_LAYER = {
    "layer_norm1.weight": "ln_1.weight",
    "layer_norm1.bias": "ln_1.bias",
    "layer_norm2.weight": "ln_2.weight",
    "layer_norm2.bias": "ln_2.bias",
    "mlp.fc1.weight": "mlp.c_fc.weight",
    "mlp.fc1.bias": "mlp.c_fc.bias",
    "mlp.fc2.weight": "mlp.c_proj.weight",
    "mlp.fc2.bias": "mlp.c_proj.bias",
    "self_attn.out_proj.weight": "attn.out_proj.weight",
    "self_attn.out_proj.bias": "attn.out_proj.bias",
}
_CLIP_TOP = {
    "embeddings.class_embedding": "class_embedding",
    "embeddings.patch_embedding.weight": "conv1.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "pre_layrnorm.weight": "ln_pre.weight",
    "pre_layrnorm.bias": "ln_pre.bias",
    "post_layernorm.weight": "ln_post.weight",
    "post_layernorm.bias": "ln_post.bias",
}


def convert_clip(clip: Mapping[str, torch.Tensor]):
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str, str], torch.Tensor] = {}
    unmatched: list[str] = []
    for key, value in clip.items():
        if any(p.match(key) for p in _DROPPED):
            continue
        if key in _CLIP_TOP:
            out[_CLIP_TOP[key]] = value
            continue
        m = _CLIP_LAYER.match(key)
        if not m:
            unmatched.append(key)
            continue
        n, rest = int(m.group(1)), m.group(2)
        if rest in _CLIP_SIMPLE_LAYER:
            out[f"transformer.resblocks.{n}.{_CLIP_SIMPLE_LAYER[rest]}"] = value
            continue
        am = re.match(r"^self_attn\.([qkv])_proj\.(weight|bias)$", rest)
        if am:
            qkv[(n, am.group(1), am.group(2))] = value
        else:
            unmatched.append(key)
    for n in sorted({k[0] for k in qkv}):
        for param in ("weight", "bias"):
            parts = [qkv.get((n, p, param)) for p in "qkv"]
            if not all(t is not None for t in parts):
                raise ConversionError(f"CLIP layer {n}: q/k/v {param} incomplete")
            out[f"transformer.resblocks.{n}.attn.in_proj_{param}"] = torch.cat(parts, dim=0)
    return out, unmatched


# --------------------------------------------------------------------------------- heads
def convert_head(head: Mapping[str, torch.Tensor], stream: str):
    unmatched: list[str] = []
    out: dict[str, torch.Tensor] = {}
    for key, value in head.items():
        m = re.match(r"^last_layer\.(weight|bias)$", key)
        f = re.match(r"^fusion_head\.(0|3)\.(weight|bias)$", key)
        if m:
            out[f"head.{m.group(1)}"] = value
        elif f:
            out[f"head.{f.group(1)}.{f.group(2)}"] = value
        else:
            unmatched.append(key)
    if "head.weight" in out and "head.0.weight" not in out:
        config = HeadConfig(kind="linear")
    elif "head.0.weight" in out and "head.3.weight" in out and "head.weight" not in out:
        config = HeadConfig(kind="mlp", hidden=int(out["head.0.weight"].shape[0]), dropout=0.2)
    else:
        raise ConversionError(f"no classifier head found for the {stream} stream (expected last_layer.* or fusion_head.{{0,3}}.*)")
    return out, config, unmatched
