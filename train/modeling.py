"""The model a run trains: the preset's architecture with one stream, bases from where inference gets them.

The bases (frozen DINOv2, and CLIP for the fusion stream) are filled exactly as
:func:`forensic.weights.build_model` fills them: from the Hub for ``paper``/``small``, from their
seeds for ``tiny-random`` (or with ``model.random_bases``). The stream's LoRA adapter starts as
the identity (``B = 0``) and the head with PyTorch's default init, both from the run's seed; or
they are copied from an earlier export (``init.from_dir``). Nothing else differs between presets.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from forensic.config import BackboneSpec, ModelConfig
from forensic.model import ForensicModel
from forensic.presets import get_preset
from forensic.weights import WeightsInvalid, WeightsUnavailable, bases_state_dict, hub_file, load_base_state, load_state_strict, resolve_weights

from .config import InitSection, TrainConfig

__all__ = [
    "RunWeightsUnavailable",
    "BASES_HINT",
    "check_bases",
    "find_hub_bases",
    "training_model_config",
    "build_training_model",
    "init_stream_",
    "load_stream_init_",
    "set_trainable_",
    "base_mismatch",
]

log = logging.getLogger(__name__)


#: what to do when a trained model's base backbones cannot be had
BASES_HINT = ("The preset's base backbones must be local or in the Hugging Face cache: download them once with network "
              "access, or set model.random_bases=true to run the same code on random bases (a smoke test).")


class RunWeightsUnavailable(WeightsUnavailable):
    """Weights a run needs cannot be had; the message is the cause's, with what to do *for this run*."""

    def __init__(self, cause: WeightsUnavailable, hint: str) -> None:
        self.what, self.reason = cause.what, cause.reason
        Exception.__init__(self, f"Weights unavailable: {cause.what}. {cause.reason} {hint}")


def check_bases(cfg: TrainConfig, config: ModelConfig) -> None:
    """Finds the base files ``config`` takes from the Hub (downloading them once) and the
    ``init.from_dir`` folder, before any data is read: a missing base fails a run in seconds.

    Raises:
        RunWeightsUnavailable: a base is not local and cannot be downloaded (offline).
        forensic.weights.WeightsUnavailable: ``init.from_dir`` cannot be found.
    """
    find_hub_bases(config, BASES_HINT)
    if cfg.init.from_dir:
        resolve_weights(cfg.init.from_dir)


def find_hub_bases(config: ModelConfig, hint: str) -> None:
    """Finds (or downloads once) the base files ``config`` takes from the Hub.

    Raises:
        RunWeightsUnavailable: one is not local and cannot be downloaded; the message ends with ``hint``.
    """
    for spec in (config.dinov2, config.clip):
        if spec is None or not spec.hub_id or spec.weights_file:
            continue
        try:
            hub_file(spec.hub_id, spec.filename or "model.safetensors", revision=spec.revision,
                     what=f"the {spec.family} base of preset {config.preset!r} ({spec.hub_id})")
        except WeightsInvalid:
            raise
        except WeightsUnavailable as exc:
            raise RunWeightsUnavailable(exc, hint) from None


def _random_base(spec: BackboneSpec, default_seed: int) -> BackboneSpec:
    seed = spec.init_seed if spec.init_seed is not None else default_seed
    return dataclasses.replace(spec, hub_id=None, filename=None, revision=None, weights_file=None, init_seed=seed)


def training_model_config(cfg: TrainConfig, streams: Sequence[str] | None = None) -> ModelConfig:
    """The preset's config reduced to the streams being trained (``model.random_bases`` applied).

    ``streams`` defaults to ``(cfg.model.stream,)``: one stream per ``python -m train`` run; a
    distillation run trains several.
    """
    preset = get_preset(cfg.model.preset).config
    chosen = tuple(preset.stream(name) for name in (streams or (cfg.model.stream,)))
    # streams without CLIP carry no CLIP spec: their export then says nothing about a CLIP base
    config = preset.replace(streams=chosen, clip=preset.clip if any(s.uses_clip for s in chosen) else None)
    if cfg.model.random_bases:
        config = config.replace(
            dinov2=_random_base(config.dinov2, 0),
            clip=_random_base(config.clip, 1) if config.clip is not None else None,
            untrained=True,
        )
    return config


def init_stream_(model: ForensicModel, stream: str, *, seed: int) -> None:
    """Fresh adapter (Kaiming-uniform A, zero B: the identity) and head (PyTorch's Linear init), seeded."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if stream in model.adapters:
            for lora in model.adapters[stream].loras.values():
                nn.init.kaiming_uniform_(lora.lora_A, a=math.sqrt(5), generator=gen)
                nn.init.zeros_(lora.lora_B)
        for module in model.heads[stream].modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=gen)
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.bias, -bound, bound, generator=gen)


def build_training_model(cfg: TrainConfig, config: ModelConfig, *, device: torch.device | str = "cpu") -> ForensicModel:
    """The model to train: bases loaded, every stream of ``config`` initialised (fresh or
    ``init.from_dir``), trainable set.

    Built on the ``meta`` device first so a giant base is never randomly initialised in vain. The
    ``k``-th stream is initialised from seed ``cfg.seed + k`` (one stream: ``cfg.seed``).

    Raises:
        forensic.weights.WeightsUnavailable: the bases cannot be had (offline and not cached).
    """
    streams = config.stream_names
    model = ForensicModel(config, device="meta")
    model.adapters.to_empty(device="cpu")
    model.heads.to_empty(device="cpu")
    for k, stream in enumerate(streams):
        init_stream_(model, stream, seed=cfg.seed + k)
    # the same loader as inference, so training and inference read the bases identically
    state = bases_state_dict(config, None, with_clip=model.clip is not None)
    state.update({k: v for k, v in model.state_dict().items() if k.startswith(("adapters.", "heads."))})
    load_state_strict(model, state)
    if cfg.init.from_dir:
        for stream in streams:
            load_stream_init_(model, stream, cfg.init, config=config)
    set_trainable_(model, streams, cfg.model.trainable)
    return model.to(device)


def load_stream_init_(model: ForensicModel, stream: str, init: InitSection, *, config: ModelConfig) -> None:
    """Copies an earlier export's adapter and/or head into ``stream`` (checking that the bases match).

    Raises:
        ValueError: the folder lacks the stream, the bases differ, or the shapes do not match.
    """
    folder = resolve_weights(init.from_dir)
    source_cfg = ModelConfig.from_json_file(folder / "config.json")
    source = init.stream or stream
    if source not in source_cfg.stream_names:
        raise ValueError(f"init.from_dir {init.from_dir} has no stream {source!r} (it has {list(source_cfg.stream_names)}); set init.stream")
    families = ["dinov2"]
    if "head" in init.parts and config.stream(stream).uses_clip:
        families.append("clip")
    for family in families:
        reason = base_mismatch(getattr(config, family), None, getattr(source_cfg, family), folder)
        if reason:
            raise ValueError(f"init.from_dir {init.from_dir} was trained on another {family} base: {reason}")
    if source_cfg.lora != config.lora and "adapter" in init.parts:
        raise ValueError(f"init.from_dir {init.from_dir} has LoRA {source_cfg.lora}, this run {config.lora}")
    loaded = load_file(str(folder / f"{source}.safetensors"))
    if not any(k.split(".", 1)[0] in init.parts for k in loaded):
        raise ValueError(f"{folder / f'{source}.safetensors'} holds no {' or '.join(init.parts)} weights")
    try:
        model.load_stream_state_dict(stream, loaded, parts=tuple(init.parts))
    except ValueError as exc:
        raise ValueError(f"init.from_dir {init.from_dir}: {exc}") from exc
    log.info("initialised the %s stream's %s from %s (%s stream)", stream, " and ".join(init.parts), init.from_dir, source)


def set_trainable_(model: ForensicModel, stream: str | Sequence[str], trainable: str) -> None:
    """Freezes everything, then unfreezes the streams' adapters and/or heads (bases stay frozen)."""
    streams = (stream,) if isinstance(stream, str) else tuple(stream)
    model.requires_grad_(False)
    for name in streams:
        if trainable in ("all", "adapter") and name in model.adapters:
            model.adapters[name].requires_grad_(True)
        if trainable in ("all", "head"):
            model.heads[name].requires_grad_(True)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"nothing to train: trainable={trainable!r} on stream(s) {', '.join(streams)}")


def base_mismatch(a: BackboneSpec, folder_a: Path | None, b: BackboneSpec, folder_b: Path | None) -> str | None:
    """Why two base specs are not the same weights (None when they are).

    Hub bases are compared by repo, file and revision; a base held in a file or made from a seed
    is compared tensor by tensor.
    """
    if a.family != b.family or a.arch != b.arch or dict(a.overrides) != dict(b.overrides):
        return f"{a.arch} {dict(a.overrides)} vs {b.arch} {dict(b.overrides)}"
    if a.hub_id and b.hub_id and not a.weights_file and not b.weights_file:
        ida, idb = (a.hub_id, a.filename, a.revision), (b.hub_id, b.filename, b.revision)
        return None if ida == idb else f"Hub {ida} vs {idb}"
    sa, sb = load_base_state(a, folder_a), load_base_state(b, folder_b)
    if sa.keys() != sb.keys():
        return "different parameter names"
    for key in sa:
        if sa[key].shape != sb[key].shape or not torch.equal(sa[key], sb[key].to(sa[key].dtype)):
            return f"the tensor {key} differs"
    return None
