"""Score-CAM for the ViT streams: the base class every method subclasses, and the exact method.

Score-CAM (Wang et al., 2020) weights each channel of a layer's activations by the class score of
the input masked with that channel's (upsampled, min-max normalised) map, then sums the weighted
maps. On DINOv2-giant's last ``norm1`` that is 1,536 channels: 1,536 forward passes per image and
stream. Methods differ only in how they get the channel scores, so a method is a small subclass
of :class:`ScoreCAM` (itself a pytorch-grad-cam :class:`BaseCAM`) that implements
:meth:`ScoreCAM.channel_scores`: a generator that *asks* for masked passes
(:class:`ScoreRequest`) and returns the scores (:class:`ChannelScores`). Who answers the
requests, in which batches, precision and order, is the execution plan's business
(:mod:`forensic.explain.plan`, :mod:`forensic.explain.engine`): the same method runs alone
through grad-cam's ``forward`` or in lockstep with the other streams' methods.

- :class:`ExactScoreCAM` asks for every channel once: exactly what ``pytorch_grad_cam.ScoreCAM``
  computes (tested to 1e-5 against it), with the masks kept at the token grid and built one batch
  at a time on the device (ScoreCAM materialises all of them: 1.2 GB for 1,536 channels at 252
  px), its hooks released after the first pass, the target layer's activations optionally taken
  from the verdict pass, progress reported, and bf16 autocast available.
- :class:`~forensic.explain.fast.FastScoreCAM` (the ``fast`` method) estimates the scores from a
  few gradient passes and refines them adaptively; it states its own fidelity.
- :class:`~forensic.explain.adaptive.AdaptiveScoreCAM` (``adaptive``) runs ``fast`` and scores
  the remaining channels exactly when that fidelity is not high.

The target layer's tokens are turned into a (C, rows, cols) map by :func:`vit_reshape`, with the
grid computed from the input size and the model's patch size.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

__all__ = [
    "FAKE_TARGET",
    "ScoreRequest",
    "ScoreReply",
    "ChannelScores",
    "CamFidelity",
    "CamResult",
    "ScoreCAM",
    "ExactScoreCAM",
    "GridMasks",
    "vit_reshape",
    "assemble_cam",
]

#: explain the "fake" logit (class index 1)
FAKE_TARGET = ClassifierOutputTarget(1)

#: progress callback: (masked passes done, passes planned)
Progress = Callable[[int, int], None]


def vit_reshape(*, num_prefix_tokens: int, patch_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A grad-cam ``reshape_transform``: ViT tokens (B, prefix + N, C) -> (B, C, rows, cols).

    The grid is derived from the token count and the patch size (square inputs), never hard-coded.
    """

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, num_prefix_tokens:]
        n = patches.shape[1]
        rows = math.isqrt(n)
        if rows * rows != n:
            raise ValueError(f"{n} patch tokens do not form a square grid (patch size {patch_size})")
        return patches.reshape(tokens.shape[0], rows, rows, -1).permute(0, 3, 1, 2)

    return reshape


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
class ChannelScores:
    """What a method returns: one score per channel, for estimates their fidelity, and which
    channels were scored exactly (a (C,) bool mask; None: all of them or not recorded)."""

    scores: torch.Tensor
    fidelity: CamFidelity | None = None
    checked: torch.Tensor | None = None


ScoreGenerator = Generator[ScoreRequest, ScoreReply, ChannelScores]


@dataclass(frozen=True)
class CamResult:
    """A stream's Score-CAM.

    Attributes:
        input_map: (S, S) map over the stream's input, in [0, 1] (grad-cam's normalisation).
        grid_map: (rows, cols) non-negative map at the token grid, before upsampling.
        forward_passes: model forward passes it took (gradient passes included).
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


def assemble_cam(scores: torch.Tensor, activations: torch.Tensor, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Channel scores and activations (C, rows, cols) -> (input map (H, W), grid map), as grad-cam does.

    ``softmax(scores)``-weighted sum of the activations, ReLU, then grad-cam's min-max scaling and
    resize (``compute_cam_per_layer`` and ``aggregate_multi_layers`` with one layer).
    """
    weights = torch.softmax(scores.float(), dim=-1).cpu().numpy()
    acts = activations.float().cpu().numpy()
    grid = np.maximum((weights[:, None, None] * acts).sum(axis=0), 0)
    scaled = scale_cam_image(grid[None], (size[1], size[0]))
    return scale_cam_image(np.maximum(scaled, 0))[0], grid


# ------------------------------------------------------------------------------------- the base
class ScoreCAM(BaseCAM):
    """The base of every Score-CAM method: grad-cam's ``BaseCAM`` with lean, batched scoring.

    A subclass sets :attr:`name` and implements :meth:`channel_scores`; everything else (the
    hooked pass or the verdict's activations, masks, batches, autocast, progress, pass counts,
    the map) is here. Called like any grad-cam CAM: ``cam(x, targets)`` -> maps (B, H, W).

    Args:
        model: ``model(x)`` -> logits (B, classes).
        target_layers: the layer(s) whose activations weight the maps.
        reshape_transform: tokens -> (B, C, rows, cols), e.g. :func:`vit_reshape`.
        batch_size: masked images per forward pass.
        grad_batch_size: masked images per forward + backward pass (default: ``batch_size`` on a
            GPU, at most 8 on a CPU).
        progress: called with (passes done, passes planned) after each batch.
        autocast_dtype: run the masked passes under autocast in this dtype.
    """

    #: the method's name in the registry (:mod:`forensic.explain.methods`)
    name: ClassVar[str] = ""
    #: what a user choosing the method reads (the app's choices, the CLI's help)
    label: ClassVar[str] = ""
    #: the keyword options of the method's own (callers may pass options of other methods: they are dropped)
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model: nn.Module,
        target_layers: list[nn.Module],
        reshape_transform: Callable | None = None,
        *,
        batch_size: int = 32,
        grad_batch_size: int | None = None,
        progress: Progress | None = None,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform=reshape_transform, uses_gradients=False)
        # BaseCAM registered hooks at construction; they are registered per call instead
        self.activations_and_grads.release()
        self.batch_size = batch_size
        self.grad_batch_size = grad_batch_size or (batch_size if self.device.type == "cuda" else min(batch_size, 8))
        self.progress = progress
        self.autocast_dtype = autocast_dtype
        self.forward_passes = 0
        self.backward_passes = 0
        self.grid_cams: np.ndarray | None = None  # (B, rows, cols) before upsampling, after ReLU
        self.results: list[ChannelScores] = []

    # ---------------------------------------------------------------- what a method implements
    def channel_scores(self, masks: GridMasks) -> ScoreGenerator:
        """Yields :class:`ScoreRequest` s, receives :class:`ScoreReply` s, returns :class:`ChannelScores`."""
        raise NotImplementedError

    def planned_passes(self, channels: int) -> int:
        """The most masked passes :meth:`channel_scores` asks for (for progress and budgets)."""
        return channels

    # ---------------------------------------------------------------- grad-cam's entry point
    def forward(
        self, input_tensor: torch.Tensor, targets=None, eigen_smooth: bool = False, *, activations: torch.Tensor | None = None
    ) -> np.ndarray:
        """Score-CAM maps (B, H, W) of ``input_tensor`` (B, 3, H, W).

        ``activations``: the (single) target layer's output for this input, if already at hand
        (the verdict pass keeps it); the hooked forward pass is then skipped.
        """
        input_tensor = input_tensor.to(self.device)
        self.forward_passes = self.backward_passes = 0
        self.results = []
        hooks = ActivationsAndGradients(self.model, self.target_layers, self.reshape_transform)
        self.activations_and_grads = hooks
        try:
            if activations is not None:
                if len(self.target_layers) != 1:
                    raise ValueError("precomputed activations need exactly one target layer")
                acts = activations.detach().to(self.device)
                kept = [self.reshape_transform(acts) if self.reshape_transform is not None else acts]
            else:
                with torch.no_grad(), self._autocast():
                    self.outputs = hooks(input_tensor)
                self.forward_passes += input_tensor.shape[0]
                kept = list(hooks.activations)  # release() clears the list in place
        finally:
            hooks.release()
        hooks.activations = [a.float() for a in kept]  # grad-cam reads them with numpy (no bf16); no hook fires while scoring
        if targets is None:
            targets = [FAKE_TARGET] * input_tensor.shape[0]
        try:
            return self.aggregate_multi_layers(self.compute_cam_per_layer(input_tensor, targets, eigen_smooth))
        finally:
            hooks.activations = []

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth=False):
        cam = super().get_cam_image(input_tensor, target_layer, targets, activations, grads, eigen_smooth)
        self.grid_cams = np.maximum(cam, 0)
        return cam

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads) -> np.ndarray:
        from .engine import MaskScorer, drive

        acts = torch.as_tensor(activations, device=self.device, dtype=torch.float32)
        weights = []
        for b, target in enumerate(targets):
            masks = GridMasks(acts[b], tuple(input_tensor.shape[-2:]))
            scorer = MaskScorer(
                self.model, input_tensor[b], masks, target=target, batch_size=self.batch_size,
                grad_batch_size=self.grad_batch_size, autocast_dtype=self.autocast_dtype,
                progress=self.progress, planned=self.planned_passes(masks.channels),
            )
            result = drive(self.channel_scores(masks), scorer)
            self.forward_passes += scorer.forward_passes
            self.backward_passes += scorer.backward_passes
            self.results.append(result)
            weights.append(torch.softmax(result.scores.float(), dim=-1))
        return torch.stack(weights).cpu().numpy()

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


class ExactScoreCAM(ScoreCAM):
    """Score-CAM with one forward pass per channel: pytorch-grad-cam's ``ScoreCAM``, computed lean."""

    name = "exact"
    label = "exact Score-CAM (one pass per channel, slow)"

    def channel_scores(self, masks: GridMasks) -> ScoreGenerator:
        reply = yield ScoreRequest(masks.maps)
        return ChannelScores(reply.scores)
