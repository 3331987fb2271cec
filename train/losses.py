"""Focal loss (Lin et al., ICCV 2017), the authors' training loss; ``gamma = 0`` is cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FocalLoss", "focal_loss"]


def focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, gamma: float = 2.0, alpha: float | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Multi-class focal loss ``-alpha_t (1 - p_t)^gamma log p_t``.

    Args:
        logits: (B, C) raw scores (index 0 = real, 1 = fake).
        labels: (B,) class indices.
        gamma: focusing parameter; 0 gives exactly the cross-entropy.
        alpha: weight of class 1 (fake); class 0 gets ``1 - alpha``. None: no class weighting.
        reduction: ``mean``, ``sum`` or ``none``.
    """
    # computed in float32 even under bf16 autocast: (1 - p)^gamma of a confident sample underflows
    log_p = F.log_softmax(logits.float(), dim=-1).gather(1, labels[:, None]).squeeze(1)
    loss = -log_p
    if gamma:
        loss = loss * (1.0 - log_p.exp()).clamp_min(0.0).pow(gamma)
    if alpha is not None:
        loss = loss * torch.where(labels == 1, alpha, 1.0 - alpha)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class FocalLoss(nn.Module):
    """:func:`focal_loss` as a module."""

    def __init__(self, *, gamma: float = 2.0, alpha: float | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma, self.alpha = float(gamma), alpha

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, labels, gamma=self.gamma, alpha=self.alpha)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}"
