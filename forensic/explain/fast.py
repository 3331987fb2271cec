"""The ``fast`` Score-CAM: grouped gradient estimates, refined adaptively, with a stated fidelity.

Exact Score-CAM scores every channel's mask with one forward pass. This method spends at most
``C / 8`` passes (``max_passes``) and says how far its map is expected to be from the exact one:

1. **Groups.** Channels are clustered by k-means on their min-max normalised token-grid maps
   (``n_groups``, default ``C / 16``). Each group's mean mask is scored once with the gradient of
   the score with respect to the mask (one forward + backward pass per group; masks are
   upsampled grid maps, :class:`~forensic.explain.types.GridMasks`, so the gradient lives on the
   (rows, cols) grid). Every channel's score is estimated to first order around its group's
   mask: ``s_c = s_g + <grad s(M_g), M_c - M_g>``.
2. **Adaptive refinement.** In rounds of ``round_size`` channels (default ``C / 64``), the
   channels whose error would move the map most are scored exactly: largest
   ``w_c * |a_c - M| * |M_c - M_g|`` (softmax weight, distance of the channel's activation map
   from the current map, distance of its mask from the group's; in a trained model's peaked
   softmax these are the top channels). Each exact score also corrects the estimates of its
   group (the mean error of the group's checked channels, shrunk towards zero). Refinement
   stops when the budget is spent, or when a round no longer moves the map (Pearson >= ``stop``
   between successive maps, after two rounds).
3. **Fidelity.** The errors the estimates made on the channels checked in step 2, *before* they
   were checked, are the evidence: a shared component along the channels' mean activation (it
   moves the map's level, hence which tokens survive the ReLU: the failure seen in practice) plus
   independent noise. Plausible errors of that size are drawn for the unchecked channels and the
   map recomputed; the median and 10th percentile of its Pearson correlation with the map
   returned are the :class:`~forensic.explain.types.CamFidelity`.

With one channel per group this is exactly Score-CAM. Measured against exact Score-CAM over 64
cases (``bench/cam_fidelity.py``, bench/RESULTS.md): the median map agrees closely, but a tail of
maps does not, and no allocation of the ``C / 8`` passes tried removed it: where the exact
softmax weights are nearly uniform, the map is a small difference between large cancelling
terms, and where few tokens survive the ReLU, it hinges on the map's level. The fidelity
estimate is there to flag those maps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .types import CamFidelity, CamMethod, ChannelScores, GridMasks, ScoreGenerator, ScoreRequest

__all__ = ["FastScoreCAM", "kmeans_groups", "map_fidelity"]


class FastScoreCAM(CamMethod):
    """Score-CAM from a few groups of similar channels, refined where it matters (see the module doc).

    Args:
        n_groups: channel groups scored with gradients (default: channels / 16).
        max_passes: most masked passes per image (default: channels / 8).
        round_size: channels scored exactly per refinement round (default: channels / 64).
        stop: stop refining once a round moves the map less than this (Pearson of successive maps).
        seed: seed of k-means and of the fidelity draws.
        draws: plausible error draws behind the fidelity estimate.
    """

    name = "fast"
    label = "fast Score-CAM (grouped channels, with a fidelity estimate)"
    options = ("n_groups", "max_passes", "round_size", "stop", "seed", "draws")

    def __init__(
        self,
        *,
        n_groups: int | None = None,
        max_passes: int | None = None,
        round_size: int | None = None,
        stop: float = 0.999,
        seed: int = 0,
        draws: int = 32,
    ) -> None:
        self.n_groups = n_groups
        self.max_passes = max_passes
        self.round_size = round_size
        self.stop = stop
        self.seed = seed
        self.draws = draws

    def budget(self, channels: int) -> int:
        """The most masked passes the estimate spends (default: channels / 8)."""
        return min(channels, self.max_passes or max(1, channels // 8))

    def groups(self, channels: int) -> int:
        """The groups asked of k-means (default: channels / 16; at most the budget); it may return fewer."""
        return max(1, min(self.n_groups or max(2, channels // 16), self.budget(channels)))

    def planned_passes(self, channels: int) -> int:
        return self.budget(channels)

    def channel_scores(self, masks: GridMasks) -> ScoreGenerator:
        maps, acts = masks.maps, masks.activations
        c = masks.channels
        budget = self.budget(c)
        labels, k = kmeans_groups(maps, self.groups(c), seed=self.seed)
        if k == c:  # one channel per group: nothing to estimate
            reply = yield ScoreRequest(maps)
            everything = torch.ones(c, dtype=torch.bool, device=maps.device)
            return ChannelScores(reply.scores, CamFidelity(1.0, 1.0, 1.0, c, c, 0), checked=everything)
        onehot = F.one_hot(labels, k).to(maps.dtype)  # (C, K)
        group_maps = (onehot.T @ maps.flatten(1) / onehot.sum(0)[:, None]).view(k, *maps.shape[1:])
        # upsampling is linear: the mean of a group's masks is the mask of its mean map, and the
        # gradient with respect to the grid map is U^T (the gradient with respect to the mask)
        reply = yield ScoreRequest(group_maps, grad=True)
        delta = maps - group_maps[labels]
        first_order = reply.scores[labels] + (delta * reply.grads[labels]).flatten(1).sum(1)
        spread = delta.flatten(1).norm(dim=1)

        tokens = acts.flatten(1)  # (C, T)
        level = tokens.mean(dim=1)
        level = (level - level.mean()) / (level.std() + 1e-12)
        known = torch.zeros(c, dtype=torch.bool, device=maps.device)
        exact = torch.zeros(c, dtype=first_order.dtype, device=maps.device)
        estimate = first_order
        errors, levels = [], []
        previous = _relu_map(estimate, tokens)
        agreement, rounds, used = math.nan, 0, k
        step = self.round_size or max(1, c // 64)
        while used < budget:
            n = min(step, budget - used)
            pick = _most_influential(estimate, tokens, spread, known, n)
            reply = yield ScoreRequest(maps[pick])
            errors.append(reply.scores - estimate[pick])
            levels.append(level[pick])
            known[pick] = True
            exact[pick] = reply.scores
            estimate = _corrected(first_order, labels, k, known, exact)
            current = _relu_map(estimate, tokens)
            agreement = float(_pearson(current, previous))  # the round's one host sync
            previous, rounds, used = current, rounds + 1, used + n
            if rounds >= 2 and agreement >= self.stop:
                break
        fidelity = map_fidelity(
            estimate, tokens, known,
            torch.cat(errors) if errors else None, torch.cat(levels) if levels else None, level,
            draws=self.draws, seed=self.seed,
        )
        return ChannelScores(estimate, CamFidelity(
            expected_pearson=fidelity[0], low_pearson=fidelity[1], agreement=agreement,
            checked=int(known.sum()), channels=c, rounds=rounds,
        ), checked=known)


def kmeans_groups(grid: torch.Tensor, k: int, *, seed: int = 0) -> tuple[torch.Tensor, int]:
    """k-means labels (C,) of the channels' grid maps (C, rows, cols), empty clusters dropped, and the group count."""
    from sklearn.cluster import KMeans

    c = grid.shape[0]
    k = max(1, min(k, c))
    if k == c:
        return torch.arange(c, device=grid.device), c
    feats = grid.flatten(1).cpu().numpy().astype(np.float64)
    km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(feats)
    labels = torch.as_tensor(km.labels_, device=grid.device, dtype=torch.long)
    used = torch.unique(labels)  # k-means may leave a cluster empty on degenerate maps
    remap = torch.full((k,), -1, device=grid.device, dtype=torch.long)
    remap[used] = torch.arange(len(used), device=grid.device)
    return remap[labels], len(used)


def _relu_map(scores: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """relu(sum_c softmax(scores)_c a_c) over the tokens, for one (T,) or several (D, C) score vectors."""
    return torch.relu(torch.softmax(scores.float(), dim=-1) @ tokens)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation along the last axis (0 where either side is constant)."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    denom = (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-30)
    return torch.where(denom > 1e-30, (a * b).sum(-1) / denom, torch.zeros_like(denom))


def _most_influential(scores, tokens, spread, known, n: int) -> torch.Tensor:
    """The ``n`` unchecked channels whose score error would move the map most (see the module doc)."""
    weights = torch.softmax(scores.float(), dim=-1)
    current = weights @ tokens
    influence = weights * (tokens - current).norm(dim=1) * (spread + 1e-3)
    influence = influence.masked_fill(known, -1.0)
    return torch.topk(influence, n).indices


def _corrected(first_order, labels, k: int, known, exact) -> torch.Tensor:
    """First-order estimates moved by their group's mean error on the checked channels (shrunk: n / (n + 1))."""
    error = torch.where(known, exact - first_order, torch.zeros_like(first_order))
    count = torch.zeros(k, device=labels.device, dtype=first_order.dtype).index_add_(0, labels, known.to(first_order.dtype))
    total = torch.zeros(k, device=labels.device, dtype=first_order.dtype).index_add_(0, labels, error)
    return torch.where(known, exact, first_order + (total / (count + 1.0))[labels])


def map_fidelity(
    scores: torch.Tensor,
    tokens: torch.Tensor,
    known: torch.Tensor,
    errors: torch.Tensor | None,
    error_levels: torch.Tensor | None,
    level: torch.Tensor,
    *,
    draws: int = 32,
    seed: int = 0,
) -> tuple[float, float]:
    """(median, 10th percentile) of the map's Pearson correlation with maps from plausibly wrong scores.

    Args:
        scores: (C,) the scores the map is made from (exact where ``known``).
        tokens: (C, T) the channels' activations.
        known: (C,) channels scored exactly (they get no error).
        errors: the estimation errors observed on checked channels (exact - estimate before the
            check); None: no evidence, the fidelity is unknown (NaN).
        error_levels: the standardised mean activation of those channels.
        level: (C,) every channel's standardised mean activation.

    The error model is ``e_c = beta * level_c + sigma * z_c`` with ``beta`` drawn from N(0,
    tau^2): ``beta``'s least-squares estimate on the observed errors and its standard error give
    ``tau^2 = beta_hat^2 + se^2``, the residual gives ``sigma``.
    """
    unknown = ~known
    if not bool(unknown.any()):
        return 1.0, 1.0
    if errors is None or errors.numel() < 2:
        return math.nan, math.nan
    e, x = errors.double(), error_levels.double()
    sxx = float((x * x).sum()) + 1e-12
    beta = float((x * e).sum()) / sxx
    sigma = math.sqrt(float(((e - beta * x) ** 2).mean()))
    tau = math.sqrt(beta**2 + sigma**2 / sxx)
    gen = torch.Generator(device=scores.device).manual_seed(seed)
    noise = sigma * torch.randn(draws, scores.numel(), generator=gen, device=scores.device)
    shared = tau * torch.randn(draws, 1, generator=gen, device=scores.device) * level[None].to(noise.dtype)
    drawn = scores.float()[None] + ((noise + shared) * unknown[None]).float()
    corr = _pearson(_relu_map(drawn, tokens), _relu_map(scores, tokens)[None]).cpu().numpy()
    return float(np.median(corr)), float(np.percentile(corr, 10))
