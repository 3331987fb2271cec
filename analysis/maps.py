"""Measurements on one Score-CAM map in image coordinates: mass in a box and centroid (two maps
are compared with :func:`forensic.metrics.pearson`).

Maps are compared at a reduced resolution (longer side :data:`MAP_SIDE`, area interpolation),
which keeps them cheap to store and compare and makes no visible difference to a map that comes
from an 18x18 token grid. A map with no mass (all zero) has undefined box mass and centroid: NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["MAP_SIDE", "reduce_map", "box_mask", "mass_in_box", "centroid", "centroid_shift"]

#: longer side of the stored and compared maps
MAP_SIDE = 128


def reduce_map(heatmap: np.ndarray, *, max_side: int = MAP_SIDE) -> np.ndarray:
    """The map at longer side ``max_side`` (never enlarged), float32, negative values clipped to 0."""
    m = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, None)
    h, w = m.shape
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return m
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(m, size, interpolation=cv2.INTER_AREA)


def box_mask(shape: tuple[int, int], box: Sequence[float], image_size: tuple[int, int]) -> np.ndarray:
    """Cells of a ``shape`` (rows, cols) map of an image of ``image_size`` (w, h) whose centres lie in ``box``.

    Args:
        shape: the map's (rows, cols).
        box: (x0, y0, x1, y1) in image pixels (edges).
        image_size: the image's (width, height).
    """
    rows, cols = shape
    w, h = image_size
    x0, y0, x1, y1 = (float(v) for v in box)
    xs = (np.arange(cols) + 0.5) * (w / cols)
    ys = (np.arange(rows) + 0.5) * (h / rows)
    return ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]


def mass_in_box(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of the map's total mass inside ``mask`` (the rest is background); NaN for an empty map."""
    m = np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, None)
    total = m.sum()
    return math.nan if total <= 0 else float(m[mask].sum() / total)


def centroid(heatmap: np.ndarray) -> tuple[float, float]:
    """Mass-weighted centre (x, y) in [0, 1] image fractions (cell centres); NaN for an empty map."""
    m = np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, None)
    total = m.sum()
    if total <= 0:
        return (math.nan, math.nan)
    rows, cols = m.shape
    xs = (np.arange(cols) + 0.5) / cols
    ys = (np.arange(rows) + 0.5) / rows
    return (float(m.sum(axis=0) @ xs / total), float(m.sum(axis=1) @ ys / total))


def centroid_shift(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Euclidean distance between two centroids, in image fractions (NaN if either is undefined)."""
    return float(math.hypot(a[0] - b[0], a[1] - b[1]))
