"""Safe decoding of untrusted image input into RGB ``uint8`` arrays.

Everything that enters the library from outside (an upload in the web app, a path on the command
line, a file in a batch job, an array handed over by code) goes through :func:`decode_image`. It
refuses what it cannot decode correctly with one typed error, :class:`ImageError`, whose message is
a single line a non-expert can act on; it never lets a Pillow, OS or numpy exception escape.

What it does, in order:

0. refuse a path that is a named pipe, device or socket from its ``stat``, without opening it
   (reading one would wait for a writer, or never end);
1. open the file with Pillow restricted to a few common formats (some Pillow plugins are large
   attack surfaces, and EPS would even run Ghostscript);
2. check the size stored in the header against a pixel limit and a minimum side *before* any pixel
   is decoded, so a decompression bomb costs nothing;
3. take the first frame of animated or multi-page files;
4. apply the EXIF orientation;
5. convert any mode (bilevel, grey, palette, CMYK, YCbCr, 16-bit, 32-bit integer, float, with or
   without transparency) to RGB ``uint8``, compositing transparency on white.

Each non-trivial step is recorded as a human-readable note in :class:`DecodedImage`.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import dataclasses
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .runtime import ENV_VARIABLES, default_runtime

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "MAX_PIXELS_ENV",
    "DecodedImage",
    "ImageError",
    "ImageSource",
    "bounded",
    "fit_pixels",
    "decode_image",
    "default_max_pixels",
    "ensure_rgb_uint8",
    "load_image",
    "special_file_kind",
]

logger = logging.getLogger(__name__)

#: Built-in pixel limit (64 megapixels); the environment variable below overrides it.
DEFAULT_MAX_PIXELS: int = 64_000_000
#: Environment variable holding a pixel limit that replaces :data:`DEFAULT_MAX_PIXELS`.
MAX_PIXELS_ENV = ENV_VARIABLES["max_pixels"]
#: Images with a side shorter than this are refused.
DEFAULT_MIN_SIDE: int = 16

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray]

# Formats Pillow may use to open untrusted data. Pillow ships ~40 readers; most are rarely used and
# little fuzzed, and EPS hands the file to Ghostscript. JPEG covers MPO (multi-picture) camera files.
_ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF", "PPM", "AVIF")
_WHAT_TO_UPLOAD = "upload a JPEG, PNG, WebP, BMP, TIFF or GIF image"
_SNIFF_BYTES = 1024

_ORIENTATION_NOTES = {
    2: "mirrored left-right",
    3: "rotated 180°",
    4: "flipped upside down",
    5: "transposed (mirrored and rotated 90°)",
    6: "rotated 90°",
    7: "transversed (mirrored and rotated 270°)",
    8: "rotated 270°",
}
_ANIMATED_FORMATS = {"GIF", "PNG", "WEBP", "AVIF"}
_GREY_MODES = {"1", "L", "LA", "La"}


class ImageError(ValueError):
    """Anything wrong with an input image; the message is one line that says what to do."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image and what was done to it.

    Attributes:
        pixels: HxWx3 RGB ``uint8``, C-contiguous, owned by this object.
        format: Pillow's format name (``"JPEG"``, ``"PNG"``, ...), or None for arrays and
            in-memory PIL images.
        original_mode: Pillow mode before conversion (``"CMYK"``, ``"I;16"``, ``"P"`` ...); for
            numpy input the equivalent mode, or ``"<layout> <dtype>"`` where Pillow has none.
        original_size: (width, height) as stored, before EXIF orientation.
        notes: human-readable notes on each non-trivial step (orientation, frames, bit depth ...).
    """

    pixels: np.ndarray
    format: str | None
    original_mode: str
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        """Width of :attr:`pixels` (after EXIF orientation)."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Height of :attr:`pixels` (after EXIF orientation)."""
        return int(self.pixels.shape[0])


# ----------------------------------------------------------------------------------------------
# public API


def default_max_pixels() -> int:
    """The pixel limit in force: ``$FORENSIC_MAX_PIXELS`` if set, else :data:`DEFAULT_MAX_PIXELS`.

    Read through :func:`forensic.runtime.default_runtime`, so a CLI or a test can set the
    variable after import.

    Raises:
        ValueError: the variable is set but is not a positive integer (a configuration error,
            deliberately not an :class:`ImageError`).
    """
    return default_runtime().max_pixels or DEFAULT_MAX_PIXELS


def decode_image(
    source: ImageSource,
    *,
    max_pixels: int | None = None,
    min_side: int = DEFAULT_MIN_SIDE,
    fit: int | None = None,
) -> DecodedImage:
    """Decode untrusted image input into an RGB ``uint8`` image.

    Args:
        source: a path (``str`` or ``os.PathLike``), encoded bytes (``bytes``, ``bytearray``,
            ``memoryview``), a binary file object (``io.BytesIO``, an open file, an upload), a
            ``PIL.Image.Image`` (its current frame is used), or a numpy array (see
            :func:`ensure_rgb_uint8` for the accepted layouts).
        max_pixels: refuse images with more pixels than this, checked on the header before
            decoding. None means :func:`default_max_pixels`.
        min_side: refuse images whose width or height is smaller than this.
        fit: scale an image with more pixels than this down to fit (area averaging, aspect kept),
            with a note saying so. Done while decoding where the format allows (JPEG's reduced
            DCT scales, then Pillow's box reduction), so a huge upload never exists in memory as a
            full-size array: this is how a server bounds its memory (see :func:`bounded`).

    Returns:
        The pixels with the format, original mode and size, and notes on what was done.

    Raises:
        ImageError: for anything wrong with the input (never another exception type).
        ValueError: ``max_pixels``/``min_side`` (or ``$FORENSIC_MAX_PIXELS``) are not positive.
    """
    limit = default_max_pixels() if max_pixels is None else int(max_pixels)
    if limit <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if min_side < 1:
        raise ValueError(f"min_side must be at least 1, got {min_side}")
    if fit is not None and fit < 1:
        raise ValueError(f"fit must be >= 1 pixel, got {fit}")
    try:
        decoded = _decode_any(source, limit=limit, min_side=min_side, fit=fit)
        return decoded if fit is None else bounded(decoded, fit)
    except ImageError:
        raise
    except Exception as exc:  # untrusted input: no decoder error may escape as anything else
        logger.debug("unexpected error while decoding an image", exc_info=True)
        raise _decode_failure(exc) from exc


def load_image(source: ImageSource, **kwargs: Any) -> np.ndarray:
    """Decode ``source`` like :func:`decode_image` and return only the HxWx3 ``uint8`` pixels."""
    return decode_image(source, **kwargs).pixels


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
        _check_not_empty(array)
        return np.ascontiguousarray(array)
    rgb, _mode, _notes = _array_to_rgb(array)
    return rgb


# ----------------------------------------------------------------------------------------------
# dispatch on the kind of source


def _decode_any(source: Any, *, limit: int, min_side: int, fit: int | None = None) -> DecodedImage:
    if isinstance(source, np.ndarray):
        return _decode_array(source, limit=limit, min_side=min_side)
    if isinstance(source, Image.Image):
        return _decode_pil(source, name=None, fmt=source.format, limit=limit, min_side=min_side, fit=fit)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(source), name=None, limit=limit, min_side=min_side, fit=fit)
    if isinstance(source, (str, os.PathLike)):
        return _decode_path(source, limit=limit, min_side=min_side, fit=fit)
    if callable(getattr(source, "read", None)):
        data = source.read()
        if isinstance(data, str):
            raise ImageError("The file was opened in text mode: open it in binary mode ('rb') and try again.")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageError(
                f"Reading the file object returned {type(data).__name__}, not bytes: pass a binary file."
            )
        name = getattr(source, "name", None)
        return _decode_bytes(bytes(data), name=_display_name(name), limit=limit, min_side=min_side, fit=fit)
    raise ImageError(
        f"Unsupported input type {type(source).__name__}: pass a file path, bytes, a binary file "
        "object, a PIL image or a numpy array."
    )


def _decode_path(path: str | os.PathLike[str], *, limit: int, min_side: int, fit: int | None = None) -> DecodedImage:
    name = _display_name(path)
    text = os.fspath(path)
    if isinstance(text, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) and not os.path.exists(text):
        raise ImageError(
            f"The address {text[:100]!r} is a URL, which is not fetched: "
            "download the image and pass the file instead."
        )
    _refuse_special_file(text, name)
    try:
        handle = open(text, "rb")  # noqa: SIM115 - closed by the with-block below
    except FileNotFoundError:
        raise ImageError(f"File not found: {name}; check the path and try again.") from None
    except IsADirectoryError:
        raise ImageError(
            f"The path {name} is a folder, not an image file: pass the path of an image file."
        ) from None
    except PermissionError:
        raise ImageError(f"Permission denied reading {name}: check the file's permissions.") from None
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL byte in the path
        reason = _short_reason(exc)
        raise ImageError(f"Cannot read {name} ({reason}): check the path and try again.") from None
    # Streamed, not read whole: for a huge file only the header is read before the size check.
    with handle:
        return _decode_stream(handle, name=name, limit=limit, min_side=min_side, fit=fit)


def _refuse_special_file(path: str | bytes, name: str | None) -> None:
    """Refuse a named pipe, device or socket from its ``stat``, before opening it.

    Opening a FIFO for reading waits for a writer forever, and a device such as ``/dev/zero`` never
    ends: either would hang a batch. Missing files and folders are left to ``open`` to report.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    kind = special_file_kind(mode)
    if kind is not None:
        raise ImageError(f"The path {name} is {kind}, not an image file: pass the path of a regular image file.")


def special_file_kind(mode: int) -> str | None:
    """``"a named pipe (FIFO)"``, ``"a device"`` or ``"a socket"`` for such an ``st_mode``, else None."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _decode_bytes(data: bytes, *, name: str | None, limit: int, min_side: int, fit: int | None = None) -> DecodedImage:
    return _decode_stream(io.BytesIO(data), name=name, limit=limit, min_side=min_side, fit=fit)


def _decode_stream(
    stream: IO[bytes], *, name: str | None, limit: int, min_side: int, fit: int | None = None
) -> DecodedImage:
    """Decode from a seekable binary stream positioned at the start of the file."""
    head = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    if not head:
        what = f"The file {name}" if name else "The file"
        raise ImageError(f"{what} is empty (0 bytes): {_WHAT_TO_UPLOAD}.")
    try:
        opened = Image.open(stream, formats=_ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise _unidentified(head, name) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fires inside open() for sizes above 2 x Image.MAX_IMAGE_PIXELS (and
        # the warning above 1 x, when warnings are errors). We leave Pillow's global limit and the
        # warning filters alone (process-wide state) and only translate the refusal.
        raise _bomb_from_pillow(exc, limit) from None
    with opened as image:
        return _decode_pil(image, name=name, fmt=image.format, limit=limit, min_side=min_side, fit=fit)


# ----------------------------------------------------------------------------------------------
# the Pillow path: header checks, frame, orientation, mode conversion


def _decode_pil(
    image: Image.Image, *, name: str | None, fmt: str | None, limit: int, min_side: int, fit: int | None = None
) -> DecodedImage:
    original_mode = image.mode
    original_size = (int(image.size[0]), int(image.size[1]))
    # Only the header has been read so far: refuse bombs and slivers before decoding any pixel.
    _check_size(original_size, limit=limit, min_side=min_side)

    notes: list[str] = []
    frame_note = _frame_note(image, fmt)
    if frame_note:
        notes.append(frame_note)
    if _is_16bit_rgb(image):
        # Pillow keeps the top byte of each 16-bit sample when it opens a 48/64-bit PNG or TIFF
        # as "RGB"/"RGBA": that is the right 8-bit scaling (within 1 level of round(v / 257)).
        notes.append("16-bit image converted to 8-bit")

    if fit is not None:
        _draft(image, fit)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_from_pillow(exc, limit) from None
    except Exception as exc:
        raise _decode_failure(exc, name) from exc

    if fit is not None:
        image = _box_reduce(image, fit)
    oriented = _apply_orientation(image, notes)
    shown = original_size[::-1] if oriented.size == image.size[::-1] != image.size else original_size
    pixels = _pil_to_rgb(oriented, notes)
    del image, oriented
    if fit is not None:
        pixels = fit_pixels(pixels, fit)
        if pixels.shape[0] * pixels.shape[1] < shown[0] * shown[1]:
            notes.append(_scaled_note(shown, pixels, fit))
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        original_mode=original_mode,
        original_size=original_size,
        notes=tuple(notes),
    )


def _draft(image: Image.Image, fit: int) -> None:
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


# Modes whose channels Pillow's box reduction averages correctly (not palette indices or bit fields).
_REDUCIBLE_MODES = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "YCbCr", "I", "F"})


def _box_reduce(image: Image.Image, fit: int) -> Image.Image:
    """``image`` shrunk by the largest whole factor that keeps at least ``fit`` pixels, in Pillow.

    Done before the conversion to numpy, so the full-size copy of the pixels is never made; the
    exact fit is left to :func:`fit_pixels` on the smaller array.
    """
    width, height = image.size
    factor = math.isqrt(width * height // fit) if width * height > fit else 1
    if factor < 2 or image.mode not in _REDUCIBLE_MODES:
        return image
    return image.reduce(factor)


def _scaled_note(before: tuple[int, int], pixels: np.ndarray, max_pixels: int) -> str:
    width, height = before
    return (
        f"Analysed a {pixels.shape[1]}x{pixels.shape[0]} copy of the {width}x{height} image "
        f"(scaled down to at most {max_pixels / 1e6:.1f} MP)."
    )


def _frame_note(image: Image.Image, fmt: str | None) -> str | None:
    n_frames = int(getattr(image, "n_frames", 1) or 1)
    if n_frames <= 1:
        return None
    current = image.tell()
    if fmt in _ANIMATED_FORMATS:
        if current == 0:
            return f"animated image: analysed the first of {n_frames} frames"
        return f"animated image: analysed frame {current + 1} of {n_frames}"
    kind = "pages" if fmt == "TIFF" else "images"
    which = "the first" if current == 0 else f"number {current + 1}"
    return f"file holds {n_frames} {kind}: analysed {which}"


def _is_16bit_rgb(image: Image.Image) -> bool:
    """True when Pillow will unpack 16-bit samples into an 8-bit RGB(A) image."""
    if image.mode not in ("RGB", "RGBA"):
        return False
    for tile in getattr(image, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _apply_orientation(image: Image.Image, notes: list[str]) -> Image.Image:
    try:
        orientation = int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block must not make a readable image unusable
        logger.debug("unreadable EXIF block; orientation ignored", exc_info=True)
        notes.append("EXIF data unreadable: orientation not applied")
        return image
    if orientation not in _ORIENTATION_NOTES:
        return image
    transposed = ImageOps.exif_transpose(image)
    if transposed is None:  # only returned with in_place=True; kept for type checkers
        return image
    notes.append(f"EXIF orientation applied ({_ORIENTATION_NOTES[orientation]})")
    return transposed


def _pil_to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    try:
        return _convert_mode(image, notes)
    except ImageError:
        raise
    except MemoryError as exc:
        raise _decode_failure(exc) from exc
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


# ----------------------------------------------------------------------------------------------
# numpy input


def _decode_array(array: np.ndarray, *, limit: int, min_side: int) -> DecodedImage:
    _check_not_empty(array)
    if array.ndim in (2, 3):
        height, width = int(array.shape[0]), int(array.shape[1])
        _check_size((width, height), limit=limit, min_side=min_side)
    rgb, mode, notes = _array_to_rgb(array)
    if rgb is array:  # never alias the caller's buffer: they may keep writing to it
        rgb = rgb.copy()
    return DecodedImage(
        pixels=rgb,
        format=None,
        original_mode=mode,
        original_size=(int(rgb.shape[1]), int(rgb.shape[0])),
        notes=tuple(notes),
    )


def _array_to_rgb(array: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
    """Convert an accepted numpy layout to HxWx3 uint8; returns (rgb, mode-like name, notes)."""
    _check_not_empty(array)
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


# ----------------------------------------------------------------------------------------------
# small numeric helpers


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


# ----------------------------------------------------------------------------------------------
# checks and error messages


def _check_not_empty(array: np.ndarray) -> None:
    if array.size == 0:
        raise ImageError(f"The array is empty (shape {tuple(array.shape)}): pass an image with pixels.")


def _check_size(size: tuple[int, int], *, limit: int, min_side: int) -> None:
    width, height = size
    pixels = width * height
    if pixels > limit:
        scale = math.sqrt(limit / pixels)
        target = f"{max(1, int(width * scale))}x{max(1, int(height * scale))}"
        raise ImageError(
            f"The image is {width}x{height} pixels ({_megapixels(pixels)}), over the limit of "
            f"{_megapixels(limit)}: downscale it to at most {target} pixels and try again."
        )
    if min(width, height) < min_side:
        raise ImageError(f"The image is {width}x{height} pixels; at least {min_side}x{min_side} is needed.")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def _bomb_from_pillow(exc: Exception, limit: int) -> ImageError:
    match = re.search(r"\((\d+) pixels\)", str(exc))
    found = _megapixels(int(match.group(1))) if match else "too many pixels"
    effective = limit
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit:
        # Pillow raises above 2x its limit, and warns (an error only under -W error) above 1x.
        pillow_limit *= 1 if isinstance(exc, Image.DecompressionBombWarning) else 2
        effective = min(limit, pillow_limit)
    return ImageError(
        f"The image has {found}, over the limit of {_megapixels(effective)}: downscale it and try again."
    )


def _decode_failure(exc: BaseException, name: str | None = None) -> ImageError:
    what = f"The image file {name}" if name else "The image file"
    if isinstance(exc, MemoryError):
        return ImageError(
            f"{what} is too large to decode in the memory available: downscale it and try again."
        )
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return ImageError(
            f"{what} is truncated (an incomplete download or copy?): upload the complete file again."
        )
    return ImageError(
        f"{what} is damaged and cannot be decoded ({_short_reason(exc)}): re-export or re-download it."
    )


def _unidentified(head: bytes, name: str | None) -> ImageError:
    """Say what the data is, when we can tell, instead of only what it is not."""
    what = f"The file {name}" if name else "The file"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in stripped[:512]:
        return ImageError(
            f"{what} is a web page (HTML), not an image: save the picture itself "
            "(right-click, 'Save image as') and upload that."
        )
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in stripped):
        return ImageError(
            f"{what} is an SVG drawing, which is not supported: export it as PNG and upload that."
        )
    if head.startswith(b"%PDF"):
        return ImageError(
            f"{what} is a PDF document, not an image: export the page as PNG or JPEG and upload that."
        )
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"heif", b"mif1", b"msf1", b"hevc"):
        return ImageError(
            f"{what} is a HEIC/HEIF photo, which is not supported: convert it to JPEG and upload that."
        )
    if head.startswith(b"PK\x03\x04"):
        return ImageError(f"{what} is a ZIP archive, not an image: extract it and upload the images inside.")
    if _looks_like_text(head):
        suffix = Path(name.strip("'\"")).suffix if name else ""
        named = f" (its name ends in {suffix}, but it contains no image data)" if suffix else ""
        return ImageError(f"{what} is text, not an image{named}: {_WHAT_TO_UPLOAD}.")
    return ImageError(f"{what} is not a recognised image (unknown or damaged data): {_WHAT_TO_UPLOAD}.")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the end of the sniffed block
        try:
            decoded = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in decoded)
    return printable >= 0.95 * max(1, len(decoded))


def _display_name(path: Any) -> str | None:
    """The base name of a path, quoted: messages must not leak temp-folder paths or break lines."""
    if path is None:
        return None
    try:
        text = os.fspath(path)
    except TypeError:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    base = os.path.basename(text.rstrip("/\\")) or text
    return repr(base)


def _short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return reason[:120]


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
    note = _scaled_note((decoded.width, decoded.height), pixels, max_pixels)
    return dataclasses.replace(decoded, pixels=pixels, notes=decoded.notes + (note,))
