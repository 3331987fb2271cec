"""Stability: cosine between each stream's pooled feature on the clean and on the degraded image.

The paper's "cosine stability" (SEED_FACTS section 5): per stream, the feature the head sees, clean
vs degraded at strengths 0.0, 0.1, ..., 1.0 with a fixed seed per image, averaged over the set.
1.0 means the degradation did not move the representation; strength 0 is the clean image itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .conditions import Condition
from .data import AnalysisSample
from .robustness import collect_rows
from .store import RowStore
from .tables import summarize

__all__ = ["COLUMNS", "stability_table"]

COLUMNS: tuple[str, ...] = (
    "family", "level", "strength", "stream", "n", "cosine_mean", "cosine_std", "cosine_median", "cosine_q25", "cosine_q75", "cosine_min",
)


def stability_table(
    store: RowStore, samples: Sequence[AnalysisSample], conditions: Sequence[Condition], *, seed: int, streams: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per (condition, stream) with the columns :data:`COLUMNS`."""
    table = []
    for c in conditions:
        rows, _ = collect_rows(store, samples, c.spec, seed=seed)
        for name in streams:
            s = summarize(r["streams"][name]["stability"] for r in rows)
            table.append(
                {
                    "family": c.family, "level": c.level, "strength": c.strength, "stream": name, "n": s.n,
                    "cosine_mean": s.mean, "cosine_std": s.std, "cosine_median": s.median,
                    "cosine_q25": s.q25, "cosine_q75": s.q75, "cosine_min": s.min,
                }
            )
    return table
