"""Cosine similarities: between streams (maps and features) and between clean and degraded images.

- Inter-stream: a matrix of cosine similarity between the streams' Score-CAM maps in *image*
  coordinates (the face map pasted back), and between their DINOv2 CLS features. Low values are
  the paper's evidence that the streams are complementary (non-redundant).
- Stability: per stream, cosine between the pooled feature of the clean image and of the degraded
  one (1.0 = the degradation did not move the representation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = ["SimilarityMatrix", "cosine", "cosine_matrix", "map_similarity", "feature_similarity", "stability"]


@dataclass(frozen=True)
class SimilarityMatrix:
    """A symmetric matrix of cosine similarities between named items."""

    names: tuple[str, ...]
    values: np.ndarray  # (n, n)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "values": [[float(v) for v in row] for row in self.values]}

    def get(self, a: str, b: str) -> float:
        return float(self.values[self.names.index(a), self.names.index(b)])


def cosine(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Cosine similarity of two vectors (flattened); 0 if either is all zeros."""
    a = np.asarray(torch.as_tensor(a).detach().cpu().double()).ravel()
    b = np.asarray(torch.as_tensor(b).detach().cpu().double()).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def cosine_matrix(vectors: Mapping[str, np.ndarray | torch.Tensor]) -> SimilarityMatrix:
    names = tuple(vectors)
    n = len(names)
    values = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            values[i, j] = values[j, i] = cosine(vectors[names[i]], vectors[names[j]])
    return SimilarityMatrix(names, values)


def map_similarity(maps: Mapping[str, np.ndarray], *, max_side: int = 256) -> SimilarityMatrix:
    """Cosine similarity of image-coordinate maps, compared at a common reduced resolution."""
    shapes = {m.shape for m in maps.values()}
    if len(shapes) != 1:
        raise ValueError(f"maps must share the image's shape; got {sorted(shapes)}")
    h, w = shapes.pop()
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = {k: cv2.resize(np.asarray(v, np.float32), size, interpolation=cv2.INTER_AREA) for k, v in maps.items()}
    return cosine_matrix(small)


def feature_similarity(features: Mapping[str, np.ndarray | torch.Tensor]) -> SimilarityMatrix:
    """Cosine similarity of the streams' feature vectors (e.g. DINOv2 CLS)."""
    return cosine_matrix(features)


def stability(clean: Sequence[float] | np.ndarray | torch.Tensor, degraded: Sequence[float] | np.ndarray | torch.Tensor) -> float:
    """Cosine between a clean and a degraded feature vector."""
    return cosine(np.asarray(clean), np.asarray(degraded))
