"""Score-CAM drift: how far each stream's explanation moves as the image is degraded.

Per image and strength (fixed seed per image), each stream's Score-CAM in image coordinates (the
face map pasted back) is compared with the same image's clean map:

- ``mass_in_box``: fraction of the map's mass inside the reference box (the face box found on the
  clean image, or a fixed ``--box``); ``background_mass`` = 1 - that. ``box_fraction`` is the box's
  share of the image, what a uniform map would give, and ``box_lift`` = mass / fraction (> 1: the
  map concentrates on the box). NaN without a box.
- ``centroid_shift``: distance between the maps' mass centres, in image fractions (0 .. 1.41).
- ``clean_corr``: Pearson correlation with the clean map (1 at strength 0).
- ``cam_entropy``: entropy of the map over the token grid, in nats (max ln N), and normalised.

A second table, :func:`cam_faithfulness_table` (``cam_faithfulness.csv``), says how faithful the
maps are at each strength: deletion and insertion AUC over each stream's input (RISE; lower and
higher are better), the same for a random map made like a Score-CAM map (the chance level), and,
for the fast method, the maps' own fidelity estimate (expected Pearson with the exact map).

The per-image measurements are in :mod:`analysis.maps` and :mod:`analysis.runner`; this module
aggregates them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .conditions import Condition
from .data import AnalysisSample
from .runner import cam_key
from .store import RowStore
from .tables import summarize

__all__ = ["COLUMNS", "FAITHFULNESS_COLUMNS", "cam_drift_table", "cam_faithfulness_table", "collect_cam_rows"]

COLUMNS: tuple[str, ...] = (
    "family", "level", "strength", "stream", "method", "n", "n_box",
    "mass_in_box_mean", "mass_in_box_std", "background_mass_mean", "box_fraction_mean", "box_lift_mean",
    "centroid_shift_mean", "centroid_shift_std", "clean_corr_mean", "clean_corr_std",
    "cam_entropy_mean", "cam_entropy_std", "cam_entropy_normalized_mean", "prob_fake_mean",
)

FAITHFULNESS_COLUMNS: tuple[str, ...] = (
    "family", "level", "strength", "stream", "method", "n",
    "deletion_auc_mean", "deletion_auc_std", "random_deletion_auc_mean",
    "insertion_auc_mean", "insertion_auc_std", "random_insertion_auc_mean",
    "deletion_gain_mean", "insertion_gain_mean", "n_fidelity", "fidelity_mean", "fidelity_min", "fidelity_low_mean",
)


def collect_cam_rows(
    store: RowStore, samples: Sequence[AnalysisSample], spec: str, *, seed: int, method: str, box: Sequence[float] | None
) -> list[dict[str, Any]]:
    """The CAM rows of ``samples`` at ``spec`` without error."""
    out = []
    for s in samples:
        row = store.get(cam_key(s, spec, seed, method, box))
        if row is not None and row.get("error") is None:
            out.append(row)
    return out


def _lift(stream: dict[str, Any]) -> float:
    mass, frac = stream.get("mass_in_box"), stream.get("box_fraction")
    if mass is None or frac is None or frac <= 0:
        return math.nan
    return mass / frac


def _normalized(stream: dict[str, Any]) -> float:
    nats, top = stream.get("cam_nats"), stream.get("cam_max")
    return math.nan if nats is None or not top else nats / top


def cam_drift_table(
    store: RowStore,
    samples: Sequence[AnalysisSample],
    conditions: Sequence[Condition],
    *,
    seed: int,
    method: str,
    box: Sequence[float] | None,
    streams: Sequence[str],
) -> list[dict[str, Any]]:
    """One row per (condition, stream) with the columns :data:`COLUMNS`."""
    table = []
    for c in conditions:
        rows = collect_cam_rows(store, samples, c.spec, seed=seed, method=method, box=box)
        for name in streams:
            per = [r["streams"][name] for r in rows]
            mass = summarize(p.get("mass_in_box") for p in per)
            shift = summarize(p.get("centroid_shift") for p in per)
            corr = summarize(p.get("clean_corr") for p in per)
            ent = summarize(p.get("cam_nats") for p in per)
            table.append(
                {
                    "family": c.family, "level": c.level, "strength": c.strength, "stream": name, "method": method,
                    "n": len(per), "n_box": mass.n,
                    "mass_in_box_mean": mass.mean, "mass_in_box_std": mass.std,
                    "background_mass_mean": 1.0 - mass.mean if mass.n else math.nan,
                    "box_fraction_mean": summarize(p.get("box_fraction") for p in per).mean,
                    "box_lift_mean": summarize(_lift(p) for p in per).mean,
                    "centroid_shift_mean": shift.mean, "centroid_shift_std": shift.std,
                    "clean_corr_mean": corr.mean, "clean_corr_std": corr.std,
                    "cam_entropy_mean": ent.mean, "cam_entropy_std": ent.std,
                    "cam_entropy_normalized_mean": summarize(_normalized(p) for p in per).mean,
                    "prob_fake_mean": summarize(p.get("prob_fake") for p in per).mean,
                }
            )
    return table


def cam_faithfulness_table(
    store: RowStore,
    samples: Sequence[AnalysisSample],
    conditions: Sequence[Condition],
    *,
    seed: int,
    method: str,
    box: Sequence[float] | None,
    streams: Sequence[str],
) -> list[dict[str, Any]]:
    """One row per (condition, stream) with the columns :data:`FAITHFULNESS_COLUMNS`.

    ``deletion_gain`` = random - map deletion AUC and ``insertion_gain`` = map - random insertion
    AUC, per image then averaged: > 0 where the map beats chance. ``fidelity_*``: the fast maps'
    expected Pearson with the exact map (empty for exact Score-CAM).
    """
    table = []
    for c in conditions:
        rows = collect_cam_rows(store, samples, c.spec, seed=seed, method=method, box=box)
        for name in streams:
            per = [r["streams"][name] for r in rows]
            deletion = summarize(p.get("deletion_auc") for p in per)
            insertion = summarize(p.get("insertion_auc") for p in per)
            fidelity = summarize(p.get("cam_fidelity") for p in per)
            table.append(
                {
                    "family": c.family, "level": c.level, "strength": c.strength, "stream": name, "method": method, "n": deletion.n,
                    "deletion_auc_mean": deletion.mean, "deletion_auc_std": deletion.std,
                    "random_deletion_auc_mean": summarize(p.get("random_deletion_auc") for p in per).mean,
                    "insertion_auc_mean": insertion.mean, "insertion_auc_std": insertion.std,
                    "random_insertion_auc_mean": summarize(p.get("random_insertion_auc") for p in per).mean,
                    "deletion_gain_mean": summarize(_gain(p, "random_deletion_auc", "deletion_auc") for p in per).mean,
                    "insertion_gain_mean": summarize(_gain(p, "insertion_auc", "random_insertion_auc") for p in per).mean,
                    "n_fidelity": fidelity.n, "fidelity_mean": fidelity.mean, "fidelity_min": fidelity.min,
                    "fidelity_low_mean": summarize(p.get("cam_fidelity_low") for p in per).mean,
                }
            )
    return table


def _gain(stream: dict[str, Any], better: str, worse: str) -> float:
    a, b = stream.get(better), stream.get(worse)
    return math.nan if a is None or b is None else a - b
