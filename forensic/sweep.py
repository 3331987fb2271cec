"""Robustness sweep of one image: a degradation family at strengths 0, 0.1, ..., 1.0, and its
attention film-strip.

For each strength: the family's parameter in its own units (JPEG quality, sigma ...), the verdict,
each stream's P(fake), attention entropy and the cosine between its pooled feature on the clean
image and on the degraded one (the clean pass is computed once, in the same batch as the degraded
ones). The film-strip (:func:`attention_filmstrip`) is each stream's Score-CAM map at a few
strengths, with its cosine to the clean map.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .degrade import SWEEP_STRENGTHS, at_strength, check_seed
from .degrade.families import check_family, parameter_at
from .images import load_image
from .pipeline import WorkItem

__all__ = ["SweepResult", "robustness_sweep", "DEFAULT_STRENGTHS", "FilmStrip", "attention_filmstrip", "strength_for",
           "FILMSTRIP_JPEG_QUALITIES", "FILMSTRIP_STRENGTHS"]

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
                "param": parameter_at(family, float(strength)),
                "spec": None if spec is None else str(spec),
                "prob_fake": report.prob_fake,
                "label": report.label,
                "verdict": report.verdict.word,
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


FILMSTRIP_JPEG_QUALITIES: tuple[int, ...] = (90, 70, 50, 30, 10)
"""The JPEG film-strip's default qualities."""
FILMSTRIP_STRENGTHS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
"""Every other family's default film-strip strengths (five, evenly spaced)."""


def strength_for(family: str, value: float) -> float:
    """The smallest strength in [0, 1] (on a 0.0001 grid) whose parameter is closest to ``value``
    (e.g. JPEG quality 70 -> 0.3158); see :func:`forensic.degrade.families.parameter_at`."""
    check_family(family)
    grid = np.linspace(0.0, 1.0, 10001)
    found = [abs(float(parameter_at(family, s)["value"]) - float(value)) for s in grid]
    return round(float(grid[int(np.argmin(found))]), 4)


@dataclass
class FilmStrip:
    """Each stream's Score-CAM at a few strengths of one family, clean first.

    ``rows[i]`` (JSON-able): strength, ``param`` (the family's parameter, as in the sweep), spec,
    P(fake) and per stream its P(fake) and ``map_cosine`` (the cosine of its map to the clean map;
    1 for the clean column). ``overlays[i]``: per stream, the map over the analysed image (RGB).
    """

    family: str
    seed: int
    method: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    overlays: list[dict[str, np.ndarray]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "seed": self.seed, "method": self.method, "rows": self.rows}


def _map_cosine(clean: np.ndarray | None, degraded: np.ndarray | None) -> float | None:
    from .explain.similarity import map_similarity

    if clean is None or degraded is None:
        return None
    if degraded.shape != clean.shape:  # no family resizes today; a future one must not break the comparison
        import cv2

        degraded = cv2.resize(degraded.astype(np.float32), (clean.shape[1], clean.shape[0]), interpolation=cv2.INTER_LINEAR)
    return map_similarity({"clean": clean, "degraded": degraded}).get("clean", "degraded")


def attention_filmstrip(
    detector,
    image: Any,
    family: str = "jpeg",
    *,
    values: Sequence[float] | None = None,
    strengths: Sequence[float] | None = None,
    method: str = "fast",
    seed: int = 0,
) -> FilmStrip:
    """Each stream's Score-CAM (``method``) on ``image`` clean and degraded by ``family`` at a few levels.

    Args:
        values: the family's parameter values (JPEG quality, sigma ...), mapped to strengths by
            :func:`strength_for`; or
        strengths: strengths in (0, 1]. Neither: JPEG qualities 90, 70, 50, 30, 10, other
            families strengths 0.2, 0.4, ..., 1.
        method: the explanation method (:func:`forensic.explain.method_names`), not ``"none"``.

    The clean image is analysed (and explained) once, as every level's twin (one work item per level,
    paired, sharing one key); its column comes first.

    Raises:
        ValueError: unknown family, a strength outside [0, 1], no levels, ``method`` ``"none"``, or a bad seed.
    """
    from .viz.pictures import stream_overlays

    seed = check_seed(seed)
    check_family(family)
    if method == "none":
        raise ValueError("the film-strip shows Score-CAM maps: choose an explanation method, e.g. method='fast'")
    if values is not None and strengths is not None:
        raise ValueError("give values or strengths, not both")
    if values is not None:
        levels = [strength_for(family, v) for v in values]
    elif strengths is not None:
        levels = [float(s) for s in strengths]
    else:
        levels = ([strength_for(family, q) for q in FILMSTRIP_JPEG_QUALITIES] if family == "jpeg"
                  else list(FILMSTRIP_STRENGTHS))
    if not levels:
        raise ValueError("the film-strip needs at least one level (values or strengths)")
    specs = [at_strength(family, s) for s in levels]
    if any(spec is None for spec in specs):
        raise ValueError("film-strip strengths must be above 0 (the clean column is always shown first)")
    pixels = load_image(image) if not isinstance(image, np.ndarray) else image
    source = object()  # one key: the clean twin is analysed and explained once for every level
    items = [WorkItem(pixels, degradation=str(spec), seed=seed, stability=True, pair=True, explain=method, key=source)
             for spec in specs]
    reports = []
    for _, report in detector.run(items, batch_size=len(items) + 1):
        if isinstance(report, Exception):
            raise report
        reports.append(report)
    clean = reports[0].twin
    strip = FilmStrip(family=family, seed=seed, method=method)
    for strength, spec, report in zip([0.0, *levels], [None, *specs], [clean, *reports]):
        strip.rows.append({
            "strength": strength,
            "param": parameter_at(family, strength),
            "spec": None if spec is None else str(spec),
            "prob_fake": report.prob_fake,
            "streams": {
                name: {"prob_fake": s.prob_fake,
                       "map_cosine": _map_cosine(clean.streams[name].cam_image, s.cam_image)}
                for name, s in report.streams.items()
            },
        })
        strip.overlays.append(stream_overlays(report))
    return strip
