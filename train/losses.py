"""Focal loss (Lin et al., ICCV 2017), the authors' training loss (``gamma = 0`` is cross-entropy),
and the distillation loss (Hinton et al., 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FocalLoss", "focal_loss", "distillation_loss"]


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


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float = 2.0) -> torch.Tensor:
    """``T^2 KL(softmax(t / T) || softmax(s / T))``, averaged over the batch (Hinton et al., 2015).

    The ``T^2`` keeps the gradient's scale independent of ``T``. With two classes the KL depends
    only on each model's logit margin, so the student learns the teacher's P(fake), not just its
    verdict. Computed in float32 (under bf16 autocast a confident target's log-probability underflows).

    Args:
        student_logits: (B, 2) the student's logits.
        teacher_logits: (B, 2) the teacher's (calibrated) logits, the soft targets.
        temperature: the distillation temperature ``T > 0``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature**2
