"""Score-CAM for the ViT streams: exact (pytorch-grad-cam's algorithm) and a fast grouped variant.

Score-CAM (Wang et al., 2020) weights each channel of a layer's activations by the class score of
the input masked with that channel's (upsampled, min-max normalised) map, then sums the weighted
maps. On DINOv2-giant's last ``norm1`` that is 1,536 channels: 1,536 forward passes per image and
stream. Both classes here are small subclasses of pytorch-grad-cam's :class:`BaseCAM`:

- :class:`ExactScoreCAM` computes exactly what ``pytorch_grad_cam.ScoreCAM`` computes (tested
  to 1e-5 against it), but keeps the masks at the token grid and builds the masked inputs one
  batch at a time on the model's device (ScoreCAM materialises all of them at once: 1.2 GB for
  1,536 channels at 252 px), releases its hooks after the first pass (ScoreCAM's hooks copy every
  scoring batch's activations to the CPU), can take the target layer's activations from the
  verdict pass instead of a hooked pass, reports progress through a callback and can run under
  bf16 autocast.
- :class:`FastScoreCAM` clusters channels whose activation maps look alike (k-means on the
  normalised token-grid maps), scores each cluster's mean mask once and refines every channel's
  score to first order with the gradient at its cluster's mask: ``n_groups`` forward and backward
  passes instead of one forward pass per channel.

The target layer's tokens are turned into a (C, rows, cols) map by :func:`vit_reshape`, with the
grid computed from the input size and the model's patch size.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

__all__ = ["ExactScoreCAM", "FastScoreCAM", "CamResult", "vit_reshape", "FAKE_TARGET", "stream_cam"]

#: explain the "fake" logit (class index 1)
FAKE_TARGET = ClassifierOutputTarget(1)

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


class _GridMasks:
    """One image's Score-CAM masks, kept at the token grid.

    ScoreCAM's mask for channel ``c`` is its map upsampled to the input size, then min-max
    normalised: ``M_c = (U a_c - lo_c) / (hi_c - lo_c + eps)``. Bilinear weights sum to one, so
    ``M_c = U b_c`` with ``b_c = (a_c - lo_c) / (hi_c - lo_c + eps)``: every mask is the upsampling
    of a (rows, cols) map. Keeping ``b`` (C x 324 values at 252 px) instead of the masks (C x 63,504)
    makes group means and first-order refinements cheap; full-size masks are built one batch at a
    time, on the device, only when a batch is scored.

    Attributes:
        maps: (C, rows, cols) the ``b_c`` above.
        size: (H, W) the input size.
    """

    def __init__(self, grid: torch.Tensor, size: tuple[int, int], *, chunk: int = 64) -> None:
        lo, hi = [], []
        for start in range(0, grid.shape[0], chunk):  # the upsampled extremes, a chunk at a time
            flat = _upsample(grid[start : start + chunk], size).flatten(1)
            lo.append(flat.amin(dim=1))
            hi.append(flat.amax(dim=1))
        lo_t, hi_t = torch.cat(lo)[:, None, None], torch.cat(hi)[:, None, None]
        self.maps = (grid - lo_t) / (hi_t - lo_t + 1e-8)
        self.size = size

    def masks(self, maps: torch.Tensor) -> torch.Tensor:
        """Full-size masks of grid maps (K, rows, cols) -> (K, H, W)."""
        return _upsample(maps, self.size)


class _ScoreCAMBase(BaseCAM):
    """Shared machinery: one hooked forward pass for the activations, then hook-free scoring."""

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
        # BaseCAM registered hooks at construction; they are re-registered per call instead
        self.activations_and_grads.release()
        self.batch_size = batch_size
        # passes that keep activations for a backward pass use smaller batches (memory, not speed)
        self.grad_batch_size = grad_batch_size or (batch_size if self.device.type == "cuda" else min(batch_size, 8))
        self.progress = progress
        self.autocast_dtype = autocast_dtype
        self.forward_passes = 0
        self.grid_cams: np.ndarray | None = None  # (B, rows, cols) before upsampling, after ReLU

    def forward(
        self, input_tensor: torch.Tensor, targets=None, eigen_smooth: bool = False, *, activations: torch.Tensor | None = None
    ) -> np.ndarray:
        """Score-CAM maps (B, H, W) of ``input_tensor`` (B, 3, H, W).

        ``activations``: the (single) target layer's output for this input, if already at hand
        (the verdict pass keeps it); the hooked forward pass is then skipped.
        """
        input_tensor = input_tensor.to(self.device)
        self.forward_passes = 0
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

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _scores(self, input_tensor: torch.Tensor, masks: _GridMasks, maps: torch.Tensor, target) -> torch.Tensor:
        """Target score of ``input * mask`` for the masks of K grid maps (K, rows, cols), built per batch."""
        scores = []
        total = maps.shape[0]
        with torch.no_grad(), self._autocast():
            for start in range(0, total, self.batch_size):
                batch = input_tensor[None] * masks.masks(maps[start : start + self.batch_size]).to(input_tensor.dtype)[:, None]
                out = self.model(batch)
                scores.append(target(out).float())
                self.forward_passes += batch.shape[0]
                if self.progress is not None:
                    self.progress(min(start + self.batch_size, total), total)
        return torch.cat(scores)


class ExactScoreCAM(_ScoreCAMBase):
    """Score-CAM with one forward pass per channel: pytorch-grad-cam's ``ScoreCAM``, computed lean."""

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads) -> np.ndarray:
        acts = torch.as_tensor(activations, device=self.device, dtype=torch.float32)
        weights = []
        for b, target in enumerate(targets):
            masks = _GridMasks(acts[b], tuple(input_tensor.shape[-2:]))
            scores = self._scores(input_tensor[b], masks, masks.maps, target)
            weights.append(torch.softmax(scores, dim=-1))
        return torch.stack(weights).cpu().numpy()


class FastScoreCAM(_ScoreCAMBase):
    """Score-CAM from a few groups of similar channels, refined by gradients and exact top scores.

    1. Channels are clustered by k-means on their min-max normalised token-grid maps (fixed seed,
       k-means++ init) into ``n_groups`` groups (default: channels / 16).
    2. Each group's mean mask is scored once, with the gradient of the score with respect to the
       mask (one backward pass per batch, taken with respect to the masks only). Masks are
       upsampled token-grid maps (:class:`_GridMasks`), so the gradient is taken with respect
       to the group's (rows, cols) map and everything below costs C x rows x cols.
    3. Each channel's score is estimated to first order around its group's mask,
       ``s_c = s_g + <grad_M s(M_g), M_c - M_g>`` (``refine=True``; otherwise it gets ``s_g``).
    4. The ``n_exact`` channels with the highest estimates (default: channels / 24) are scored
       exactly: they carry most of the softmax weight.
    5. The usual softmax over channels and weighted sum follow, so with one channel per group this
       is exactly Score-CAM.

    Forward passes: ``n_groups + n_exact`` (about channels / 10) instead of one per channel.

    Why the refinements: the paper's target layer is a LayerNorm output, whose channels sum to a
    near-constant per token, so the map is carried by the *differences* between channel weights;
    giving a whole group one score erases them. Measured against exact Score-CAM (bench/cpu.py --exact and
    tests/test_cam.py): on random 48-384-channel DINOv2s, group scores alone gave Pearson 0.34-0.99
    and the gradient refinement 0.89-0.999; on a 192-channel model trained on a planted-artifact
    toy set, 0.43 (groups only) -> 0.80 (+gradients) -> 0.95 mean (+exact top channels).
    ``bench/cam_fidelity.py`` measures it over more models and images: the mean stays near 0.9,
    with a tail of images (where the exact weights are nearly uniform) well below it.
    """

    def __init__(
        self, *args, n_groups: int | None = None, n_exact: int | None = None, refine: bool = True, seed: int = 0, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.n_groups = n_groups
        self.n_exact = n_exact
        self.refine = refine
        self.seed = seed
        self.backward_passes = 0

    def forward(self, input_tensor: torch.Tensor, targets=None, eigen_smooth: bool = False, **kwargs) -> np.ndarray:
        self.backward_passes = 0
        return super().forward(input_tensor, targets, eigen_smooth, **kwargs)

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads) -> np.ndarray:
        acts = torch.as_tensor(activations, device=self.device, dtype=torch.float32)
        weights = []
        for b, target in enumerate(targets):
            masks = _GridMasks(acts[b], tuple(input_tensor.shape[-2:]))
            maps = masks.maps  # (C, rows, cols); mask c is their upsampling
            labels, k = self._groups(maps)
            onehot = F.one_hot(labels, k).to(maps.dtype)  # (C, K)
            group_maps = (onehot.T @ maps.flatten(1) / onehot.sum(0)[:, None]).view(k, *maps.shape[1:])
            if self.refine:
                # upsampling is linear: the mean of a group's masks is the mask of its mean map, and
                # the gradient with respect to the grid map is U^T (gradient w.r.t. the mask)
                group_scores, group_grads = self._scores_and_grads(input_tensor[b], masks, group_maps, target)
                delta = maps - group_maps[labels]
                scores = group_scores[labels] + (delta * group_grads[labels]).flatten(1).sum(1)
            else:
                scores = self._scores(input_tensor[b], masks, group_maps, target)[labels]
            n_exact = min(self.n_exact if self.n_exact is not None else maps.shape[0] // 24, maps.shape[0])
            if n_exact > 0:
                top = torch.topk(scores, n_exact).indices
                scores = scores.clone()
                scores[top] = self._scores(input_tensor[b], masks, maps[top], target)
            weights.append(torch.softmax(scores, dim=-1))
        return torch.stack(weights).cpu().numpy()

    def _scores_and_grads(self, x: torch.Tensor, masks: _GridMasks, maps: torch.Tensor, target) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of ``x * mask`` for K grid maps and their gradients with respect to each map (not the weights)."""
        scores, grads = [], []
        total = maps.shape[0]
        for start in range(0, total, self.grad_batch_size):
            chunk = maps[start : start + self.grad_batch_size].detach().clone().requires_grad_(True)
            with torch.enable_grad(), self._autocast():
                out = target(self.model(x[None] * masks.masks(chunk).to(x.dtype)[:, None])).float()
            (grad,) = torch.autograd.grad(out.sum(), chunk)
            scores.append(out.detach())
            grads.append(grad.float())
            self.forward_passes += chunk.shape[0]
            self.backward_passes += chunk.shape[0]
            if self.progress is not None:
                self.progress(min(start + self.grad_batch_size, total), total)
        return torch.cat(scores), torch.cat(grads)

    def _groups(self, grid: torch.Tensor) -> tuple[torch.Tensor, int]:
        """k-means labels of the channels' normalised grid maps (C, rows, cols), empty clusters dropped."""
        from sklearn.cluster import KMeans

        c = grid.shape[0]
        k = max(1, min(self.n_groups or max(2, c // 16), c))
        if k == c:
            return torch.arange(c, device=grid.device), c
        feats = grid.flatten(1).cpu().numpy().astype(np.float64)
        km = KMeans(n_clusters=k, n_init=1, random_state=self.seed).fit(feats)
        labels = torch.as_tensor(km.labels_, device=grid.device, dtype=torch.long)
        used = torch.unique(labels)  # k-means may leave a cluster empty on degenerate maps
        remap = torch.full((k,), -1, device=grid.device, dtype=torch.long)
        remap[used] = torch.arange(len(used), device=grid.device)
        return remap[labels], len(used)


#: numbers a gradient pass keeps per token, channel and block, calibrated on DINOv2-giant on a
#: CPU (1.2-1.4 GB per 252 px image in bf16, bench/RESULTS.md): residual stream, norms, qkv, MLP, attention
_KEPT_PER_ELEMENT = 30
#: activation memory a CPU gradient pass may take (a 16 GB machine holding `paper` and its bf16 copy)
CPU_GRAD_BUDGET = 1.5 * 1024**3
#: share of the free GPU memory a gradient pass may take
GPU_GRAD_SHARE = 0.6


def grad_pass_bytes(model, stream: str, x: torch.Tensor, *, element_size: int = 2) -> int:
    """Estimated activation memory one image's gradient pass through ``stream`` keeps (bytes)."""
    dino = model.dinov2
    rows, cols = dino.grid_for(*x.shape[-2:])
    numbers = len(dino.vit.blocks) * (rows * cols + dino.num_prefix_tokens) * dino.embed_dim
    clip = getattr(model, "clip", None)
    if clip is not None and model.config.stream(stream).uses_clip:
        visual = clip.visual
        patch = getattr(visual, "patch_size", (16, 16))
        tokens = (x.shape[-2] // patch[0]) * (x.shape[-1] // patch[1]) + 1
        numbers += len(visual.transformer.resblocks) * tokens * clip.width
    return _KEPT_PER_ELEMENT * element_size * numbers


def grad_batch_size_for(model, stream: str, x: torch.Tensor, *, cap: int, budget_bytes: float | None = None, element_size: int = 2) -> int:
    """Images per gradient pass: as many as fit the memory budget, at least 1 and at most ``cap``.

    The budget is :data:`CPU_GRAD_BUDGET` on a CPU (DINOv2-small: 8 images; giant: 1, which
    measured as fast per image as 8 and peaks at 10.5 GB instead of 19 GB for `paper`) and
    :data:`GPU_GRAD_SHARE` of the free memory on a GPU (`paper` on a 24 GB A10G: ~9 images).
    """
    if budget_bytes is None:
        if x.device.type == "cuda":
            budget_bytes = GPU_GRAD_SHARE * torch.cuda.mem_get_info(x.device)[0]
        else:
            budget_bytes = CPU_GRAD_BUDGET
    per_image = grad_pass_bytes(model, stream, x, element_size=element_size)
    return int(max(1, min(cap, budget_bytes // per_image)))


@dataclass
class CamResult:
    """A stream's Score-CAM.

    Attributes:
        input_map: (S, S) map over the stream's input, in [0, 1] (grad-cam's normalisation).
        grid_map: (rows, cols) non-negative map at the token grid, before upsampling.
        forward_passes: how many model forward passes it took.
        method: ``exact`` or ``fast``.
        seconds: wall time.
    """

    input_map: np.ndarray
    grid_map: np.ndarray
    forward_passes: int
    method: str
    seconds: float


def stream_cam(
    model,
    stream: str,
    x: torch.Tensor,
    *,
    method: str = "fast",
    batch_size: int = 32,
    n_groups: int | None = None,
    n_exact: int | None = None,
    progress: Progress | None = None,
    autocast_dtype: torch.dtype | None = None,
    activations: torch.Tensor | None = None,
    grad_batch_size: int | None = None,
) -> CamResult:
    """Score-CAM of ``stream`` of a :class:`~forensic.model.ForensicModel` on one input ``x`` (1, 3, S, S).

    ``activations``: the stream's last-block ``norm1`` output for ``x`` (1, prefix + N, C), e.g.
    :attr:`~forensic.model.StreamOutput.last_norm1` of the verdict pass; saves one forward pass.
    ``grad_batch_size``: images per gradient pass of the fast method (default: what fits the
    memory budget of :func:`grad_batch_size_for`, at most ``batch_size`` and at most 8 on a CPU).
    """
    import time

    from ..model import StreamClassifier

    if method not in ("exact", "fast"):
        raise ValueError(f"unknown Score-CAM method {method!r}; use 'exact' or 'fast'")
    start = time.perf_counter()
    kwargs = dict(
        reshape_transform=vit_reshape(num_prefix_tokens=model.dinov2.num_prefix_tokens, patch_size=model.dinov2.patch_size),
        batch_size=batch_size,
        grad_batch_size=grad_batch_size or grad_batch_size_for(
            model, stream, x, cap=batch_size if x.device.type == "cuda" else min(batch_size, 8),
            element_size=2 if autocast_dtype is not None else x.element_size(),
        ),
        progress=progress,
        autocast_dtype=autocast_dtype,
    )
    classifier = StreamClassifier(model, stream)
    layers = [model.dinov2.target_layer]
    cam = ExactScoreCAM(classifier, layers, **kwargs) if method == "exact" else FastScoreCAM(classifier, layers, n_groups=n_groups, n_exact=n_exact, **kwargs)
    maps = cam.forward(x, targets=[FAKE_TARGET] * x.shape[0], activations=activations)
    return CamResult(
        input_map=maps[0].astype(np.float32),
        grid_map=cam.grid_cams[0].astype(np.float32),
        forward_passes=cam.forward_passes,
        method=method,
        seconds=time.perf_counter() - start,
    )
