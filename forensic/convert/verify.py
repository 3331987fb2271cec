"""Checks of a conversion: every tensor's name and shape against our architecture, bases against bases."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..config import ModelConfig
from .checkpoint import SeedCheckpoint
from .errors import ConversionError

__all__ = ["check_shapes", "max_abs_diff"]


def max_abs_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float | None:
    if set(a) != set(b):
        return None
    diffs = [float((a[k].float() - b[k].float()).abs().max()) if a[k].shape == b[k].shape else float("inf") for k in a]
    return max(diffs, default=0.0)


def check_shapes(config: ModelConfig, stream: str, ckpt: SeedCheckpoint) -> None:
    """Builds the architecture on the meta device and checks every converted tensor's name and shape."""
    from ..model import ForensicModel

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
