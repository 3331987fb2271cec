"""Self-blended pseudo-fakes: a real face blended with a slightly altered copy of itself.

After Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images" (CVPR 2022): the copy's
colour, scale and position are jittered and it is blended back along a soft mask over the face,
leaving the boundary and statistics artifacts that face-swap blending leaves. It lets a user with
only real photos train a detector (``python -m train``) and gives the app honest "generated"
examples. Without a face box, the mask is a random ellipse near the centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["BlendResult", "self_blend"]


@dataclass(frozen=True)
class BlendResult:
    """The blended image and the soft mask (H, W) in [0, 1] where the copy was blended in."""

    image: np.ndarray
    mask: np.ndarray


def _jitter_colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
    hsv[..., 1] *= rng.uniform(0.85, 1.15)
    hsv[..., 2] *= rng.uniform(0.85, 1.15)
    out = cv2.cvtColor(np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    contrast = rng.uniform(0.9, 1.1)
    return np.clip((out - out.mean()) * contrast + out.mean(), 0, 255)


def _jitter_geometry(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    scale = rng.uniform(0.94, 1.06)
    dx, dy = rng.uniform(-0.02, 0.02) * w, rng.uniform(-0.02, 0.02) * h
    matrix = np.array([[scale, 0, (1 - scale) * w / 2 + dx], [0, scale, (1 - scale) * h / 2 + dy]], dtype=np.float32)
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _mask(shape: tuple[int, int], box: tuple[float, float, float, float] | None, rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    if box is None:
        cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
        ax, ay = w * rng.uniform(0.15, 0.3), h * rng.uniform(0.15, 0.3)
    else:
        x0, y0, x1, y1 = box
        cx, cy = (x0 + x1) / 2 + rng.uniform(-0.05, 0.05) * (x1 - x0), (y0 + y1) / 2 + rng.uniform(0.0, 0.08) * (y1 - y0)
        ax, ay = (x1 - x0) * rng.uniform(0.32, 0.45), (y1 - y0) * rng.uniform(0.38, 0.5)
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(cx), int(cy)), (max(1, int(ax)), max(1, int(ay))), float(rng.uniform(-15, 15)), 0, 360, 1.0, -1)
    sigma = max(1.0, 0.15 * min(ax, ay))
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=sigma)


def self_blend(
    image: np.ndarray,
    *,
    rng: np.random.Generator,
    face_box: tuple[float, float, float, float] | None = None,
    alpha: float | None = None,
) -> BlendResult:
    """A self-blended pseudo-fake of an RGB uint8 image.

    Args:
        image: the real image (H, W, 3) uint8.
        rng: the random generator (the same seed gives the same image).
        face_box: (x0, y0, x1, y1) of the face to blend over, or None for a central ellipse.
        alpha: the blend strength at the mask's centre; drawn from [0.5, 1] when None.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("self_blend expects an RGB uint8 image (H, W, 3)")
    source = _jitter_geometry(_jitter_colour(image, rng).astype(np.uint8), rng).astype(np.float32)
    mask = _mask(image.shape[:2], face_box, rng) * (rng.uniform(0.5, 1.0) if alpha is None else float(alpha))
    blended = source * mask[..., None] + image.astype(np.float32) * (1 - mask[..., None])
    return BlendResult(image=np.clip(np.rint(blended), 0, 255).astype(np.uint8), mask=mask)
