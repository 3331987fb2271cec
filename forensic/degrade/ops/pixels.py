"""Array helpers shared by the operations: float/uint8 conversion, PSNR, seeded noise, coordinate grids."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["as_float", "as_uint8", "centered_grid", "normal", "psnr", "untouched"]


def as_float(img: np.ndarray) -> np.ndarray:
    """uint8 (0..255) or float image -> a new float32 array in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    raise TypeError(f"expected a uint8 or float image, got dtype {img.dtype}")


def as_uint8(img: np.ndarray) -> np.ndarray:
    """float image in [0, 1] -> uint8, rounding to nearest (exact inverse of :func:`as_float`)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def untouched(img: np.ndarray) -> np.ndarray:
    """The result of degrading by nothing: a uint8 copy for uint8 input (same bytes), else float32."""
    return img.copy() if img.dtype == np.uint8 else as_float(img)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two images of the same shape (inf if equal).

    Both uint8 (peak 255) or both float in [0, 1] (peak 1). scikit-image has one, but it is a
    test-only dependency here and warns on identical inputs.
    """
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("psnr needs non-empty images")
    peak = 255.0 if a.dtype == np.uint8 else 1.0
    # In blocks of rows: whole-image float64 copies of a 64 MP photo would take 4.6 GB at once.
    rows = a.reshape(len(a), -1) if a.ndim > 1 else a.reshape(1, -1)
    other = b.reshape(rows.shape)
    step = max(1, _PSNR_BLOCK_VALUES // rows.shape[1])
    total = 0.0
    for start in range(0, rows.shape[0], step):
        diff = rows[start : start + step].astype(np.float64) - other[start : start + step]
        total += float(np.einsum("ij,ij->", diff, diff))
    mse = total / a.size
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


_PSNR_BLOCK_VALUES = 1 << 20  # 8 MB of float64 per block


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 samples (float32 generation is ~2x faster than float64)."""
    return rng.standard_normal(shape, dtype=np.float32)


def centered_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to the centre as a (H,1) column and a (1,W) row (broadcasting)."""
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2.0)[:, None]
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2.0)[None, :]
    return ys, xs

