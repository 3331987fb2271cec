"""Mixed precision in one place: the autocast context of training, validation, distillation and Score-CAM.

:func:`autocast` takes either a training precision (``auto``, ``bf16``, ``fp32``) or a dtype (the
explanation plan's ``autocast``, None for none) and returns the context a forward pass runs in.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "PRECISIONS"]

#: the training precisions: ``auto`` is bf16 autocast on CUDA and fp32 elsewhere
PRECISIONS = ("auto", "bf16", "fp32")


def autocast(device: torch.device | str, precision: str | torch.dtype | None):
    """The autocast context for ``precision`` on ``device``; a no-op context where there is none.

    Args:
        device: where the forward pass runs.
        precision: a dtype (autocast to it), None (no autocast), or a training precision:
            ``bf16`` (bf16 autocast), ``auto`` (bf16 autocast on CUDA, none elsewhere), ``fp32`` (none).
    """
    device = torch.device(device)
    if isinstance(precision, str):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; use one of: {', '.join(PRECISIONS)}")
        use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
        precision = torch.bfloat16 if use_bf16 else None
    if precision is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision)
