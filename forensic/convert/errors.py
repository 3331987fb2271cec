"""The one error of the converter."""

from __future__ import annotations

__all__ = ["ConversionError"]


class ConversionError(ValueError):
    """A checkpoint could not be converted exactly; the message lists what did not match."""
