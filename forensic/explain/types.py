"""What explanations exchange: a method's interface, its requests and replies, the masks, the results.

Score-CAM (Wang et al., 2020) weights each channel of a layer's activations by the class score of
the input masked with that channel's (upsampled, min-max normalised) map, then sums the weighted
maps. Methods differ only in how they get the channel scores, so a method is a small subclass of
:class:`CamMethod` that implements :meth:`CamMethod.channel_scores`: a generator that *asks* for
masked passes (:class:`ScoreRequest`), receives :class:`ScoreReply` s and returns the scores
(:class:`ChannelScores`). Who answers the requests, in which batches, precision and order, is the
engine's business (:mod:`forensic.explain.engine`, as :mod:`forensic.explain.plan` decides).

This module imports no other explanation module: methods, the engine and the entry points all
build on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Progress",
    "ScoreRequest",
    "ScoreReply",
    "ChannelScores",
    "ScoreGenerator",
    "CamMethod",
    "GridMasks",
    "StreamInputs",
    "CamFidelity",
    "CamResult",
]

#: progress callback: (masked passes done, passes planned)
Progress = Callable[[int, int], None]


# ------------------------------------------------------------------------------------- protocol
@dataclass(frozen=True)
class ScoreRequest:
    """What a method asks for: the target score of the input masked by each of K grid maps.

    Attributes:
        maps: (K, rows, cols) grid maps (their upsamplings are the masks), on the device.
        grad: also the gradient of each score with respect to its grid map (a backward pass).
    """

    maps: torch.Tensor
    grad: bool = False


@dataclass(frozen=True)
class ScoreReply:
    """The answer to a :class:`ScoreRequest`, on the device (nothing is copied to the host).

    Attributes:
        scores: (K,) float32 target scores.
        grads: (K, rows, cols) float32 gradients, when asked for.
    """

    scores: torch.Tensor
    grads: torch.Tensor | None = None


@dataclass(frozen=True)
class ChannelScores:
    """What a method returns: one score per channel, for estimates their fidelity, and which
    channels were scored exactly (a (C,) bool mask; None: all of them or not recorded)."""

    scores: torch.Tensor
    fidelity: CamFidelity | None = None
    checked: torch.Tensor | None = None


ScoreGenerator = Generator[ScoreRequest, ScoreReply, ChannelScores]


class CamMethod:
    """The interface of a Score-CAM method (registered in :mod:`forensic.explain.methods`).

    A subclass sets :attr:`name`, :attr:`label` and :attr:`options` (the keyword arguments of its
    constructor) and implements :meth:`channel_scores`; the engine does everything else (the
    activations, masks, batches, precision, progress, pass counts, the map).
    """

    #: the method's name in the registry
    name: ClassVar[str] = ""
    #: what a user choosing the method reads (the app's choices, the CLI's help)
    label: ClassVar[str] = ""
    #: the keyword options of the method's own (callers may pass options of other methods: they are dropped)
    options: ClassVar[tuple[str, ...]] = ()

    def channel_scores(self, masks: GridMasks) -> ScoreGenerator:
        """Yields :class:`ScoreRequest` s, receives :class:`ScoreReply` s, returns :class:`ChannelScores`."""
        raise NotImplementedError

    def planned_passes(self, channels: int) -> int:
        """The most masked passes :meth:`channel_scores` asks for (for progress and budgets)."""
        return channels


# ------------------------------------------------------------------------------------- masks
def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(K, rows, cols) -> (K, H, W): ScoreCAM's bilinear upsampling (align_corners=True)."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]


class GridMasks:
    """One image's Score-CAM masks, kept at the token grid.

    ScoreCAM's mask for channel ``c`` is its map upsampled to the input size, then min-max
    normalised: ``M_c = (U a_c - lo_c) / (hi_c - lo_c + eps)``. Bilinear weights sum to one, so
    ``M_c = U b_c`` with ``b_c = (a_c - lo_c) / (hi_c - lo_c + eps)``: every mask is the upsampling
    of a (rows, cols) map. Keeping ``b`` (C x 324 values at 252 px) instead of the masks (C x 63,504)
    makes group means and first-order refinements cheap; full-size masks are built one batch at a
    time, on the device, only when a batch is scored.

    Attributes:
        activations: (C, rows, cols) the target layer's activations (float32).
        maps: (C, rows, cols) the ``b_c`` above.
        size: (H, W) the input size.
    """

    def __init__(self, grid: torch.Tensor, size: tuple[int, int], *, chunk: int = 64) -> None:
        grid = grid.float()
        lo, hi = [], []
        for start in range(0, grid.shape[0], chunk):  # the upsampled extremes, a chunk at a time
            flat = _upsample(grid[start : start + chunk], size).flatten(1)
            lo.append(flat.amin(dim=1))
            hi.append(flat.amax(dim=1))
        lo_t, hi_t = torch.cat(lo)[:, None, None], torch.cat(hi)[:, None, None]
        self.activations = grid
        self.maps = (grid - lo_t) / (hi_t - lo_t + 1e-8)
        self.size = size

    @property
    def channels(self) -> int:
        return self.maps.shape[0]

    def masks(self, maps: torch.Tensor) -> torch.Tensor:
        """Full-size masks of grid maps (K, rows, cols) -> (K, H, W)."""
        return _upsample(maps, self.size)


# ------------------------------------------------------------------------------------- inputs and results
@dataclass(frozen=True)
class StreamInputs:
    """One stream's input to explain and, when the verdict pass kept it, its target layer's output.

    Attributes:
        x: the normalised input (1, 3, S, S).
        activations: the last block's ``norm1`` output (1, prefix + N, C), or None (one more pass).
    """

    x: torch.Tensor
    activations: torch.Tensor | None = None


@dataclass(frozen=True)
class CamFidelity:
    """How close a fast map is expected to be to the exact Score-CAM map (see :mod:`forensic.explain.fast`).

    Attributes:
        expected_pearson: median, over plausible score errors, of the map's Pearson correlation
            with the exact map (the errors are modelled on those of the channels checked exactly).
        low_pearson: the 10th percentile of the same.
        agreement: Pearson correlation between the map before and after the last refinement
            round (1.0: the last checks did not move it).
        checked: channels whose score was computed exactly.
        channels: channels in all.
        rounds: refinement rounds run.
        fast_estimate: for a map the ``adaptive`` method finished exactly, the fast estimate's
            expected Pearson that sent it there (NaN otherwise).
    """

    expected_pearson: float
    low_pearson: float
    agreement: float
    checked: int
    channels: int
    rounds: int
    fast_estimate: float = math.nan

    @property
    def estimate(self) -> float:
        """The headline number: :attr:`expected_pearson`."""
        return self.expected_pearson

    @property
    def level(self) -> str:
        """``exact`` (every channel scored), ``high`` (expected Pearson >= 0.95), ``fair`` (>= 0.85) or ``low``."""
        if self.channels > 0 and self.checked >= self.channels:
            return "exact"
        if not math.isfinite(self.expected_pearson):
            return "unknown"
        return "high" if self.expected_pearson >= 0.95 else "fair" if self.expected_pearson >= 0.85 else "low"

    @property
    def why_exact(self) -> str:
        """`` (the fast estimate, expected r 0.69, was not high)`` for a map finished exactly after a fast estimate, else ``""``."""
        if self.level != "exact" or not math.isfinite(self.fast_estimate):
            return ""
        return f" (the fast estimate, expected r {self.fast_estimate:.2f}, was not high)"

    def summary(self) -> str:
        """One line for a user, e.g. ``fidelity high: expected Pearson 0.97 with exact Score-CAM (24 of 384 channels checked)``."""
        if self.level == "exact":
            return f"fidelity exact: all {self.channels} channels scored, the exact Score-CAM map{self.why_exact}"
        return (
            f"fidelity {self.level}: expected Pearson {self.expected_pearson:.2f} with exact Score-CAM "
            f"(10% chance below {self.low_pearson:.2f}; {self.checked} of {self.channels} channels checked)"
        )

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return round(float(x), 4) if math.isfinite(x) else None

        return {
            "level": self.level,
            "expected_pearson": num(self.expected_pearson),
            "low_pearson": num(self.low_pearson),
            "agreement": num(self.agreement),
            "checked": self.checked,
            "channels": self.channels,
            "rounds": self.rounds,
            "fast_estimate": num(self.fast_estimate),
        }


@dataclass(frozen=True)
class CamResult:
    """A stream's Score-CAM.

    Attributes:
        input_map: (S, S) map over the stream's input, in [0, 1] (grad-cam's normalisation).
        grid_map: (rows, cols) non-negative map at the token grid, before upsampling.
        forward_passes: model forward passes it took (gradient passes and the activations' pass included).
        method: the method's registry name (``exact``, ``fast``).
        seconds: wall time.
        backward_passes: of those passes, how many also ran backward (to the masks).
        fidelity: for an estimated map, how close to the exact map it is expected to be.
    """

    input_map: np.ndarray
    grid_map: np.ndarray
    forward_passes: int
    method: str
    seconds: float
    backward_passes: int = 0
    fidelity: CamFidelity | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "forward_passes": self.forward_passes,
            "backward_passes": self.backward_passes,
            "seconds": round(float(self.seconds), 3),
            "fidelity": None if self.fidelity is None else self.fidelity.to_dict(),
        }
