"""How closely a student follows its teacher on held-out images: the figures a distillation reports.

For one held-out set, given each model's per-stream P(fake) (after its calibration temperature):

- ``pearson``: Pearson correlation of the ensemble P(fake), the vote-weighted mean of the streams
  (texture 2, face 1, fusion 2; the face stream's weight dropped where the vote's
  ``face_fallback="abstain"`` rule drops it), *before* the 0.1 grid;
- ``vote_agreement``: the share of images where both give the same 0.1-grid verdict
  (:func:`forensic.ensemble.vote`, what ``python -m forensic predict`` prints);
- ``label_agreement``: the share with the same fake/real label;
- ``mae``: the mean absolute difference of the ensemble P(fake);
- per stream: Pearson and MAE of that stream's P(fake);
- ``auc`` and ``teacher_auc``: ROC AUC of each model's ensemble P(fake) against the true labels,
  over the images that have one (NaN without both classes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from forensic.calibration import apply_temperature
from forensic.config import VoteConfig
from forensic.ensemble import vote
from forensic.metrics import roc_auc

__all__ = ["stream_probs", "ensemble_prob", "grid_votes", "pearson", "agreement"]

log = logging.getLogger(__name__)


def stream_probs(logits: np.ndarray, streams: Sequence[str], temperatures: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Per stream, P(fake) of (N, S, 2) logits at each stream's temperature."""
    return {s: apply_temperature(logits[:, j], temperatures.get(s, 1.0)) for j, s in enumerate(streams)}


def _weights(probs: Mapping[str, np.ndarray], config: VoteConfig, face_fallback: np.ndarray) -> dict[str, np.ndarray]:
    n = len(face_fallback)
    weights = {s: np.full(n, float(config.weights[s])) for s in probs}
    if "face" in weights and config.face_fallback == "abstain":
        weights["face"][face_fallback] = 0.0
    return weights


def ensemble_prob(probs: Mapping[str, np.ndarray], config: VoteConfig, face_fallback: np.ndarray) -> np.ndarray:
    """The vote-weighted mean of the streams' P(fake), per image, before any rounding."""
    weights = _weights(probs, config, face_fallback)
    total = sum(weights.values())
    return sum(weights[s] * probs[s] for s in probs) / np.maximum(total, 1e-12)


def grid_votes(probs: Mapping[str, np.ndarray], config: VoteConfig, face_fallback: np.ndarray) -> np.ndarray:
    """The discretized vote (:func:`forensic.ensemble.vote`) of each image."""
    names = list(probs)
    return np.array(
        [vote({s: float(probs[s][i]) for s in names}, config, face_fallback=bool(face_fallback[i])).prob_fake for i in range(len(face_fallback))]
    )


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or there are fewer than two values."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _auc(prob: np.ndarray, labels: np.ndarray) -> float:
    known = labels >= 0
    if not known.any() or len(np.unique(labels[known])) < 2:
        return math.nan
    return roc_auc(prob[known], labels[known])


def agreement(
    student: Mapping[str, np.ndarray],
    teacher: Mapping[str, np.ndarray],
    *,
    config: VoteConfig,
    face_fallback: np.ndarray,
    labels: np.ndarray,
) -> dict[str, Any]:
    """The agreement figures of one held-out set (see the module docstring).

    Args:
        student, teacher: per stream, P(fake) of each image (the same streams, the same order of images).
        config: the vote (weights, grid, face fallback rule).
        face_fallback: per image, whether the face stream saw the whole image.
        labels: per image, 0 real, 1 fake or -1 unknown.
    """
    n = len(labels)
    if n == 0:
        return {"n": 0}
    ps, pt = ensemble_prob(student, config, face_fallback), ensemble_prob(teacher, config, face_fallback)
    gs, gt = grid_votes(student, config, face_fallback), grid_votes(teacher, config, face_fallback)
    return {
        "n": n,
        "pearson": pearson(ps, pt),
        "vote_agreement": float(np.mean(np.isclose(gs, gt))),
        "label_agreement": float(np.mean((gs >= config.threshold) == (gt >= config.threshold))),
        "mae": float(np.mean(np.abs(ps - pt))),
        "streams": {s: {"pearson": pearson(student[s], teacher[s]), "mae": float(np.mean(np.abs(student[s] - teacher[s])))} for s in student},
        "n_labelled": int((labels >= 0).sum()),
        "auc": _auc(ps, labels),
        "teacher_auc": _auc(pt, labels),
    }
