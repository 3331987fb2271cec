"""Mixed precision: when a forward pass runs in bfloat16 (training, validation and distillation alike)."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast"]


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast for ``precision`` ``bf16`` (or ``auto`` on CUDA); a no-op context otherwise."""
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
