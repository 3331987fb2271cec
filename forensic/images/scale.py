"""Bounded copies of big images: scaled down to a pixel budget, while decoding where the format allows."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
from PIL import Image

from .decoded import DecodedImage

__all__ = ["bounded", "box_reduce", "fit_pixels", "jpeg_draft", "scaled_note"]

logger = logging.getLogger("forensic.images")


# Modes whose channels Pillow's box reduction averages correctly (not palette indices or bit fields).
_REDUCIBLE_MODES = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "YCbCr", "I", "F"})


def fit_pixels(pixels: np.ndarray, max_pixels: int) -> np.ndarray:
    """``pixels`` itself if it has at most ``max_pixels`` pixels, else a copy scaled down to fit
    (area interpolation, aspect kept)."""
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    h, w = pixels.shape[:2]
    if h * w <= max_pixels:
        return pixels
    import cv2

    scale = math.sqrt(max_pixels / (h * w))
    return cv2.resize(pixels, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)


def bounded(decoded: DecodedImage, max_pixels: int) -> DecodedImage:
    """``decoded`` itself if it has at most ``max_pixels`` pixels, else a copy scaled down to fit
    (see :func:`fit_pixels`), with a note saying so.

    A server bounds its memory this way: degradations work in float32 at the image's size
    (a 64 MP upload needs ~2.5 GB), the streams only ever see a 252-px crop and 224-px resize.
    """
    pixels = fit_pixels(decoded.pixels, max_pixels)
    if pixels is decoded.pixels:
        return decoded
    note = scaled_note((decoded.width, decoded.height), pixels, max_pixels)
    return dataclasses.replace(decoded, pixels=pixels, notes=decoded.notes + (note,),
                               scaled_from=decoded.scaled_from or (decoded.width, decoded.height))


def jpeg_draft(image: Image.Image, fit: int) -> None:
    """Asks a JPEG decoder for a 1/2, 1/4 or 1/8 scale that still has at least ``fit`` pixels.

    The DCT-domain reduction never materialises the full-size pixels, so a huge JPEG costs the
    memory and time of the copy actually analysed. Other formats ignore it.
    """
    width, height = image.size
    if width * height <= fit or image.format != "JPEG":
        return
    scale = math.sqrt(fit / (width * height))
    try:
        image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    except Exception:  # a decoder that cannot draft decodes at full size, which is only slower
        logger.debug("JPEG draft mode refused", exc_info=True)


def box_reduce(image: Image.Image, fit: int) -> Image.Image:
    """``image`` shrunk by the largest whole factor that keeps at least ``fit`` pixels, in Pillow.

    Done before the conversion to numpy, so the full-size copy of the pixels is never made; the
    exact fit is left to :func:`fit_pixels` on the smaller array.
    """
    width, height = image.size
    factor = math.isqrt(width * height // fit) if width * height > fit else 1
    if factor < 2 or image.mode not in _REDUCIBLE_MODES:
        return image
    return image.reduce(factor)


def scaled_note(before: tuple[int, int], pixels: np.ndarray, max_pixels: int) -> str:
    width, height = before
    return (
        f"Analysed a {pixels.shape[1]}x{pixels.shape[0]} copy of the {width}x{height} image "
        f"(scaled down to at most {max_pixels / 1e6:.1f} MP)."
    )
