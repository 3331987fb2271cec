"""How closely a student follows its teacher on held-out images: the figures a distillation reports.

For one held-out set, given each model's per-stream P(fake) (after its calibration temperature),
each image goes through the vote of :func:`forensic.ensemble.vote` (what ``python -m forensic
predict`` prints), whose weights (texture 2, face 1, fusion 2; the face stream's weight dropped
where its ``face_fallback`` rule drops it) also weight the ensemble P(fake) before the grid:

- ``pearson``: Pearson correlation (:func:`forensic.metrics.pearson`) of the ensemble P(fake);
- ``vote_agreement``: the share of images where both give the same 0.1-grid verdict;
- ``label_agreement``: the share with the same fake/real label;
- ``mae``: the mean absolute difference of the ensemble P(fake);
- per stream: Pearson and MAE of that stream's P(fake);
- ``auc`` and ``teacher_auc``: ROC AUC of each model's ensemble P(fake) against the true labels,
  over the images that have one (NaN without both classes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from forensic.calibration import apply_temperature
from forensic.config import VoteConfig
from forensic.ensemble import vote
from forensic.metrics import pearson, roc_auc

__all__ = ["stream_probs", "ensemble_votes", "agreement"]


def stream_probs(logits: np.ndarray, streams: Sequence[str], temperatures: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Per stream, P(fake) of (N, S, 2) logits at each stream's temperature."""
    return {s: apply_temperature(logits[:, j], temperatures.get(s, 1.0)) for j, s in enumerate(streams)}


def ensemble_votes(probs: Mapping[str, np.ndarray], config: VoteConfig, face_fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the ensemble P(fake) before any rounding (the streams' mean with the weights the
    vote used) and the discretized vote (:func:`forensic.ensemble.vote`)."""
    n = len(face_fallback)
    mean, grid = np.zeros(n), np.zeros(n)
    for i in range(n):
        p = {s: float(probs[s][i]) for s in probs}
        result = vote(p, config, face_fallback=bool(face_fallback[i]))
        mean[i] = sum(result.weights[s] * p[s] for s in p) / sum(result.weights.values())
        grid[i] = result.prob_fake
    return mean, grid


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
    (ps, gs), (pt, gt) = ensemble_votes(student, config, face_fallback), ensemble_votes(teacher, config, face_fallback)
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
