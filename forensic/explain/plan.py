"""How explanations run on this model and device, decided in one place: :func:`plan_for`.

An :class:`ExplainPlan` fixes the precision of the masked passes, whether they run on a
:class:`~forensic.explain.merged.MergedStreamCopy` (each stream's adapter folded into the weights: no
per-pass weight casts, no adapter hooks) or on the shared model (texture and face masked
copies then share batches, each routed to its adapter), whether the streams' methods run one
after the other or in lockstep, and the batch sizes (from memory). :func:`explanation_lock`
serialises explanations of one model (bounded memory: each holds its masked batches and its
merged copy).

The rules, and why:

- **CPU**: a merged copy, rewritten per stream, streams one after the other (building one copy
  per stream would hold three). bf16 when the CPU has bf16 matrix instructions (AMX,
  AVX512-BF16, where bf16 matmuls are several times faster) and the weights are float32, unless
  ``RuntimeConfig.cam_bf16`` is off; otherwise the weights' own dtype (then the copy shares all
  but the adapted weights). ``prefer="shared"`` runs on the model itself instead (no copy; under
  autocast where the precision differs from the weights'). 32 images per forward pass; gradient passes sized to a 1.5 GB
  activation budget (DINOv2-small: 8 images; giant: 1, as fast per image as larger batches at
  about half the peak memory).
- **GPU**: bf16. A merged copy with every stream's merged weights kept (re-selecting swaps
  tensors) when it takes at most a quarter of the free memory (`paper` in bf16: 0.75 GB per
  stream); otherwise the shared model, under autocast if its weights are float32, with texture
  and face batched together. Streams in lockstep: each refinement round's passes of all streams
  are queued before any result is read. Batches from the free memory: gradient passes get 60% of
  it (after the copy), forward passes up to 256 images.

``bench/gpu.py`` times both GPU plans; the measurements behind these rules are in bench/RESULTS.md.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass

import torch

from ..runtime import RuntimeConfig, default_runtime
from .merged import MergedStreamCopy

__all__ = [
    "ExplainPlan",
    "plan_for",
    "decide",
    "cam_dtype",
    "fast_cpu_bf16",
    "explanation_lock",
    "grad_pass_bytes",
    "forward_pass_bytes",
    "grad_batch_size_for",
    "default_method",
    "CPU_GRAD_BUDGET",
    "GPU_GRAD_SHARE",
    "CPU_EXPLAIN_PARAMS",
]

#: numbers a gradient pass keeps per token, channel and block (residual stream, norms, qkv, MLP,
#: attention), calibrated on DINOv2-giant on a CPU (bench/RESULTS.md)
_KEPT_PER_ELEMENT = 30
#: numbers alive at once per token and channel in a forward pass without autograd (one block's
#: qkv, MLP hidden and residual stream; attention is fused)
_LIVE_PER_ELEMENT = 16
#: activation memory a CPU gradient pass may take (a 16 GB machine holding `paper` and its bf16 copy)
CPU_GRAD_BUDGET = 1.5 * 1024**3
#: share of the free GPU memory (after a merged copy) a gradient pass may take
GPU_GRAD_SHARE = 0.6
#: share of the free GPU memory a forward batch may take, and the batch's cap
GPU_FORWARD_SHARE = 0.3
GPU_MAX_BATCH = 256
CPU_BATCH = 32
#: the largest share of the free GPU memory a merged copy may take
GPU_MERGED_SHARE = 0.25
#: DINOv2 parameters above which a CPU explains too slowly to do it by default (small: 22 M, giant: 1.1 G)
CPU_EXPLAIN_PARAMS = 100_000_000


@functools.cache
def fast_cpu_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX or AVX512-BF16): bf16 matmuls ~6x float32 there."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


@dataclass(frozen=True)
class ExplainPlan:
    """How one model's explanations run (see the module doc for the rules).

    Attributes:
        device: where the passes run.
        dtype: the precision of the masked passes.
        merged: run them on a :class:`~forensic.explain.merged.MergedStreamCopy`.
        keep_merged: keep every stream's merged weights (re-selecting swaps tensors).
        autocast: autocast dtype over the shared model (not merged and ``dtype`` differs from the weights').
        lockstep: advance all streams' methods together, one request each per round.
        batch_streams: streams with the same input size share batches (needs the shared model).
        batch_size: masked images per forward pass.
        grad_budget_bytes: activation memory a gradient pass may keep.
        reason: one line saying why, for logs and benchmarks.
    """

    device: torch.device
    dtype: torch.dtype
    merged: bool
    keep_merged: bool
    autocast: torch.dtype | None
    lockstep: bool
    batch_streams: bool
    batch_size: int
    grad_budget_bytes: float
    reason: str

    def grad_batch_size(self, model, stream: str, size: tuple[int, int]) -> int:
        """Images per gradient pass through ``stream`` at input ``size``: what fits the budget, 1 .. batch size."""
        cap = self.batch_size if self.device.type == "cuda" else min(self.batch_size, 8)
        return grad_batch_size_for(model, stream, size, cap=cap, budget_bytes=self.grad_budget_bytes, element_size=_element_size(self.dtype))

    def describe(self) -> str:
        how = "merged copy" + (" (kept per stream)" if self.keep_merged else "") if self.merged else "shared model"
        extra = f", autocast {str(self.autocast).replace('torch.', '')}" if self.autocast else ""
        order = "lockstep" + (", same-size streams batched together" if self.batch_streams else "") if self.lockstep else "stream by stream"
        return f"{self.device.type} {str(self.dtype).replace('torch.', '')} on a {how}{extra}; {order}; batch {self.batch_size} ({self.reason})"


def plan_for(
    model,
    *,
    runtime: RuntimeConfig | None = None,
    free_bytes: float | None = None,
    prefer: str | None = None,
) -> ExplainPlan:
    """The plan for explaining ``model`` (a :class:`~forensic.model.ForensicModel`) where it is.

    Args:
        runtime: the settings (default: :func:`~forensic.runtime.default_runtime`).
        free_bytes: free device memory (default: asked of the device; GPUs only).
        prefer: ``merged`` or ``shared`` forces the choice (benchmarks; ``shared`` on a CPU: no
            copy, the model as it is); None decides.
    """
    param = next(model.parameters())
    device, weights = param.device, param.dtype
    dtype = cam_dtype(device, weights, runtime or default_runtime())
    if device.type == "cuda" and free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return decide(
        device, weights, dtype,
        free_bytes=free_bytes,
        copy_bytes=MergedStreamCopy.extra_bytes(model, dtype, streams=len(model.config.streams)),
        image_bytes=max(forward_pass_bytes(model, s.name, (s.size, s.size), element_size=_element_size(dtype)) for s in model.config.streams),
        prefer=prefer,
    )


def cam_dtype(device: torch.device, weights: torch.dtype, runtime: RuntimeConfig) -> torch.dtype:
    """The precision of the masked passes: bf16 over float32 weights on a GPU or a CPU with bf16
    instructions (unless ``runtime.cam_bf16`` is off), else the weights' own."""
    fast_bf16 = runtime.cam_bf16 and (device.type == "cuda" or fast_cpu_bf16())
    return torch.bfloat16 if fast_bf16 and weights == torch.float32 else weights


def decide(
    device: torch.device,
    weights: torch.dtype,
    dtype: torch.dtype,
    *,
    free_bytes: float | None,
    copy_bytes: float,
    image_bytes: float,
    prefer: str | None = None,
) -> ExplainPlan:
    """The rules of the module doc, on plain numbers (so that they are testable without a GPU).

    Args:
        device: where the model is.
        weights: the weights' dtype.
        dtype: the masked passes' dtype (:func:`cam_dtype`).
        free_bytes: free device memory (GPUs).
        copy_bytes: what a merged copy keeping every stream would take.
        image_bytes: one image's forward-pass activations (the largest stream).
        prefer: ``merged`` or ``shared`` forces the choice (a CPU merges unless ``shared``).
    """
    if prefer not in (None, "merged", "shared"):
        raise ValueError(f"prefer must be 'merged', 'shared' or None, not {prefer!r}")
    device = torch.device(device)
    if device.type != "cuda":
        why = "CPU with bf16 instructions" if dtype != weights else "weights' own precision"
        merged = prefer != "shared"
        return ExplainPlan(device, dtype, merged=merged, keep_merged=False, autocast=None if merged or dtype == weights else dtype,
                           lockstep=False, batch_streams=False, batch_size=CPU_BATCH, grad_budget_bytes=CPU_GRAD_BUDGET, reason=why)
    free = float(free_bytes or 0.0)
    merged = prefer == "merged" or (prefer is None and copy_bytes <= GPU_MERGED_SHARE * free)
    left = max(free - (copy_bytes if merged else 0.0), 0.0)
    batch = int(max(1, min(GPU_MAX_BATCH, GPU_FORWARD_SHARE * left // max(1.0, image_bytes))))
    gb = 1024**3
    why = (f"merged copy {copy_bytes / gb:.2f} GB of {free / gb:.1f} GB free" if merged
           else f"a merged copy ({copy_bytes / gb:.2f} GB) would take over {GPU_MERGED_SHARE:.0%} of {free / gb:.1f} GB free")
    return ExplainPlan(
        device, dtype, merged=merged, keep_merged=merged, autocast=None if merged or dtype == weights else dtype,
        lockstep=True, batch_streams=not merged, batch_size=batch, grad_budget_bytes=GPU_GRAD_SHARE * left, reason=why,
    )


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _tokens(model, stream: str, size: tuple[int, int]) -> tuple[int, int]:
    """(DINOv2 numbers per block, CLIP numbers per block or 0) of one image through ``stream``."""
    dino = model.dinov2
    rows, cols = dino.grid_for(*size)
    dino_numbers = (rows * cols + dino.num_prefix_tokens) * dino.embed_dim
    clip = getattr(model, "clip", None)
    clip_numbers = 0
    if clip is not None and model.config.stream(stream).uses_clip:
        patch = getattr(clip.visual, "patch_size", (16, 16))
        clip_numbers = ((size[0] // patch[0]) * (size[1] // patch[1]) + 1) * clip.width
    return dino_numbers, clip_numbers


def grad_pass_bytes(model, stream: str, size: tuple[int, int], *, element_size: int = 2) -> int:
    """Estimated activation memory one image's gradient pass through ``stream`` keeps (bytes)."""
    dino, clip = _tokens(model, stream, size)
    numbers = len(model.dinov2.vit.blocks) * dino
    if clip:
        numbers += len(model.clip.visual.transformer.resblocks) * clip
    return _KEPT_PER_ELEMENT * element_size * numbers


def forward_pass_bytes(model, stream: str, size: tuple[int, int], *, element_size: int = 2) -> int:
    """Estimated peak activation memory of one image's forward pass (no autograd) through ``stream``."""
    dino, clip = _tokens(model, stream, size)
    return _LIVE_PER_ELEMENT * element_size * max(dino, clip) + 3 * size[0] * size[1] * element_size


def grad_batch_size_for(model, stream: str, size: tuple[int, int], *, cap: int, budget_bytes: float, element_size: int = 2) -> int:
    """Images per gradient pass through ``stream`` at input ``size``: as many as fit ``budget_bytes``, at least 1 and at most ``cap``.

    The plan's budget is :data:`CPU_GRAD_BUDGET` on a CPU (DINOv2-small: 8 images; giant: 1) and
    :data:`GPU_GRAD_SHARE` of the free memory on a GPU (`paper` on a 24 GB A10G: ~9 images).
    """
    per_image = grad_pass_bytes(model, stream, size, element_size=element_size)
    return int(max(1, min(cap, budget_bytes // per_image)))


def default_method(model, *, device: torch.device | str | None = None) -> str:
    """The explanation a UI starts with: ``fast``, or ``none`` for a large model on a CPU.

    ``device``: where the model runs (default: where its parameters are).

    A model above :data:`CPU_EXPLAIN_PARAMS` takes minutes per explanation on a CPU (figures in
    bench/RESULTS.md): there the verdict comes alone and the user opts in to Score-CAM.
    """
    if model is None:
        return "fast"
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if device.type != "cpu":
        return "fast"
    params = sum(p.numel() for p in model.dinov2.parameters())
    return "fast" if params <= CPU_EXPLAIN_PARAMS else "none"


_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def explanation_lock(model) -> threading.Lock:
    """The lock that lets one explanation of ``model`` run at a time (bounded memory, hooks on shared modules)."""
    with _locks_guard:
        lock = _locks.get(model)
        if lock is None:
            lock = _locks[model] = threading.Lock()
        return lock
