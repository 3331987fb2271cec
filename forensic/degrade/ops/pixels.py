"""Array helpers shared by the operations: float/uint8 conversion, image quality (PSNR, SSIM), seeded noise, coordinate grids."""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["as_float", "as_uint8", "centered_grid", "normal", "psnr", "ssim", "untouched"]


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


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004) of two RGB uint8 images, on their BT.601 luma.

    Gaussian window (sigma 1.5, 11x11), K1 = 0.01, K2 = 0.03, data range 255, population
    covariances, and the 5-pixel border left out of the mean: the settings of scikit-image's
    ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``. scikit-image is
    only a test dependency, so this is written out here (and tested against it).

    Computed in horizontal bands of about a megapixel, each with the window's 5 rows of context
    above and below, so the result is that of the whole image while the float64 maps stay ~8 MB.
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim needs images of the same shape, got {a.shape} and {b.shape}")
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    h, w = x.shape
    pad = 5  # the window's radius: the border scikit-image leaves out, and each band's context
    crop = min(h, w) > 2 * pad
    rows = range(pad, h - pad) if crop else range(h)
    band = max(2 * pad, _SSIM_BAND_PIXELS // w)
    total = 0.0
    for top in range(rows.start, rows.stop, band):
        bottom = min(top + band, rows.stop)
        lo, hi = max(0, top - pad), min(h, bottom + pad)
        smap = _ssim_map(x[lo:hi].astype(np.float64), y[lo:hi].astype(np.float64))
        kept = smap[top - lo : bottom - lo]
        total += float(kept[:, pad : w - pad].sum() if crop else kept.sum())
    count = len(rows) * (w - 2 * pad if crop else w)
    return total / count


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


# SSIM works on horizontal bands of about this many pixels, so its float64 maps stay small.
_SSIM_BAND_PIXELS = 1 << 20


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 samples (float32 generation is ~2x faster than float64)."""
    return rng.standard_normal(shape, dtype=np.float32)


def centered_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to the centre as a (H,1) column and a (1,W) row (broadcasting)."""
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2.0)[:, None]
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2.0)[None, :]
    return ys, xs

