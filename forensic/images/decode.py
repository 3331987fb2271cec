"""Decoding untrusted input: the source kinds, the header checks, frames, orientation.

See the package's documentation (:mod:`forensic.images`) for the order of the steps.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
from typing import IO, Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..runtime import ENV_VARIABLES, default_runtime
from .errors import (
    WHAT_TO_UPLOAD,
    ImageError,
    bomb_from_pillow,
    check_size,
    decode_failure,
    display_name,
    short_reason,
    unidentified,
)
from .pixels import array_to_rgb, check_not_empty, is_16bit_rgb, pil_to_rgb
from .decoded import DecodedImage
from .scale import bounded, box_reduce, fit_pixels, jpeg_draft, scaled_note

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "MAX_PIXELS_ENV",
    "ImageSource",
    "decode_image",
    "default_max_pixels",
    "load_image",
    "special_file_kind",
]

logger = logging.getLogger("forensic.images")


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
        raise decode_failure(exc) from exc


def load_image(source: ImageSource, **kwargs: Any) -> np.ndarray:
    """Decode ``source`` like :func:`decode_image` and return only the HxWx3 ``uint8`` pixels."""
    return decode_image(source, **kwargs).pixels


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
        return _decode_bytes(bytes(data), name=display_name(name), limit=limit, min_side=min_side, fit=fit)
    raise ImageError(
        f"Unsupported input type {type(source).__name__}: pass a file path, bytes, a binary file "
        "object, a PIL image or a numpy array."
    )


def _decode_path(path: str | os.PathLike[str], *, limit: int, min_side: int, fit: int | None = None) -> DecodedImage:
    name = display_name(path)
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
        reason = short_reason(exc)
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
        raise ImageError(f"{what} is empty (0 bytes): {WHAT_TO_UPLOAD}.")
    try:
        opened = Image.open(stream, formats=_ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise unidentified(head, name) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fires inside open() for sizes above 2 x Image.MAX_IMAGE_PIXELS (and
        # the warning above 1 x, when warnings are errors). We leave Pillow's global limit and the
        # warning filters alone (process-wide state) and only translate the refusal.
        raise bomb_from_pillow(exc, limit) from None
    with opened as image:
        return _decode_pil(image, name=name, fmt=image.format, limit=limit, min_side=min_side, fit=fit)


def _decode_pil(
    image: Image.Image, *, name: str | None, fmt: str | None, limit: int, min_side: int, fit: int | None = None
) -> DecodedImage:
    original_mode = image.mode
    original_size = (int(image.size[0]), int(image.size[1]))
    # Only the header has been read so far: refuse bombs and slivers before decoding any pixel.
    check_size(original_size, limit=limit, min_side=min_side)

    notes: list[str] = []
    frame_note = _frame_note(image, fmt)
    if frame_note:
        notes.append(frame_note)
    if is_16bit_rgb(image):
        # Pillow keeps the top byte of each 16-bit sample when it opens a 48/64-bit PNG or TIFF
        # as "RGB"/"RGBA": that is the right 8-bit scaling (within 1 level of round(v / 257)).
        notes.append("16-bit image converted to 8-bit")

    if fit is not None:
        jpeg_draft(image, fit)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise bomb_from_pillow(exc, limit) from None
    except Exception as exc:
        raise decode_failure(exc, name) from exc

    if fit is not None:
        image = box_reduce(image, fit)
    oriented = _apply_orientation(image, notes)
    shown = original_size[::-1] if oriented.size == image.size[::-1] != image.size else original_size
    pixels = pil_to_rgb(oriented, notes)
    del image, oriented
    scaled_from = None
    if fit is not None:
        pixels = fit_pixels(pixels, fit)
        if pixels.shape[0] * pixels.shape[1] < shown[0] * shown[1]:
            scaled_from = (int(shown[0]), int(shown[1]))
            notes.append(scaled_note(shown, pixels, fit))
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        original_mode=original_mode,
        original_size=original_size,
        notes=tuple(notes),
        scaled_from=scaled_from,
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


def _decode_array(array: np.ndarray, *, limit: int, min_side: int) -> DecodedImage:
    check_not_empty(array)
    if array.ndim in (2, 3):
        height, width = int(array.shape[0]), int(array.shape[1])
        check_size((width, height), limit=limit, min_side=min_side)
    rgb, mode, notes = array_to_rgb(array)
    if rgb is array:  # never alias the caller's buffer: they may keep writing to it
        rgb = rgb.copy()
    return DecodedImage(
        pixels=rgb,
        format=None,
        original_mode=mode,
        original_size=(int(rgb.shape[1]), int(rgb.shape[0])),
        notes=tuple(notes),
    )
