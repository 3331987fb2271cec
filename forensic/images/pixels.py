"""Any colour mode or array layout to RGB ``uint8``: Pillow modes (bilevel, grey, palette, CMYK,
YCbCr, 16-bit, 32-bit integer, float, with or without transparency) and numpy arrays, transparency
composited on white. Each conversion that changes more than the layout adds a note.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from .errors import ImageError, decode_failure

__all__ = ["array_to_rgb", "check_not_empty", "ensure_rgb_uint8", "is_16bit_rgb", "pil_to_rgb"]

logger = logging.getLogger("forensic.images")


_GREY_MODES = {"1", "L", "LA", "La"}


def ensure_rgb_uint8(array: Any) -> np.ndarray:
    """Validate an array passed in by code and return it as HxWx3 RGB ``uint8``, C-contiguous.

    Accepted: ``uint8`` / ``uint16`` / ``bool`` / float (values in 0..1) arrays of shape HxW,
    HxWx1 (grey), HxWx3 (RGB) or HxWx4 (RGBA, composited on white). An array that already is
    C-contiguous HxWx3 ``uint8`` is returned as is, without a copy. No size limits are applied.

    Raises:
        ImageError: not a numpy array, another shape or dtype, empty, NaN/infinite values, or a
            float array outside 0..1.
    """
    if not isinstance(array, np.ndarray):
        raise ImageError(
            f"Expected a numpy array of pixels, got {type(array).__name__}: "
            "pass an HxWx3 uint8 RGB array."
        )
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3:
        check_not_empty(array)
        return np.ascontiguousarray(array)
    rgb, _mode, _notes = array_to_rgb(array)
    return rgb


def is_16bit_rgb(image: Image.Image) -> bool:
    """True when Pillow will unpack 16-bit samples into an 8-bit RGB(A) image."""
    if image.mode not in ("RGB", "RGBA"):
        return False
    for tile in getattr(image, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def pil_to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    try:
        return _convert_mode(image, notes)
    except ImageError:
        raise
    except MemoryError as exc:
        raise decode_failure(exc) from exc
    except Exception:  # Pillow has no converter for a few rare modes ("La", ...)
        logger.debug("conversion of mode %s to RGB failed", image.mode, exc_info=True)
        raise ImageError(
            f"The image uses the colour mode {image.mode!r}, which cannot be converted to RGB: "
            "re-save it as an 8-bit RGB PNG or JPEG."
        ) from None


def _convert_mode(image: Image.Image, notes: list[str]) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_grey_to_rgb(image, notes)
    if mode in _GREY_MODES or (mode == "P" and _palette_is_grey(image)):
        notes.append("greyscale image copied to the three RGB channels")
    elif mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    elif mode in ("YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} image converted to RGB")

    if _has_transparency(image):
        return _flatten_on_white(np.asarray(image.convert("RGBA")), notes)
    # Pillow's convert() handles every remaining mode correctly, CMYK included (the JPEG decoder
    # already un-inverts Adobe CMYK); only high-depth grey above needs our own scaling.
    rgb = image if mode == "RGB" else image.convert("RGB")
    return np.array(rgb, dtype=np.uint8, order="C")


def _has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return True
    return bool(getattr(image, "has_transparency_data", False))


def _palette_is_grey(image: Image.Image) -> bool:
    palette = image.getpalette() or []
    triples = np.asarray(palette, dtype=np.int32).reshape(-1, 3) if len(palette) % 3 == 0 else None
    return triples is not None and triples.size > 0 and bool(np.all(triples == triples[:, :1]))


def _high_depth_grey_to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    """16-bit, 32-bit integer and float grey images: Pillow's own convert() clips these to 0..255."""
    values = np.asarray(image)
    transparent = None
    key = image.info.get("transparency")
    if isinstance(key, int) and not isinstance(key, bool):
        transparent = values == key

    if image.mode.startswith("I;16"):
        grey = _scale_uint16(values)
        notes.append("16-bit image converted to 8-bit")
    elif image.mode == "F":
        grey = _float_image_to_uint8(values.astype(np.float64), notes)
    else:  # "I": 32-bit signed; often 16-bit data in disguise (old PNG/TIFF readers)
        grey = _int_image_to_uint8(values.astype(np.int64), notes)
    notes.append("greyscale image copied to the three RGB channels")
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    if transparent is not None and transparent.any():
        rgb[transparent] = 255
        notes.append("transparency flattened onto white")
    return np.ascontiguousarray(rgb)


def _int_image_to_uint8(values: np.ndarray, notes: list[str]) -> np.ndarray:
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi <= 255:
        return values.astype(np.uint8)
    if lo >= 0 and hi <= 65535:
        notes.append("16-bit image converted to 8-bit")
        return _scale_uint16(values)
    notes.append(f"32-bit image rescaled from its range {lo}..{hi} to 0..255")
    return _rescale(values.astype(np.float64), lo, hi)


def _float_image_to_uint8(values: np.ndarray, notes: list[str]) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise ImageError(
            "The image contains invalid (NaN or infinite) pixel values: re-export it as an 8-bit PNG or JPEG."
        )
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0.0 and hi <= 1.0:
        notes.append("floating-point image scaled from 0..1 to 0..255")
        return _round_to_uint8(values * 255.0)
    if lo >= 0.0 and hi <= 255.0:
        notes.append("floating-point image rounded to 8-bit")
        return _round_to_uint8(values)
    notes.append(f"floating-point image rescaled from its range {lo:g}..{hi:g} to 0..255")
    return _rescale(values, lo, hi)


def array_to_rgb(array: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
    """Convert an accepted numpy layout to HxWx3 uint8; returns (rgb, mode-like name, notes)."""
    check_not_empty(array)
    channels = 1 if array.ndim == 2 else (int(array.shape[2]) if array.ndim == 3 else 0)
    if channels not in (1, 3, 4):
        raise ImageError(
            f"Unsupported array shape {tuple(array.shape)}: pass HxW (grey), HxWx1, HxWx3 (RGB) "
            "or HxWx4 (RGBA) pixels."
        )
    layout = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    notes: list[str] = []
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        data, mode = array, layout
    elif kind == "b":
        data = array.astype(np.uint8) * np.uint8(255)
        mode = "1" if channels == 1 else f"{layout} bool"
        notes.append("boolean array mapped to 0 and 255")
    elif kind == "u" and array.dtype.itemsize == 2:
        data = _scale_uint16(array)
        mode = "I;16" if channels == 1 else f"{layout} uint16"
        notes.append("16-bit image converted to 8-bit")
    elif kind == "f":
        data = _unit_float_to_uint8(array)
        mode = "F" if channels == 1 else f"{layout} {array.dtype.name}"
        notes.append("floating-point image scaled from 0..1 to 0..255")
    else:
        raise ImageError(
            f"Unsupported array dtype {array.dtype}: pass uint8 (0..255), uint16, bool or float "
            "(0..1) pixels, e.g. with array.astype(np.uint8)."
        )

    if channels == 1:
        grey = data if data.ndim == 2 else data[:, :, 0]
        notes.append("greyscale image copied to the three RGB channels")
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2)), mode, notes
    if channels == 4:
        return _flatten_on_white(data, notes), mode, notes
    return np.ascontiguousarray(data), mode, notes


def _unit_float_to_uint8(array: np.ndarray) -> np.ndarray:
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ImageError("The array contains NaN or infinite values: pass finite pixel values in 0..1.")
    lo, hi = float(values.min()), float(values.max())
    tolerance = 1e-6  # float rounding in upstream arithmetic, not real out-of-range data
    if lo < -tolerance or hi > 1.0 + tolerance:
        hint = " (it looks like 0..255: divide by 255 or use uint8)" if hi <= 255.0 and lo >= 0.0 else ""
        raise ImageError(f"Float pixel values must lie in 0..1, found {lo:g}..{hi:g}{hint}.")
    return _round_to_uint8(np.clip(values, 0.0, 1.0) * 255.0)


def _scale_uint16(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 by proper scaling (round(v * 255 / 65535)), not by clipping."""
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _round_to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _rescale(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return _round_to_uint8((values - lo) * (255.0 / (hi - lo)))


def _flatten_on_white(rgba: np.ndarray, notes: list[str]) -> np.ndarray:
    """Composite straight (non-premultiplied) RGBA uint8 onto white, rounding to nearest."""
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    rgb = rgba[:, :, :3].astype(np.uint32)
    if bool(np.all(alpha == 255)):
        return np.ascontiguousarray(rgba[:, :, :3], dtype=np.uint8)
    notes.append("transparency flattened onto white")
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def check_not_empty(array: np.ndarray) -> None:
    if array.size == 0:
        raise ImageError(f"The array is empty (shape {tuple(array.shape)}): pass an image with pixels.")
