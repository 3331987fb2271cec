"""What can be wrong with an input image, in one line a non-expert can act on.

:class:`ImageError` is the only exception :func:`forensic.images.decode_image` raises for bad
input; the helpers here turn Pillow's, the OS's and numpy's failures into its messages.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = [
    "MAX_ASPECT_RATIO",
    "WHAT_TO_UPLOAD",
    "ImageError",
    "bomb_from_pillow",
    "check_size",
    "decode_failure",
    "display_name",
    "short_reason",
    "unidentified",
]


class ImageError(ValueError):
    """Anything wrong with an input image; the message is one line that says what to do."""

WHAT_TO_UPLOAD = "upload a JPEG, PNG, WebP, BMP, TIFF or GIF image"


#: The longest side may be at most this many times the shortest: a 16x50,000 sliver is no photo,
#: and every stage (face search, degradations, streams) is bounded by pixels *and* this ratio.
MAX_ASPECT_RATIO: int = 20


def check_size(size: tuple[int, int], *, limit: int, min_side: int) -> None:
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
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageError(
            f"The image is {width}x{height} pixels: its long side is over {MAX_ASPECT_RATIO} times its "
            f"short side (at most {MAX_ASPECT_RATIO}:1 is accepted): crop it to the part to analyse and try again."
        )


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def bomb_from_pillow(exc: Exception, limit: int) -> ImageError:
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


def decode_failure(exc: BaseException, name: str | None = None) -> ImageError:
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
        f"{what} is damaged and cannot be decoded ({short_reason(exc)}): re-export or re-download it."
    )


def unidentified(head: bytes, name: str | None) -> ImageError:
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
        return ImageError(f"{what} is text, not an image{named}: {WHAT_TO_UPLOAD}.")
    return ImageError(f"{what} is not a recognised image (unknown or damaged data): {WHAT_TO_UPLOAD}.")


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


def display_name(path: Any) -> str | None:
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


def short_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return reason[:120]
