"""Work items: one source and what the pipeline is to do with it.

A :class:`WorkItem` is the unit every caller submits (the CLI, the app, the analyses, the sweep,
distillation): the source, an optional degradation (a spec or the compound engine's strength) with
its seed, whether to compare with the undegraded original (``stability``) or also return its report
(``pair``), and the explanation method. :func:`forensic.pipeline.flow.run_items` turns items into
reports; the clean original of a degraded item (its *twin*) is analysed once per source.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..faces import FaceResult

__all__ = ["WorkItem", "twin_identity"]


@dataclass(frozen=True)
class WorkItem:
    """What to do with one source.

    Attributes:
        source: a path, bytes, PIL image, RGB array or :class:`~forensic.images.DecodedImage`.
        degradation: a degradation spec or preset applied after decoding (:mod:`forensic.degrade`).
        compound: strength of the paper's compound degradation (instead of a spec).
        seed: seed of the degradation.
        stability: when degraded, compare each stream's pooled feature with the clean original's.
        pair: when degraded, also attach the clean original's report (``report.twin``), explained
            with the same method.
        explain: ``"none"`` or an explanation method (:func:`forensic.explain.method_names`).
        cam_groups: channel groups of the grouping Score-CAM methods (default: channels / 16).
        max_pixels: analyse a copy scaled down to at most this many pixels (None: as it is).
        name: the report's ``source`` (default: the path when the source is one).
        key: what identifies the source for sharing its clean twin between items (default: the
            path, or the source object itself); items with equal keys must have equal sources.
        face: the face analysis of the image as it will be analysed, when the caller already has
            it (a training set's cached faces, a clip's face track): the locate stage is skipped.
    """

    source: Any
    degradation: str | None = None
    compound: float | None = None
    seed: int = 0
    stability: bool = False
    pair: bool = False
    explain: str = "none"
    cam_groups: int | None = None
    max_pixels: int | None = None
    name: str | None = None
    key: Hashable | None = None
    face: FaceResult | None = None

    @property
    def degraded(self) -> bool:
        """Whether a degradation is applied."""
        return self.degradation is not None or self.compound is not None

    @property
    def needs_twin(self) -> bool:
        """Whether the clean original must be analysed too."""
        return self.degraded and (self.stability or self.pair)

    def twin(self) -> WorkItem:
        """The item of the clean original (explained like this one when paired)."""
        return replace(self, degradation=None, compound=None, stability=False, pair=False, face=None,
                       explain=self.explain if self.pair else "none")


def twin_identity(item: WorkItem) -> tuple:
    """What makes two items share a clean twin: the key (or path, or source object) and the pixel bound."""
    if item.key is not None:
        return ("key", item.key, item.max_pixels)
    if isinstance(item.source, (str, os.PathLike)):
        return ("path", os.fspath(item.source), item.max_pixels)
    return ("object", id(item.source), item.max_pixels)
