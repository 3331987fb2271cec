"""Complementarity: evidence that the three streams are not redundant.

On the clean images, per pair of streams:

- how alike their explanations and representations are: the cosine of their Score-CAM maps in
  image coordinates and of their DINOv2 CLS features, averaged over the set;
- how alike their *mistakes* are (a stream is wrong when ``(P(fake) >= 0.5) != label``):
  ``both_wrong`` (fraction of images both get wrong), ``either_wrong``, ``disagreement`` (exactly
  one is wrong), ``jaccard`` (both wrong / either wrong), ``error_corr`` (the phi coefficient: the
  Pearson correlation of the two 0/1 error indicators) and Yule's ``Q`` (the classic ensemble
  diversity statistic, (n11 n00 - n10 n01) / (n11 n00 + n10 n01); 1 = they fail together);
- ``prob_corr``: the Pearson correlation of their P(fake).

Low similarity and low error correlation are what make a vote of the streams worth more than any
one of them. :func:`coverage` adds how often *all* streams are wrong at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from forensic.metrics import pearson

from .runner import pair_name
from .tables import summarize

__all__ = ["COLUMNS", "ErrorAgreement", "error_agreement", "wrong", "coverage", "complementarity_table"]

COLUMNS: tuple[str, ...] = (
    "stream_a", "stream_b", "n", "error_rate_a", "error_rate_b", "both_wrong", "either_wrong", "disagreement",
    "jaccard", "error_corr", "yule_q", "prob_corr", "feature_cosine_mean", "feature_cosine_std",
    "n_cam", "cam_cosine_mean", "cam_cosine_std",
)


@dataclass(frozen=True)
class ErrorAgreement:
    """How two classifiers' errors co-occur over ``n`` images (rates are fractions of ``n``)."""

    n: int
    n11: int  # both wrong
    n10: int  # only a wrong
    n01: int  # only b wrong
    n00: int  # both right
    error_rate_a: float
    error_rate_b: float
    both_wrong: float
    either_wrong: float
    disagreement: float
    jaccard: float
    error_corr: float
    yule_q: float


def error_agreement(wrong_a: Sequence[bool] | np.ndarray, wrong_b: Sequence[bool] | np.ndarray) -> ErrorAgreement:
    """Agreement statistics of two 0/1 error vectors of the same length.

    Undefined statistics are NaN: ``jaccard`` when neither is ever wrong, ``error_corr`` when either
    vector is constant, ``yule_q`` when ``n11 n00 + n10 n01 = 0``; all rates when ``n = 0``.
    """
    a = np.asarray(wrong_a, dtype=bool).ravel()
    b = np.asarray(wrong_b, dtype=bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"error vectors differ in length: {a.size} vs {b.size}")
    n = int(a.size)
    n11, n10 = int(np.sum(a & b)), int(np.sum(a & ~b))
    n01, n00 = int(np.sum(~a & b)), int(np.sum(~a & ~b))

    def rate(k: int) -> float:
        return k / n if n else math.nan

    phi_den = math.sqrt(float((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)))
    q_den = n11 * n00 + n10 * n01
    return ErrorAgreement(
        n=n, n11=n11, n10=n10, n01=n01, n00=n00,
        error_rate_a=rate(n11 + n10),
        error_rate_b=rate(n11 + n01),
        both_wrong=rate(n11),
        either_wrong=rate(n11 + n10 + n01),
        disagreement=rate(n10 + n01),
        jaccard=n11 / (n11 + n10 + n01) if n11 + n10 + n01 else math.nan,
        error_corr=(n11 * n00 - n10 * n01) / phi_den if phi_den else math.nan,
        yule_q=(n11 * n00 - n10 * n01) / q_den if q_den else math.nan,
    )


def wrong(probs: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """Which predictions are wrong, predicting fake at ``P(fake) >= threshold`` (the vote's rule)."""
    return (np.asarray(probs, dtype=np.float64) >= threshold).astype(int) != np.asarray(labels, dtype=int)


def coverage(errors: Mapping[str, np.ndarray]) -> dict[str, float]:
    """``all_wrong``: fraction of images every stream gets wrong; ``any_right`` = 1 - that (an oracle's accuracy)."""
    stacked = np.stack([np.asarray(v, dtype=bool) for v in errors.values()])
    if stacked.shape[1] == 0:
        return {"all_wrong": math.nan, "any_right": math.nan}
    all_wrong = float(stacked.all(axis=0).mean())
    return {"all_wrong": all_wrong, "any_right": 1.0 - all_wrong}


def complementarity_table(
    pass_rows: Sequence[Mapping[str, Any]], cam_rows: Sequence[Mapping[str, Any]], *, streams: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per stream pair with the columns :data:`COLUMNS` (clean pass rows and clean CAM rows)."""
    labels = np.array([r["label"] for r in pass_rows], dtype=int)
    probs = {n: np.array([r["streams"][n]["prob_fake"] for r in pass_rows], dtype=np.float64) for n in streams}
    errs = {n: wrong(probs[n], labels) for n in streams}
    table = []
    for i, a in enumerate(streams):
        for b in streams[i + 1 :]:
            agree = asdict(error_agreement(errs[a], errs[b]))
            feat = summarize(r.get("cls_cosine", {}).get(pair_name(a, b)) for r in pass_rows)
            cam = summarize(r.get("cam_cosine", {}).get(pair_name(a, b)) for r in cam_rows)
            table.append(
                {
                    "stream_a": a, "stream_b": b,
                    **{k: agree[k] for k in ("n", "error_rate_a", "error_rate_b", "both_wrong", "either_wrong", "disagreement", "jaccard", "error_corr", "yule_q")},
                    "prob_corr": pearson(probs[a], probs[b]),
                    "feature_cosine_mean": feat.mean, "feature_cosine_std": feat.std,
                    "n_cam": cam.n, "cam_cosine_mean": cam.mean, "cam_cosine_std": cam.std,
                }
            )
    return table
