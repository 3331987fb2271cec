"""Binary detection metrics shared by training and analysis (scikit-learn underneath).

Conventions: scores are P(fake) in [0, 1]; labels are 0 (real) / 1 (fake); "positive" = fake;
a score at or above the threshold is predicted fake (the vote's rule). Ranking metrics (AUC, AP,
EER) are undefined when only one class is present: they return NaN and log a warning instead of
raising, so a sweep over degradations never dies on one odd subset.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from .calibration import as_probs_and_labels, expected_calibration_error

__all__ = ["accuracy", "average_precision", "binary_metrics", "equal_error_rate", "pearson", "roc_auc"]

logger = logging.getLogger(__name__)


def _one_class(y: np.ndarray, what: str) -> bool:
    n_fake = int(y.sum())
    if 0 < n_fake < y.shape[0]:
        return False
    logger.warning(
        "%s is undefined with only one class (%d real, %d fake): returning NaN", what, y.shape[0] - n_fake, n_fake
    )
    return True


def _eer(p: np.ndarray, y: np.ndarray) -> float:
    # sklearn has no EER; it is read off its ROC curve. The ROC is piecewise linear between its
    # points (a tie of scores is a straight segment: random tie-breaking), and FNR - FPR decreases
    # along it from 1 to -1, so it crosses zero once: on the first segment where it turns <= 0.
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    diff = (1.0 - tpr) - fpr
    i = int(np.argmax(diff <= 0))  # exists: the last ROC point is (1, 1), diff = -1
    if i == 0 or diff[i] == 0:
        return float(fpr[i])
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def roc_auc(prob_fake: Any, labels: Any) -> float:
    """Area under the ROC curve (the NTIRE challenge metric); NaN if only one class is present."""
    p, y = as_probs_and_labels(prob_fake, labels)
    return math.nan if _one_class(y, "ROC AUC") else float(roc_auc_score(y, p))


def average_precision(prob_fake: Any, labels: Any) -> float:
    """Average precision with fake as the positive class; NaN if only one class is present.

    (With only fakes AP would trivially be 1, with only reals it is undefined; NaN for both keeps
    the ranking metrics consistent.)
    """
    p, y = as_probs_and_labels(prob_fake, labels)
    return math.nan if _one_class(y, "average precision") else float(average_precision_score(y, p))


def accuracy(prob_fake: Any, labels: Any, threshold: float = 0.5) -> float:
    """Fraction of correct predictions, predicting fake when ``prob_fake >= threshold``."""
    p, y = as_probs_and_labels(prob_fake, labels)
    return float(np.mean((p >= threshold).astype(np.int64) == y))


def equal_error_rate(prob_fake: Any, labels: Any) -> float:
    """Equal error rate: the error where the false positive rate equals the false negative rate.

    Computed on scikit-learn's ROC curve (``FNR = 1 - TPR``): the crossing of ``FPR == FNR`` is
    found on the segment between the two ROC points that bracket it and linearly interpolated
    there (exact when a ROC point lies on it). The interpolation is the error of the threshold
    between those points with ties broken at random, so the EER can be a value no single hard
    threshold reaches (e.g. 0.25 with one real/fake tie). NaN if only one class is present.
    """
    p, y = as_probs_and_labels(prob_fake, labels)
    return math.nan if _one_class(y, "EER") else _eer(p, y)


def binary_metrics(prob_fake: Any, labels: Any, *, threshold: float = 0.5, n_bins: int = 15) -> dict[str, float]:
    """All the usual metrics at once.

    Returns:
        ``auc``, ``ap``, ``accuracy`` (at ``threshold``), ``eer``, ``ece`` (top-label, ``n_bins``
        bins), and the counts ``n``, ``n_fake``, ``n_real`` (ints). Ranking metrics are NaN
        if only one class is present (one warning is logged).
    """
    p, y = as_probs_and_labels(prob_fake, labels)
    n_fake = int(y.sum())
    one_class = _one_class(y, "AUC / AP / EER")
    return {
        "auc": math.nan if one_class else float(roc_auc_score(y, p)),
        "ap": math.nan if one_class else float(average_precision_score(y, p)),
        "accuracy": accuracy(p, y, threshold),
        "eer": math.nan if one_class else _eer(p, y),
        "ece": expected_calibration_error(p, y, n_bins=n_bins, kind="top-label"),
        "n": int(y.shape[0]),
        "n_fake": n_fake,
        "n_real": int(y.shape[0]) - n_fake,
    }


def pearson(a: Any, b: Any) -> float:
    """Pearson correlation of two equally shaped arrays over all their values (maps are flattened).

    NaN when either side is constant or there are fewer than two values. Centred sums in float64,
    clipped to [-1, 1] (rounding can step just past it).

    Raises:
        ValueError: the shapes differ.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"pearson needs equal shapes, got {x.shape} and {y.shape}")
    if x.size < 2:
        return math.nan
    x, y = x.ravel() - x.mean(), y.ravel() - y.mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    return math.nan if den == 0 else float(np.clip(x @ y / den, -1.0, 1.0))
