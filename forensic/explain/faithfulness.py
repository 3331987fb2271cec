"""Faithfulness of a saliency map: deletion and insertion AUC (Petsiuk et al., RISE, 2018), with a random-map baseline.

- **Deletion**: the input's pixels are replaced by a neutral value (0 in the normalised input, the
  data's mean colour), most salient first, in ``steps`` equal steps; the area under the score
  curve (x from 0 to 1) is *lower* for a map that finds what the score depends on.
- **Insertion**: starting from a blurred copy of the input, the original pixels come back most
  salient first; the area is *higher* for a faithful map.

A map is only as good as it beats chance: :func:`map_faithfulness` also scores random maps made
the way Score-CAM maps are (uniform noise on the token grid, upsampled bilinearly), so the two
areas can be read against what a map that knows nothing gets.

Why our own and not a library: pytorch-grad-cam's ``ROADCombined``/``CamMultImageConfidenceChange``
measure other things (perturbation by imputation, confidence change of one masked image);
deletion/insertion curves are a few lines on top of a scoring function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CurveScores", "Faithfulness", "deletion_insertion", "map_faithfulness", "random_map", "stream_score_fn"]

#: batch (B, 3, H, W) -> the explained class's probability (B,)
ScoreFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CurveScores:
    """One map's deletion and insertion curves and their areas."""

    deletion_auc: float
    insertion_auc: float
    deletion: np.ndarray = field(repr=False)
    insertion: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Faithfulness:
    """A map's deletion/insertion areas and those of random maps (the chance level).

    Attributes:
        map: the map's curves.
        random: the mean areas over the random maps (``deletion_auc``, ``insertion_auc``).
        steps: steps per curve.
    """

    map: CurveScores
    random: CurveScores
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "deletion_auc": round(self.map.deletion_auc, 4),
            "insertion_auc": round(self.map.insertion_auc, 4),
            "random_deletion_auc": round(self.random.deletion_auc, 4),
            "random_insertion_auc": round(self.random.insertion_auc, 4),
            "steps": self.steps,
        }


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (B, 3, H, W), separable, reflect padding."""
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _orders(saliency: np.ndarray) -> np.ndarray:
    """Pixel indices, most salient first (stable: ties keep raster order)."""
    return np.argsort(-np.asarray(saliency, dtype=np.float64).ravel(), kind="stable")


def _auc(curve: np.ndarray) -> float:
    """Trapezoid area of a curve sampled at 0, 1/n, ..., 1."""
    return float((curve.sum() - 0.5 * (curve[0] + curve[-1])) / (len(curve) - 1))


def deletion_insertion(
    score_fn: ScoreFn,
    x: torch.Tensor,
    saliencies: list[np.ndarray],
    *,
    steps: int = 16,
    blur_sigma: float | None = None,
    batch_size: int = 32,
) -> list[CurveScores]:
    """Deletion and insertion curves of several maps over one input ``x`` (3, H, W) or (1, 3, H, W).

    The curves' end points (the input, the neutral image, the blurred image) are scored once for
    all maps; each map adds ``2 * (steps - 1)`` passes.

    Args:
        score_fn: batch -> the explained class's probability.
        saliencies: (H, W) maps, any scale (only their order matters).
        steps: equal steps from nothing to everything removed (or inserted).
        blur_sigma: the insertion canvas's blur in pixels (default: side / 50, ~5 px at 252).
        batch_size: images per ``score_fn`` call.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    x = x.reshape(-1, *x.shape[-3:])[:1]
    _, _, h, w = x.shape
    blurred = _blur(x, blur_sigma or max(h, w) / 50.0)
    n = h * w
    counts = [round(n * k / steps) for k in range(1, steps)]
    images = [x[0], torch.zeros_like(x[0]), blurred[0]]  # shared end points
    for saliency in saliencies:
        if saliency.shape != (h, w):
            raise ValueError(f"a saliency map of shape {saliency.shape} does not fit an input of {h}x{w}")
        order = torch.as_tensor(_orders(saliency), device=x.device)
        for kind in ("deletion", "insertion"):
            for count in counts:
                keep = torch.zeros(n, dtype=torch.bool, device=x.device)
                keep[order[:count]] = True
                keep = keep.view(1, h, w)
                images.append(torch.where(keep, 0.0, x[0]) if kind == "deletion" else torch.where(keep, x[0], blurred[0]))
    with torch.no_grad():
        scores = torch.cat([score_fn(torch.stack(images[i : i + batch_size])).float() for i in range(0, len(images), batch_size)])
    scores = scores.cpu().numpy()
    full, empty, canvas = scores[:3]
    out, at = [], 3
    for _ in saliencies:
        deletion = np.concatenate([[full], scores[at : at + steps - 1], [empty]])
        insertion = np.concatenate([[canvas], scores[at + steps - 1 : at + 2 * (steps - 1)], [full]])
        out.append(CurveScores(_auc(deletion), _auc(insertion), deletion, insertion))
        at += 2 * (steps - 1)
    return out


def random_map(size: tuple[int, int], grid: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random saliency map made like a Score-CAM map: uniform noise on the token ``grid``, upsampled bilinearly to ``size``."""
    noise = torch.as_tensor(rng.random(grid), dtype=torch.float32)[None, None]
    return F.interpolate(noise, size=size, mode="bilinear", align_corners=True)[0, 0].numpy()


def map_faithfulness(
    score_fn: ScoreFn,
    x: torch.Tensor,
    saliency: np.ndarray,
    *,
    grid: tuple[int, int],
    steps: int = 16,
    random_maps: int = 2,
    seed: int = 0,
    batch_size: int = 32,
) -> Faithfulness:
    """Deletion/insertion areas of ``saliency`` and, as chance level, the mean over ``random_maps`` random maps."""
    rng = np.random.default_rng(seed)
    size = tuple(saliency.shape)
    randoms = [random_map(size, grid, rng) for _ in range(random_maps)]
    curves = deletion_insertion(score_fn, x, [saliency, *randoms], steps=steps, batch_size=batch_size)
    chance = CurveScores(
        float(np.mean([c.deletion_auc for c in curves[1:]])),
        float(np.mean([c.insertion_auc for c in curves[1:]])),
        np.mean([c.deletion for c in curves[1:]], axis=0),
        np.mean([c.insertion for c in curves[1:]], axis=0),
    )
    return Faithfulness(map=curves[0], random=chance, steps=steps)


def stream_score_fn(model, stream: str) -> ScoreFn:
    """P(fake) of ``stream`` of a :class:`~forensic.model.ForensicModel`, in the model's dtype and device."""
    param = next(model.parameters())

    def score(batch: torch.Tensor) -> torch.Tensor:
        return model.forward_stream(stream, batch.to(param.device, param.dtype)).prob_fake

    return score
