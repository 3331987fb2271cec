"""Converting one authors' checkpoint into a weights folder (:func:`convert_seed`)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from safetensors.torch import load_file, save_file

from ..config import ModelConfig, StreamConfig
from ..lora import LoraConfig
from ..presets import get_preset
from .checkpoint import read_seed_checkpoint
from .errors import ConversionError
from .verify import check_shapes, max_abs_diff

__all__ = ["ConversionReport", "convert_seed"]

log = logging.getLogger(__name__)


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
    from ..weights import WeightsInvalid, WeightsUnavailable, load_base_state, read_config

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

    check_shapes(new_config, stream, ckpt)
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
                diff = max_abs_diff(load_file(target), tensors)
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
            diff = max_abs_diff(public, tensors)
            report.base_max_abs_diff[family] = diff
            if diff is None or diff > base_tolerance:
                raise ConversionError(
                    f"the checkpoint's {family} base differs from the public weights {spec.hub_id} "
                    f"(max abs diff {diff}); convert with base='embed' (--base embed) to keep the checkpoint's own base"
                )
    save_file({k: v.contiguous() for k, v in ckpt.stream_state.items()}, str(out / f"{stream}.safetensors"))
    config_path.write_text(new_config.to_json())
    from ..modelcard import render_model_card

    (out / "README.md").write_text(
        render_model_card(
            new_config,
            sections={"Provenance": "Converted from the authors' NTIRE 2026 checkpoints "
                      f"({', '.join(f'{k}: {v}' for k, v in new_config.meta.items() if k.startswith('converted_'))})."},
        )
    )
    return report
