"""Entropy: how spread out each stream's attention is, as the image is degraded.

Two measures per stream and strength (SEED_FACTS section 5): the entropy of the last block's CLS
attention over the patch tokens (head-averaged, nats; from the stream passes), and the entropy of
the Score-CAM over the token grid (from the CAM rows, when Score-CAM was run). Both lie in
[0, ln N] with N the stream's patch count (ln 324 = 5.78 at 252 px); ``normalized`` divides by ln N.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .cam_drift import collect_cam_rows
from .conditions import Condition
from .data import AnalysisSample
from .robustness import collect_rows
from .store import RowStore
from .tables import summarize

__all__ = ["COLUMNS", "MEASURES", "entropy_table"]

#: ``attention``: CLS attention of the last block; ``cam``: the Score-CAM map
MEASURES: tuple[str, ...] = ("attention", "cam")
COLUMNS: tuple[str, ...] = (
    "family", "level", "strength", "stream", "measure", "n", "max_nats",
    "nats_mean", "nats_std", "nats_median", "nats_q25", "nats_q75", "normalized_mean", "normalized_std",
)


def _row(c: Condition, stream: str, measure: str, pairs: list[tuple[float, float]]) -> dict[str, Any]:
    nats = summarize(n for n, _ in pairs)
    norm = summarize(n / m for n, m in pairs if m)
    return {
        "family": c.family, "level": c.level, "strength": c.strength, "stream": stream, "measure": measure,
        "n": nats.n, "max_nats": max((m for _, m in pairs), default=None),
        "nats_mean": nats.mean, "nats_std": nats.std, "nats_median": nats.median, "nats_q25": nats.q25, "nats_q75": nats.q75,
        "normalized_mean": norm.mean, "normalized_std": norm.std,
    }


def entropy_table(
    passes: RowStore,
    samples: Sequence[AnalysisSample],
    conditions: Sequence[Condition],
    *,
    seed: int,
    streams: Sequence[str],
    cams: RowStore | None = None,
    cam_samples: Sequence[AnalysisSample] = (),
    cam_method: str = "fast",
    box: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """Rows per (condition, stream, measure) with the columns :data:`COLUMNS`; ``cam`` rows only with ``cams``."""
    table = []
    for c in conditions:
        rows, _ = collect_rows(passes, samples, c.spec, seed=seed)
        cam_rows = collect_cam_rows(cams, cam_samples, c.spec, seed=seed, method=cam_method, box=box) if cams is not None else []
        for name in streams:
            att = [(r["streams"][name]["attention_nats"], r["streams"][name]["attention_max"]) for r in rows]
            table.append(_row(c, name, "attention", [p for p in att if p[0] is not None]))
            if cams is not None:
                cam = [(r["streams"][name]["cam_nats"], r["streams"][name]["cam_max"]) for r in cam_rows]
                table.append(_row(c, name, "cam", [p for p in cam if p[0] is not None]))
    return table
