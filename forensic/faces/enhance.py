"""Enhanced copies of an image for the detector's retries when the original yields no face.

The idea of the authors' RetinaFace fallback chain: a degraded image that defeats the detector
may still give up its face once denoised, contrast-enhanced, median-filtered, upscaled or padded.
Each copy records how its coordinates relate to the image's, so boxes map back exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["RETRY_CHAIN", "RETRY_WORDS", "Attempt", "enhanced"]

#: Enhanced copies tried, in this order, when nothing is found on the original image.
RETRY_CHAIN: tuple[str, ...] = ("denoise", "clahe-sharpen", "median", "upscale-2x", "pad")

# How each retry is named in the one-sentence reason shown to users.
RETRY_WORDS = {
    "denoise": "denoised",
    "clahe-sharpen": "contrast-enhanced and sharpened",
    "median": "median-filtered",
    "upscale-2x": "upscaled",
    "pad": "padded",
}




@dataclass(frozen=True)
class Attempt:
    """An image the detector runs on, and how its coordinates relate to the original's:
    ``attempt = original * scale + offset`` (per axis, edge coordinates)."""

    name: str
    image: np.ndarray
    scale_x: float
    scale_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0


def _unsharp(image: np.ndarray, *, sigma: float, amount: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0)


def _clahe(image: np.ndarray, *, clip: float) -> np.ndarray:
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(8, 8)).apply(
        np.ascontiguousarray(lab[..., 0])
    )
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def _enhance_denoise(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    # The seed's strength (h = 15); OpenCV's colour variant expects BGR. An 11-pixel search window
    # instead of OpenCV's 21: the retries run on a small copy, where 11 pixels reach as far as 21
    # did on the full image, at a third of the cost.
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(bgr, None, 15, 15, 7, 11)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), 1.0, 0.0


def _enhance_clahe_sharpen(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    return _unsharp(_clahe(image, clip=3.0), sigma=2.0, amount=1.0), 1.0, 0.0


def _enhance_median(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    return cv2.medianBlur(image, 5), 1.0, 0.0


def _enhance_upscale(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    # Gamma chosen so the mean brightness moves to mid-grey: dark images get brighter, washed-out
    # ones darker (the seed used a fixed gamma); bounded so it never goes wild.
    mean = float(np.clip(image.mean() / 255.0, 0.02, 0.98))
    gamma = float(np.clip(math.log(0.5) / math.log(mean), 0.4, 2.5))
    lut = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    up = cv2.resize(cv2.LUT(image, lut), (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
    return _unsharp(up, sigma=3.0, amount=1.0), 2.0, 0.0


def _enhance_pad(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    # Mid-grey context lets the detector place a box on a face cut by the image edge. A quarter of
    # the long side, but at most half the short side: the padded copy has at most 4x the pixels of
    # the copy it pads whatever its shape (a quarter of a 16x5,000 sliver's long side would make it
    # a 2,500x7,500 image for MTCNN).
    h, w = image.shape[:2]
    pad = max(1, int(round(min(0.25 * max(h, w), 0.5 * min(h, w)))))
    out = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    return out, 1.0, float(pad)


_ENHANCERS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, float, float]]] = {
    "denoise": _enhance_denoise,
    "clahe-sharpen": _enhance_clahe_sharpen,
    "median": _enhance_median,
    "upscale-2x": _enhance_upscale,
    "pad": _enhance_pad,
}


def enhanced(working: Attempt, name: str) -> Attempt:
    """The ``name`` copy of ``working``, its coordinates still related to the original image's."""
    image, k, offset = _ENHANCERS[name](working.image)
    return Attempt(
        name,
        image,
        scale_x=working.scale_x * k,
        scale_y=working.scale_y * k,
        offset_x=offset,
        offset_y=offset,
    )

