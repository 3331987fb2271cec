"""The ``adaptive`` Score-CAM: the fast estimate where it is trustworthy, the exact map where it is not.

Runs :class:`~forensic.explain.fast.FastScoreCAM` (at most ``C / 8`` passes). When its fidelity
estimate (:class:`~forensic.explain.types.CamFidelity`) is below ``min_fidelity`` (default 0.95,
the ``high`` level), it scores every channel the estimate did not check, so the map *is* exact
Score-CAM, at the cost of exact less the channels already checked. The map's fidelity then reads
``exact`` and keeps the fast estimate that triggered the finish (``fast_estimate``).

Why finish exactly rather than refine further: on the hard cases of ``bench/cam_fidelity.py``,
spending two or four times the fast budget left maps as far from exact while making the fidelity
estimate more confident, so a partial finish would hide the very errors it is meant to catch
(bench/RESULTS.md). The cost is therefore bimodal: fast's where the estimate is sure, about
exact's where it is not.
"""

from __future__ import annotations

import torch

from .fast import FastScoreCAM
from .types import CamFidelity, ChannelScores, GridMasks, ScoreGenerator, ScoreRequest

__all__ = ["AdaptiveScoreCAM"]


class AdaptiveScoreCAM(FastScoreCAM):
    """Fast Score-CAM, finished exactly when its fidelity estimate is below ``min_fidelity``.

    Args:
        min_fidelity: the expected Pearson with exact Score-CAM a fast map must reach to be kept.
        other arguments: see :class:`~forensic.explain.fast.FastScoreCAM`.
    """

    name = "adaptive"
    label = "adaptive Score-CAM (fast, finished exactly when unsure)"
    options = (*FastScoreCAM.options, "min_fidelity")

    def __init__(self, *, min_fidelity: float = 0.95, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= min_fidelity <= 1.0:
            raise ValueError(f"min_fidelity must be in [0, 1], got {min_fidelity}")
        self.min_fidelity = min_fidelity

    def planned_passes(self, channels: int) -> int:
        """The most it may take: the group passes, then every channel scored once (the exact finish)."""
        groups = self.groups(channels)
        return channels + (groups if groups < channels else 0)

    def channel_scores(self, masks: GridMasks) -> ScoreGenerator:
        estimate = yield from super().channel_scores(masks)
        fid = estimate.fidelity
        c = masks.channels
        checked = estimate.checked
        if fid is None or checked is None or fid.level == "exact" or fid.expected_pearson >= self.min_fidelity:
            return estimate
        rest = (~checked).nonzero()[:, 0]
        reply = yield ScoreRequest(masks.maps[rest])
        scores = estimate.scores.clone()
        scores[rest] = reply.scores
        return ChannelScores(
            scores,
            CamFidelity(1.0, 1.0, fid.agreement, c, c, fid.rounds, fast_estimate=fid.expected_pearson),
            checked=torch.ones(c, dtype=torch.bool, device=scores.device),
        )
