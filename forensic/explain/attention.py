"""Attention entropy: how spread out a stream's attention is (SEED_FACTS section 5).

The paper's definition: the final block's attention of the CLS token over the patch tokens
(prefix tokens excluded), averaged over heads, Shannon entropy in nats. Uniform attention over N
patches gives the maximum, ln N (ln 324 = 5.78 at 252 px); attention on one patch gives 0. We also
report it divided by ln N, so streams at different resolutions compare on [0, 1], and the same
entropy for a Score-CAM map (treated as a distribution over the token grid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["EntropyResult", "shannon_entropy", "attention_entropy", "map_entropy"]


@dataclass(frozen=True)
class EntropyResult:
    """An entropy in nats, its maximum ln N and the normalised value in [0, 1]."""

    nats: float
    max_nats: float
    normalized: float
    per_head: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return {"nats": self.nats, "max_nats": self.max_nats, "normalized": self.normalized, "per_head": list(self.per_head)}


def shannon_entropy(p: torch.Tensor | np.ndarray, *, dim: int = -1) -> torch.Tensor:
    """Entropy in nats of distributions along ``dim`` (renormalised to sum 1; 0 log 0 = 0)."""
    p = torch.as_tensor(p, dtype=torch.float64)
    p = p / p.sum(dim=dim, keepdim=True)
    return -(torch.special.xlogy(p, p)).sum(dim=dim)


def attention_entropy(cls_attention: torch.Tensor | np.ndarray) -> EntropyResult:
    """Entropy of the head-averaged CLS-to-patch attention of one image.

    Args:
        cls_attention: (heads, N) attention rows over the N patches (each row a distribution).
    """
    att = torch.as_tensor(cls_attention, dtype=torch.float64)
    if att.ndim != 2:
        raise ValueError(f"expected (heads, patches) attention, got shape {tuple(att.shape)}")
    n = att.shape[-1]
    mean = att.mean(dim=0)
    nats = float(shannon_entropy(mean))
    per_head = tuple(float(v) for v in shannon_entropy(att, dim=-1))
    max_nats = math.log(n)
    return EntropyResult(nats=nats, max_nats=max_nats, normalized=nats / max_nats if n > 1 else 0.0, per_head=per_head)


def map_entropy(heatmap: np.ndarray) -> EntropyResult:
    """Entropy of a non-negative map (e.g. a Score-CAM at the token grid) as a distribution over its cells."""
    arr = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None).ravel()
    n = arr.size
    max_nats = math.log(n) if n > 1 else 0.0
    if arr.sum() <= 0:  # an all-zero map carries no attention at all: report it as uniform
        return EntropyResult(nats=max_nats, max_nats=max_nats, normalized=1.0 if n > 1 else 0.0)
    nats = float(shannon_entropy(torch.from_numpy(arr)))
    return EntropyResult(nats=nats, max_nats=max_nats, normalized=nats / max_nats if n > 1 else 0.0)
