"""Robustness: detection metrics per stream and for the vote, per degradation family and level.

For each condition (the paper's protocol and the DeeperForensics levels, see
:mod:`analysis.conditions`) the pass rows of all images give P(fake) per stream and the vote;
:func:`forensic.metrics.binary_metrics` turns them into AUC, AP, accuracy (threshold 0.5), EER and
ECE. The vote's P(fake) is on the 0.1 grid, so its ranking metrics see ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forensic.metrics import binary_metrics

from .conditions import Condition
from .data import AnalysisSample
from .runner import pass_key
from .store import RowStore

__all__ = ["COLUMNS", "METRICS", "VOTE", "robustness_table", "collect_rows"]

#: the pseudo-stream name of the ensemble's vote in the tables
VOTE = "vote"
METRICS: tuple[str, ...] = ("auc", "ap", "accuracy", "eer", "ece")
COLUMNS: tuple[str, ...] = (
    "family", "level", "strength", "spec", "stream", "n", "n_real", "n_fake", "errors", *METRICS,
)


def collect_rows(store: RowStore, samples: Sequence[AnalysisSample], spec: str, *, seed: int) -> tuple[list[dict[str, Any]], int]:
    """The pass rows of ``samples`` at ``spec`` without error, and how many are missing or failed."""
    ok, bad = [], 0
    for s in samples:
        row = store.get(pass_key(s, spec, seed))
        if row is None or row.get("error") is not None:
            bad += 1
        else:
            ok.append(row)
    return ok, bad


def robustness_table(
    store: RowStore, samples: Sequence[AnalysisSample], conditions: Sequence[Condition], *, seed: int, streams: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per (condition, stream or ``vote``) with the columns :data:`COLUMNS`."""
    table = []
    for c in conditions:
        rows, bad = collect_rows(store, samples, c.spec, seed=seed)
        labels = [r["label"] for r in rows]
        for name in (*streams, VOTE):
            probs = [r["prob_fake"] if name == VOTE else r["streams"][name]["prob_fake"] for r in rows]
            base = {"family": c.family, "level": c.level, "strength": c.strength, "spec": c.spec, "stream": name, "errors": bad}
            if not rows:
                table.append({**base, "n": 0, "n_real": 0, "n_fake": 0})
                continue
            m = binary_metrics(probs, labels)
            table.append({**base, **{k: m[k] for k in ("n", "n_real", "n_fake", *METRICS)}})
    return table
