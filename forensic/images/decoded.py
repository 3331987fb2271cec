"""What decoding gives: :class:`DecodedImage`, the RGB pixels and the notes on what was done to them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DecodedImage"]


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
        scaled_from: (width, height), after EXIF orientation, of the image :attr:`pixels` were
            scaled down from to fit a pixel budget (``fit``, :func:`~forensic.images.bounded`);
            None when they are the image's own size.
    """

    pixels: np.ndarray
    format: str | None
    original_mode: str
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()
    scaled_from: tuple[int, int] | None = None

    @property
    def width(self) -> int:
        """Width of :attr:`pixels` (after EXIF orientation)."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Height of :attr:`pixels` (after EXIF orientation)."""
        return int(self.pixels.shape[0])
