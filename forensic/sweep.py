"""Robustness sweep of one image: a degradation family at strengths 0, 0.1, ..., 1.0.

For each strength: the verdict, each stream's P(fake), attention entropy and the cosine between
its pooled feature on the clean image and on the degraded one (the clean pass is computed once,
in the same batch as the degraded ones).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .degrade import SWEEP_STRENGTHS, at_strength, check_seed
from .images import load_image
from .pipeline import WorkItem

__all__ = ["SweepResult", "robustness_sweep", "DEFAULT_STRENGTHS"]

DEFAULT_STRENGTHS: tuple[float, ...] = SWEEP_STRENGTHS
"""0.0, 0.1, ..., 1.0: the protocol's sweep strengths (:data:`forensic.degrade.SWEEP_STRENGTHS`)."""


@dataclass
class SweepResult:
    """Rows (one per strength) of a sweep; ``rows[i]`` is JSON-able."""

    family: str
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "seed": self.seed, "rows": self.rows}


def robustness_sweep(
    detector,
    image: Any,
    *,
    family: str = "compound",
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    seed: int = 0,
    keep_images: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> SweepResult:
    """Runs ``detector`` on ``image`` degraded by ``family`` (see :func:`forensic.degrade.at_strength`).

    Every strength is one work item with stability against the clean image, which the pipeline
    analyses once, in the same batch (:meth:`~forensic.pipeline.Detector.run`); each row is read
    off its report. A strength that degrades nothing is the clean image itself (stability 1).
    """
    seed = check_seed(seed)  # before any work: a bad seed fails in one line, not after the clean pass
    pixels = load_image(image) if not isinstance(image, np.ndarray) else image
    result = SweepResult(family=family, seed=seed)
    specs = [at_strength(family, float(s)) for s in strengths]
    source = object()  # the one source of every item: its clean twin is analysed once
    items = [WorkItem(pixels, degradation=spec, seed=seed, stability=True, key=source) for spec in specs]
    for i, ((_, report), strength, spec) in enumerate(zip(detector.run(items, batch_size=len(items) + 1), strengths, specs)):
        if isinstance(report, Exception):
            raise report
        if progress is not None:
            progress(f"{family} at strength {strength:g}", (i + 1) / len(items))
        result.rows.append(
            {
                "strength": float(strength),
                "spec": None if spec is None else str(spec),
                "prob_fake": report.prob_fake,
                "label": report.label,
                "face_mode": report.face.mode,
                "streams": {
                    name: {
                        "prob_fake": s.prob_fake,
                        "attention_entropy": s.attention.normalized,
                        "stability": 1.0 if spec is None else s.stability,
                    }
                    for name, s in report.streams.items()
                },
            }
        )
        if keep_images:
            result.images.append(report.image)
    if progress is not None:
        progress("done", 1.0)
    return result
