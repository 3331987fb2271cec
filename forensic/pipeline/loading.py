"""The load stage: a source decoded safely, then the optional degradation (in a CPU pool)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..degrade import degrade_result, psnr
from ..images import DecodedImage, bounded, decode_image
from ..provenance import Provenance, read_provenance
from ..report import DegradationInfo
from .timing import timed

__all__ = ["Loaded", "load", "degrade"]


@dataclass(frozen=True)
class Loaded:
    """A decoded image, maybe degraded.

    Attributes:
        source: a name for the report (the path when the input was one).
        decoded: the decoded input.
        image: what the streams analyse: the decoded pixels, or their degraded copy.
        degradation: what was applied, or None.
        timings: seconds per stage so far (filled in by later stages too).
        provenance: the source file's metadata hints (a hint for the report, never part of the vote).
    """

    source: str | None
    decoded: DecodedImage
    image: np.ndarray
    degradation: DegradationInfo | None = None
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    provenance: Provenance | None = field(default=None, compare=False)

    @property
    def clean(self) -> np.ndarray | None:
        """The image before degradation (None when nothing was applied)."""
        return self.decoded.pixels if self.degradation is not None else None


def load(
    image: Any,
    *,
    degradation: str | None = None,
    compound: float | None = None,
    seed: int = 0,
    source: str | None = None,
    max_pixels: int | None = None,
    origin: Any = None,
    provenance: Provenance | None = None,
) -> Loaded:
    """Decodes ``image`` (a path, bytes, PIL image, array or :class:`DecodedImage`) and degrades it.

    ``max_pixels`` bounds the memory of what follows: a larger image is scaled down to fit before
    the degradation, and the report's notes say so (see :func:`forensic.images.bounded`).
    ``origin``: the file ``image`` was decoded from (a path or bytes), for its provenance hints
    (:func:`forensic.provenance.read_provenance`, which never raises); by default ``image`` itself.
    ``provenance``: those hints, already read (the items of one file share them).

    Raises:
        forensic.images.ImageError: the input is not a usable image.
        forensic.degrade.SpecError: the degradation spec is invalid.
    """
    timings: dict[str, float] = {}
    with timed(timings, "decode"):
        if isinstance(image, DecodedImage):
            decoded = image if max_pixels is None else bounded(image, max_pixels)
        else:
            decoded = decode_image(image, fit=max_pixels)
    hints = provenance
    if hints is None:
        with timed(timings, "provenance"):
            hints = read_provenance(image if origin is None else origin)
    if source is None and isinstance(image, (str, os.PathLike)):
        source = os.fspath(image)
    if degradation is None and compound is None:
        return Loaded(source, decoded, decoded.pixels, None, timings, hints)
    with timed(timings, "degrade"):
        pixels, info = degrade(decoded.pixels, degradation, compound, seed)
    return Loaded(source, decoded, pixels, info, timings, hints)


def degrade(image: np.ndarray, spec: str | None, compound: float | None, seed: int) -> tuple[np.ndarray, DegradationInfo]:
    """``image`` degraded by a spec or the compound engine, and the record of what was applied."""
    result = degrade_result(image, spec, compound=compound, seed=seed)
    applied = tuple({"name": op.name, "params": dict(op.params), "stage": op.stage} for op in result.applied)
    info = DegradationInfo(
        spec=str(spec) if spec is not None else None, compound=compound, seed=seed, applied=applied, psnr=psnr(image, result.image)
    )
    return result.image, info
