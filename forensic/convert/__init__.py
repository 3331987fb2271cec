"""Convert the authors' published checkpoints into our weights format.

The authors saved ``torch.save(wrapper.state_dict())`` of Hugging Face ``transformers`` models
(DINOv2 wrapped in ``peft`` LoRA on query/key/value/output.dense; a frozen ``CLIPVisionModel`` in
the fusion stream). Keys look like
``backbone.vision_model.base_model.model.encoder.layer.3.attention.attention.query.lora_A.default.weight``,
possibly with a leading ``module.``. This module maps every key to timm / open_clip names and to our
per-stream adapter + head file. A key it cannot map is an error that lists it (the authors'
own loader turned strict key checking off and would silently have ignored it).

Only tensors are read (``torch.load(weights_only=True)``): no pickled code runs. A checkpoint
that holds anything else, or is empty or truncated, is one :class:`ConversionError` line.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import HeadConfig, ModelConfig, StreamConfig
from .lora import LoraConfig
from .presets import get_preset

__all__ = ["ConversionError", "SeedCheckpoint", "ConversionReport", "read_seed_checkpoint", "convert_seed"]

log = logging.getLogger(__name__)

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


class ConversionError(ValueError):
    """A checkpoint could not be converted exactly; the message lists what did not match."""


@dataclass
class SeedCheckpoint:
    """An authors' checkpoint, split and renamed.

    Attributes:
        stream: which stream it is.
        dinov2: the DINOv2 base in timm names (adapters not merged).
        clip: the CLIP visual tower in open_clip names, or None.
        stream_state: our stream file's tensors (``adapter.*`` and ``head.*``).
        lora_rank: the adapters' rank (0 when the checkpoint has no LoRA).
        head: the head configuration read from the tensors' shapes.
        layout: ``transformers-4`` (the authors' files) or ``transformers-5`` (renamed modules).
    """

    stream: str
    dinov2: dict[str, torch.Tensor]
    clip: dict[str, torch.Tensor] | None
    stream_state: dict[str, torch.Tensor]
    lora_rank: int
    head: HeadConfig
    layout: str


@dataclass
class ConversionReport:
    """What a conversion wrote and checked."""

    folder: Path
    stream: str
    layout: str
    lora_rank: int
    base: str  # "embedded" or "referenced"
    base_max_abs_diff: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------- key classification
def _split_parts(state: Mapping[str, torch.Tensor]):
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
_LORA = re.compile(r"^(?P<mod>.+?)\.lora_(?P<ab>[AB])\.[^.]+\.weight$")


def _convert_dinov2(dino: Mapping[str, torch.Tensor]):
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
        lm, pm = _LORA.match(rest), _PROJ.match(rest)
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
        lora_a = [attn.get((n, p, "A")) for p in "qkv"]
        lora_b = [attn.get((n, p, "B")) for p in "qkv"]
        if any(t is not None for t in lora_a + lora_b):
            if not all(t is not None for t in lora_a + lora_b):
                raise ConversionError(f"layer {n}: LoRA on query/key/value is incomplete (all three are needed)")
            # three rank-r adapters == one rank-3r adapter with block-diagonal B (groups=3)
            adapter[f"adapter.blocks.{n}.attn.qkv.lora_A"] = torch.cat(lora_a, dim=0)
            adapter[f"adapter.blocks.{n}.attn.qkv.lora_B"] = torch.stack(lora_b, dim=0)
            ranks.update(t.shape[0] for t in lora_a)
        if (n, "o", "A") in attn or (n, "o", "B") in attn:
            a, b = attn.get((n, "o", "A")), attn.get((n, "o", "B"))
            if a is None or b is None:
                raise ConversionError(f"layer {n}: LoRA on the attention output is incomplete")
            adapter[f"adapter.blocks.{n}.attn.proj.lora_A"] = a
            adapter[f"adapter.blocks.{n}.attn.proj.lora_B"] = b.unsqueeze(0)
            ranks.add(a.shape[0])
        for param in ("weight", "bias"):
            gate, up = gate_up.get((n, "gate_proj", param)), gate_up.get((n, "up_proj", param))
            if gate is not None and up is not None:
                base[f"blocks.{n}.mlp.fc1.{param}"] = torch.cat([gate, up], dim=0)  # gate first, as weights_in
            elif gate is not None or up is not None:
                raise ConversionError(f"layer {n}: mlp gate/up {param} incomplete")
    if len(ranks) > 1:
        raise ConversionError(f"the LoRA adapters have different ranks {sorted(ranks)}; one rank per stream is supported")
    return base, adapter, (ranks.pop() if ranks else 0), layout, unmatched


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


def _convert_clip(clip: Mapping[str, torch.Tensor]):
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
def _convert_head(head: Mapping[str, torch.Tensor], stream: str):
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


# --------------------------------------------------------------------------------- public API
def read_seed_checkpoint(path: str | Path, *, stream: str) -> SeedCheckpoint:
    """Reads and splits an authors' ``.pth`` (or ``.safetensors``) checkpoint for ``stream``.

    Raises:
        ConversionError: keys that cannot be mapped (all listed), or inconsistent tensors.
    """
    path = Path(path)
    state = _load_tensors(path)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ConversionError(f"{path} does not hold a state dict of tensors")
    dino, clip, head, unmatched = _split_parts(state)
    dinov2, adapter, rank, layout, bad_dino = _convert_dinov2(dino)
    clip_state, bad_clip = _convert_clip(clip) if clip else (None, [])
    head_state, head_cfg, bad_head = _convert_head(head, stream)
    unmatched += bad_dino + [f"clip_model.{k}" for k in bad_clip] + bad_head
    if unmatched:
        raise ConversionError(f"{len(unmatched)} keys of {path.name} could not be mapped: {sorted(unmatched)}")
    if not dinov2:
        raise ConversionError(f"{path.name} holds no DINOv2 weights")
    if (stream == "fusion") != (clip_state is not None):
        raise ConversionError(
            f"{path.name}: the {stream} stream {'needs' if stream == 'fusion' else 'must not have'} CLIP weights"
        )
    return SeedCheckpoint(
        stream=stream,
        dinov2=dinov2,
        clip=clip_state,
        stream_state={**adapter, **head_state},
        lora_rank=rank,
        head=head_cfg,
        layout=layout,
    )


def _load_tensors(path: Path) -> object:
    """What a checkpoint file holds, read without running any pickled code.

    Raises:
        ConversionError: missing, empty, truncated, or pickling anything but tensors and containers.
    """
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ConversionError(f"{path} is empty (an interrupted download or copy?): download it again")
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except SafetensorError as exc:
            raise ConversionError(f"{path} is truncated or not a safetensors file ({exc}): download it again") from None
    try:
        with warnings.catch_warnings():  # an odd pickle protocol is refused below anyway, in one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message advises weights_only=False, i.e. running the file's code: never pass that on
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        calls = f" (it would call {found.group(1)})" if found else ""
        raise ConversionError(
            f"{path} is not a plain checkpoint of tensors{calls}, so it was not loaded: only state dicts of tensors "
            "are read and no code in a checkpoint is ever run; use the authors' original file"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        detail = str(exc).split(". ")[0].strip().rstrip(".")
        detail = "" if not detail or "weights_only" in detail else f" ({detail})"
        raise ConversionError(f"{path} is truncated or not a PyTorch checkpoint{detail}: download it again") from None


def convert_seed(
    path: str | Path,
    *,
    stream: str,
    out: str | Path,
    config: ModelConfig | None = None,
    base: str = "reference",
    lora_scaling: float = 2.0,
    base_tolerance: float = 1e-5,
) -> ConversionReport:
    """Converts one authors' checkpoint into the weights folder ``out`` (adding to it if present).

    Args:
        path: the ``.pth`` file (e.g. ``dinov2_252.pth``).
        stream: ``texture``, ``face`` or ``fusion``.
        out: the weights folder; converting the three files into the same folder gives a
            three-stream model.
        config: the architecture (defaults to the ``paper`` preset).
        base: ``reference`` keeps the public base backbones as the base (checked against them
            when they can be loaded: a mismatch is an error); ``embed`` writes the checkpoint's
            own base tensors into the folder.
        lora_scaling: alpha / rank of the adapters (the paper: 64 / 32 = 2.0); not stored in the
            checkpoints.
        base_tolerance: largest absolute difference accepted between the checkpoint's base and
            the public one.
    """
    from .weights import WeightsInvalid, WeightsUnavailable, load_base_state, read_config

    if stream not in ("texture", "face", "fusion"):
        raise ConversionError(f"unknown stream {stream!r}; use texture, face or fusion")
    if base not in ("reference", "embed"):
        raise ConversionError(f"base must be 'reference' or 'embed', not {base!r}")
    ckpt = read_seed_checkpoint(path, stream=stream)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.json"
    template = read_config(config_path) if config_path.is_file() else (config or get_preset("paper").config)

    preset_stream = next((s for s in (config or get_preset("paper").config).streams if s.name == stream), None)
    if preset_stream is None:
        preset_stream = StreamConfig(name=stream, input="center-crop", size=252)
    stream_cfg = dataclasses.replace(preset_stream, head=ckpt.head, uses_clip=stream == "fusion")
    lora = LoraConfig(rank=ckpt.lora_rank, alpha=lora_scaling * ckpt.lora_rank, dropout=0.0) if ckpt.lora_rank else None
    if config_path.is_file():
        if template.lora != lora:
            raise ConversionError(f"{out} already holds streams with LoRA {template.lora}, this checkpoint has {lora}")
        new_config = template.with_stream(stream_cfg)
    else:
        new_config = template.replace(streams=(stream_cfg,), lora=lora, untrained=False)
    new_config = new_config.replace(meta={**dict(new_config.meta), f"converted_{stream}": Path(path).name})

    _check_shapes(new_config, stream, ckpt)
    report = ConversionReport(folder=out, stream=stream, layout=ckpt.layout, lora_rank=ckpt.lora_rank, base="referenced" if base == "reference" else "embedded")
    bases = {"dinov2": ckpt.dinov2, "clip": ckpt.clip}
    for family, tensors in bases.items():
        if tensors is None:
            continue
        spec = getattr(new_config, family)
        if base == "embed" or spec.weights_file:
            filename = spec.weights_file or f"base_{family}.safetensors"
            target = out / filename
            if target.is_file():
                diff = _max_abs_diff(load_file(target), tensors)
                report.base_max_abs_diff[family] = diff
                if diff is None or diff > base_tolerance:
                    raise ConversionError(f"{path} has a different {family} base than the one already in {out} (max abs diff {diff})")
            else:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(target))
            new_config = new_config.replace(
                **{family: dataclasses.replace(spec, weights_file=filename, hub_id=None, filename=None, revision=None, init_seed=None)}
            )
        else:
            try:
                public = load_base_state(spec, out)
            except WeightsInvalid:
                raise  # a damaged base is an error, not "could not verify"
            except WeightsUnavailable as exc:
                report.base_max_abs_diff[family] = None
                report.notes.append(f"{family} base not verified against {spec.hub_id or spec.arch}: {exc.reason}")
                log.warning("could not verify the %s base: %s", family, exc.reason)
                continue
            diff = _max_abs_diff(public, tensors)
            report.base_max_abs_diff[family] = diff
            if diff is None or diff > base_tolerance:
                raise ConversionError(
                    f"the checkpoint's {family} base differs from the public weights {spec.hub_id} "
                    f"(max abs diff {diff}); convert with base='embed' (--base embed) to keep the checkpoint's own base"
                )
    save_file({k: v.contiguous() for k, v in ckpt.stream_state.items()}, str(out / f"{stream}.safetensors"))
    config_path.write_text(new_config.to_json())
    from .modelcard import render_model_card

    (out / "README.md").write_text(
        render_model_card(
            new_config,
            sections={"Provenance": "Converted from the authors' NTIRE 2026 checkpoints "
                      f"({', '.join(f'{k}: {v}' for k, v in new_config.meta.items() if k.startswith('converted_'))})."},
        )
    )
    return report


def _max_abs_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float | None:
    if set(a) != set(b):
        return None
    diffs = [float((a[k].float() - b[k].float()).abs().max()) if a[k].shape == b[k].shape else float("inf") for k in a]
    return max(diffs, default=0.0)


def _check_shapes(config: ModelConfig, stream: str, ckpt: SeedCheckpoint) -> None:
    """Builds the architecture on the meta device and checks every converted tensor's name and shape."""
    from .model import ForensicModel

    model = ForensicModel(config.replace(streams=(config.stream(stream),)), device="meta")
    expected = model.stream_state_dict(stream)
    problems = [k for k in expected if k not in ckpt.stream_state] + [k for k in ckpt.stream_state if k not in expected]
    problems += [
        f"{k}: ours {tuple(expected[k].shape)} vs checkpoint {tuple(v.shape)}"
        for k, v in ckpt.stream_state.items()
        if k in expected and tuple(expected[k].shape) != tuple(v.shape)
    ]
    for family, tensors in (("dinov2", ckpt.dinov2), ("clip", ckpt.clip)):
        if tensors is None or (family == "clip" and model.clip is None):
            continue
        ours = model.base_state_dict(family)
        problems += [f"{family} base: missing {k}" for k in ours if k not in tensors]
        problems += [f"{family} base: unexpected {k}" for k in tensors if k not in ours]
        problems += [
            f"{family} base {k}: ours {tuple(ours[k].shape)} vs checkpoint {tuple(v.shape)}"
            for k, v in tensors.items()
            if k in ours and tuple(ours[k].shape) != tuple(v.shape)
        ]
    if problems:
        raise ConversionError(f"the checkpoint does not fit the {config.preset} architecture: {problems[:12]}")


def paper_seed_weights(*, cache_dir: str | Path | None = None, revision: str | None = None, runtime=None) -> Path:
    """The ``paper`` preset's default weights: the authors' three checkpoints, converted once.

    Downloads ``dinov2_252.pth``, ``dinov2_252_crop.pth`` and ``dinov2_clip.pth`` from
    ``lpmkhoa/hcmusaqua-ntire26-weights`` (or takes them from the Hugging Face cache) and converts
    them into ``<cache>/paper-seed[-<revision>]``; later calls return that folder at once. The
    cache is ``cache_dir``, else ``runtime``'s (a :class:`~forensic.runtime.RuntimeConfig`;
    default ``$FORENSIC_CACHE``), else ``~/.cache/forensic``.

    Raises:
        WeightsUnavailable: the checkpoints (or the public bases) cannot be fetched.
    """
    from .presets import PAPER_WEIGHTS_FILES, PAPER_WEIGHTS_REPO
    from .weights import cache_root, hub_file

    folder = Path(cache_dir) if cache_dir else cache_root(runtime) / ("paper-seed" + (f"-{revision[:12]}" if revision else ""))
    if (folder / "config.json").is_file() and all((folder / f"{s}.safetensors").is_file() for s in PAPER_WEIGHTS_FILES):
        return folder
    staging = folder.with_name(folder.name + ".partial")
    if staging.exists():
        import shutil

        shutil.rmtree(staging)
    paths = {stream: hub_file(PAPER_WEIGHTS_REPO, name, revision=revision) for stream, name in PAPER_WEIGHTS_FILES.items()}
    for stream, path in paths.items():
        report = convert_seed(path, stream=stream, out=staging)
        for note in report.notes:
            log.warning(note)
    staging.rename(folder)  # only a complete conversion is ever used
    return folder
