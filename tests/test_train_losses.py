"""train.losses and the schedule: focal loss (gamma 0 = cross-entropy), warm-up + cosine."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from train.loop import WarmupCosine
from train.losses import FocalLoss, focal_loss


def test_gamma_zero_is_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(32, 2, generator=gen) * 3, torch.randint(0, 2, (32,), generator=gen)
    assert torch.allclose(focal_loss(logits, labels, gamma=0.0), F.cross_entropy(logits, labels), atol=1e-6)


def test_focal_term_matches_definition_and_down_weights_easy_samples():
    logits = torch.tensor([[0.0, 4.0], [0.0, 0.2]])  # an easy and a hard fake
    labels = torch.tensor([1, 1])
    p = torch.softmax(logits, -1)[:, 1]
    expected = -((1 - p) ** 2) * torch.log(p)
    assert torch.allclose(focal_loss(logits, labels, gamma=2.0, reduction="none"), expected, atol=1e-6)
    ce = F.cross_entropy(logits, labels, reduction="none")
    ratio = focal_loss(logits, labels, gamma=2.0, reduction="none") / ce
    assert ratio[0] < 0.001 and ratio[1] > 0.2  # the easy one is nearly ignored
    alpha = focal_loss(logits, torch.tensor([1, 0]), gamma=0.0, alpha=0.25, reduction="none")
    assert torch.allclose(alpha, F.cross_entropy(logits, torch.tensor([1, 0]), reduction="none") * torch.tensor([0.25, 0.75]))
    with pytest.raises(ValueError):
        FocalLoss(gamma=-1)


def test_warmup_then_cosine():
    sched = WarmupCosine(total_steps=100, warmup_steps=10, min_ratio=0.1)
    factors = [sched(s) for s in range(100)]
    assert factors[0] == pytest.approx(1 / 11)
    assert all(a < b for a, b in zip(factors[:10], factors[1:11]))  # linear ramp up
    assert factors[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))  # then monotone down
    assert factors[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert sched(100) == pytest.approx(0.1)
