"""The engine: runs a Score-CAM method on a model's streams, as an :class:`~forensic.explain.plan.ExplainPlan` says.

A method (:class:`~forensic.explain.types.CamMethod`) is a generator of
:class:`~forensic.explain.types.ScoreRequest` s. :func:`run_method` is the one execution path of
every explanation (the pipeline's stage, the app, the CLI, the analyses, the bench and the tests
alike): each stream's target-layer activations (the verdict pass's, or one more pass), its masks,
the method's requests answered, and the map assembled as pytorch-grad-cam assembles it. Here:

- :class:`StreamClassifier`: ``model(x)`` -> one stream's logits, on the model or on a
  :class:`~forensic.explain.merged.MergedStreamCopy` (that stream selected on each call).
- :class:`MaskScorer` answers one stream's requests: masked copies of its input, built one batch
  at a time on the device, forward passes (or forward + backward to the grid maps), scores kept
  on the device: no host synchronisation between batches.
- :class:`JointScorer` answers several streams' requests together: streams with the same input
  size (texture and face at 252 px) share each batch through the shared base, each sample routed
  to its stream's adapter.
- :func:`drive` runs one method to completion; :func:`drive_all` runs several, either one after
  the other (a CPU: one merged copy, rewritten per stream) or in lockstep (a GPU: every stream's
  passes of a round are queued before any method looks at a result, so the device never waits on
  the host between streams).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from ..precision import autocast
from .merged import MergedStreamCopy
from .plan import ExplainPlan
from .types import CamMethod, CamResult, ChannelScores, GridMasks, ScoreGenerator, ScoreReply, ScoreRequest, StreamInputs

__all__ = [
    "FAKE_TARGET",
    "StreamClassifier",
    "MaskScorer",
    "JointScorer",
    "StreamTask",
    "drive",
    "drive_all",
    "run_method",
    "vit_reshape",
    "assemble_cam",
]

#: explain the "fake" logit (class index 1)
FAKE_TARGET = ClassifierOutputTarget(1)

Execute = Callable[[Mapping[str, ScoreRequest]], dict[str, ScoreReply]]


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


class StreamClassifier(nn.Module):
    """``model(x)`` -> logits of one stream (the callable pytorch-grad-cam expects).

    Args:
        model: the :class:`~forensic.model.ForensicModel`.
        stream: the stream.
        merged: a :class:`~forensic.explain.merged.MergedStreamCopy` of ``model`` to run on instead
            (the stream is selected on each call: re-selecting is a no-op or swaps tensors).
    """

    def __init__(self, model: nn.Module, stream: str, merged: MergedStreamCopy | None = None) -> None:
        super().__init__()
        self.model = model
        self.stream = stream
        self.merged = merged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.merged.select(self.stream) if self.merged is not None else self.model
        return model.forward_stream(self.stream, x).logits


class MaskScorer:
    """Answers one stream's :class:`ScoreRequest` s on one input.

    Args:
        model: ``model(x)`` -> logits (B, classes).
        x: the input (3, H, W), in the dtype the passes run in.
        masks: its :class:`GridMasks`.
        target: ``target(logits)`` -> scores (B,), e.g. grad-cam's ``ClassifierOutputTarget(1)``.
        batch_size: masked images per forward pass.
        grad_batch_size: masked images per forward + backward pass.
        autocast_dtype: autocast the passes to this dtype (None: run in the weights' dtype).
        progress: called with (passes done, ``planned``) after each batch.
        planned: passes the method may ask for (for progress).
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        masks: GridMasks,
        *,
        target: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int,
        grad_batch_size: int,
        autocast_dtype: torch.dtype | None = None,
        progress: Callable[[int, int], None] | None = None,
        planned: int | None = None,
    ) -> None:
        self.model = model
        self.x = x
        self.masks = masks
        self.target = target
        self.batch_size = max(1, batch_size)
        self.grad_batch_size = max(1, grad_batch_size)
        self.autocast_dtype = autocast_dtype
        self.progress = progress
        self.planned = planned or masks.channels
        self.forward_passes = 0
        self.backward_passes = 0

    def masked(self, maps: torch.Tensor) -> torch.Tensor:
        """The input masked by each grid map's mask: (K, rows, cols) -> (K, 3, H, W)."""
        return self.x[None] * self.masks.masks(maps).to(self.x.dtype)[:, None]

    def __call__(self, request: ScoreRequest) -> ScoreReply:
        return self._with_grads(request.maps) if request.grad else self._scores(request.maps)

    def _scores(self, maps: torch.Tensor) -> ScoreReply:
        scores = []
        with torch.no_grad(), autocast(self.x.device, self.autocast_dtype):
            for start in range(0, maps.shape[0], self.batch_size):
                chunk = maps[start : start + self.batch_size]
                scores.append(self.target(self.model(self.masked(chunk))).float())
                self.count(chunk.shape[0], backward=False)
        return ScoreReply(torch.cat(scores))

    def _with_grads(self, maps: torch.Tensor) -> ScoreReply:
        scores, grads = [], []
        for start in range(0, maps.shape[0], self.grad_batch_size):
            chunk = maps[start : start + self.grad_batch_size].detach().clone().requires_grad_(True)
            with torch.enable_grad(), autocast(self.x.device, self.autocast_dtype):
                out = self.target(self.model(self.masked(chunk))).float()
            (grad,) = torch.autograd.grad(out.sum(), chunk)  # with respect to the maps only, not the weights
            scores.append(out.detach())
            grads.append(grad.float())
            self.count(chunk.shape[0], backward=True)
        return ScoreReply(torch.cat(scores), torch.cat(grads))

    def count(self, n: int, *, backward: bool) -> None:
        """Counts ``n`` masked passes (and their backward passes) and reports progress."""
        self.forward_passes += n
        self.backward_passes += n if backward else 0
        if self.progress is not None:
            self.progress(min(self.forward_passes, self.planned), self.planned)


class JointScorer:
    """Answers the requests of several streams that share an input size in shared batches.

    The masked copies of every stream's input go through ``model.forward_streams`` together: one
    base pass per batch with each sample routed to its own stream's adapter (the un-merged model's
    :class:`~forensic.lora.AdapterRouter`). Forward-only and gradient requests are batched
    separately. Pass counts and progress are kept on each stream's :class:`MaskScorer`.

    Args:
        model: the :class:`~forensic.model.ForensicModel` (adapters not merged).
        scorers: each stream's :class:`MaskScorer` (its input, masks, batch sizes, counters).
    """

    def __init__(self, model: nn.Module, scorers: Mapping[str, MaskScorer]) -> None:
        self.model = model
        self.scorers = dict(scorers)

    def __call__(self, requests: Mapping[str, ScoreRequest]) -> dict[str, ScoreReply]:
        groups: dict[tuple, list[str]] = {}
        for name, request in requests.items():
            groups.setdefault((tuple(self.scorers[name].x.shape), request.grad), []).append(name)
        replies: dict[str, ScoreReply] = {}
        for (_, grad), names in groups.items():
            if len(names) == 1:
                replies[names[0]] = self.scorers[names[0]](requests[names[0]])
            else:
                replies.update(self._joint({n: requests[n].maps for n in names}, grad=grad))
        return replies

    def _joint(self, maps: dict[str, torch.Tensor], *, grad: bool) -> dict[str, ScoreReply]:
        first = self.scorers[next(iter(maps))]
        size = first.grad_batch_size if grad else first.batch_size
        items = [(name, i) for name, m in maps.items() for i in range(m.shape[0])]
        scores: dict[str, list[torch.Tensor]] = {n: [] for n in maps}
        grads: dict[str, list[torch.Tensor]] = {n: [] for n in maps}
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            parts: dict[str, torch.Tensor] = {}
            for name in dict.fromkeys(n for n, _ in chunk):  # each stream's slice is contiguous
                idx = [i for n, i in chunk if n == name]
                part = maps[name][idx[0] : idx[-1] + 1]
                parts[name] = part.detach().clone().requires_grad_(True) if grad else part
            scorer_ctx = torch.enable_grad() if grad else torch.no_grad()
            with scorer_ctx, autocast(first.x.device, first.autocast_dtype):
                outputs = self.model.forward_streams({n: self.scorers[n].masked(p) for n, p in parts.items()})
                outs = {n: self.scorers[n].target(outputs[n].logits).float() for n in parts}
            if grad:
                names = list(parts)
                found = torch.autograd.grad(sum(outs[n].sum() for n in names), [parts[n] for n in names])
                for n, g in zip(names, found):
                    grads[n].append(g.float())
            for n, out in outs.items():
                scores[n].append(out.detach())
                self.scorers[n].count(parts[n].shape[0], backward=grad)
        return {n: ScoreReply(torch.cat(scores[n]), torch.cat(grads[n]) if grad else None) for n in maps}


@dataclass
class StreamTask:
    """One stream's method run: its request generator and who answers it alone."""

    generator: ScoreGenerator
    scorer: MaskScorer


def drive(generator: ScoreGenerator, answer: Callable[[ScoreRequest], ScoreReply]) -> ChannelScores:
    """Runs one method's generator to completion, answering each request with ``answer``."""
    try:
        request = next(generator)
        while True:
            request = generator.send(answer(request))
    except StopIteration as stop:
        return stop.value


def drive_all(tasks: Mapping[str, StreamTask], *, lockstep: bool, execute: Execute | None = None) -> dict[str, ChannelScores]:
    """Runs several streams' methods: one after the other, or in lockstep rounds.

    Args:
        tasks: per stream, its generator and its :class:`MaskScorer`.
        lockstep: advance every stream by one request per round, all of a round's passes queued
            before any generator reads a result (on a GPU: no host synchronisation between the
            streams' batches).
        execute: answers a round's requests together (e.g. a :class:`JointScorer`); default:
            each stream's own scorer.
    """
    execute = execute or (lambda requests: {n: tasks[n].scorer(r) for n, r in requests.items()})
    if not lockstep:
        return {name: drive(task.generator, lambda r, _n=name: execute({_n: r})[_n]) for name, task in tasks.items()}
    results: dict[str, ChannelScores] = {}
    pending: dict[str, ScoreRequest] = {}
    for name, task in tasks.items():
        try:
            pending[name] = next(task.generator)
        except StopIteration as stop:
            results[name] = stop.value
    while pending:
        replies = execute(pending)
        following: dict[str, ScoreRequest] = {}
        for name, reply in replies.items():
            try:
                following[name] = tasks[name].generator.send(reply)
            except StopIteration as stop:
                results[name] = stop.value
        pending = following
    return {name: results[name] for name in tasks}


def run_method(
    model,
    inputs: Mapping[str, StreamInputs],
    method: CamMethod,
    plan: ExplainPlan,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, CamResult]:
    """Score-CAM of several streams of a :class:`~forensic.model.ForensicModel` by ``method``, run as ``plan`` says.

    A stream without activations costs one more forward pass (counted in its ``forward_passes``).
    ``progress`` is called with (stream, passes done, passes planned). The caller holds the
    model's :func:`~forensic.explain.plan.explanation_lock`.
    """
    start = time.perf_counter()
    reshape = vit_reshape(num_prefix_tokens=model.dinov2.num_prefix_tokens, patch_size=model.dinov2.patch_size)
    with torch.inference_mode(False):
        merged = MergedStreamCopy(model, plan.dtype, keep=plan.keep_merged) if plan.merged else None
        tasks, grids, extra = {}, {}, {}
        for name, item in inputs.items():
            x = item.x[:1].to(plan.device, plan.dtype if merged is not None else item.x.dtype, copy=True)  # made under inference_mode
            acts, extra[name] = item.activations, 0
            if acts is None:
                with torch.no_grad():
                    acts = model.forward_stream(name, item.x[:1].to(plan.device), return_norm1=True).last_norm1
                extra[name] = 1
            grid = reshape(acts[:1].detach().to(plan.device, torch.float32, copy=True))[0]
            masks = GridMasks(grid, tuple(x.shape[-2:]))
            planned = method.planned_passes(masks.channels)
            scorer = MaskScorer(
                StreamClassifier(model, name, merged), x[0], masks, target=FAKE_TARGET, batch_size=plan.batch_size,
                grad_batch_size=plan.grad_batch_size(model, name, tuple(x.shape[-2:])), autocast_dtype=plan.autocast,
                progress=None if progress is None else (lambda done, total, _n=name: progress(_n, done, total)), planned=planned,
            )
            done = None if progress is None else (lambda _n=name, _p=planned: progress(_n, _p, _p))
            tasks[name], grids[name] = StreamTask(_then(method.channel_scores(masks), done), scorer), masks
        joint = JointScorer(model, {n: t.scorer for n, t in tasks.items()}) if plan.batch_streams and merged is None else None
        scores = drive_all(tasks, lockstep=plan.lockstep, execute=joint)
        del merged
    seconds = (time.perf_counter() - start) / max(1, len(inputs))
    out = {}
    for name, result in scores.items():
        masks, scorer = grids[name], tasks[name].scorer
        input_map, grid_map = assemble_cam(result.scores, masks.activations, masks.size)
        out[name] = CamResult(
            input_map=input_map.astype("float32"), grid_map=grid_map.astype("float32"),
            forward_passes=scorer.forward_passes + extra[name], backward_passes=scorer.backward_passes,
            method=method.name, seconds=seconds, fidelity=result.fidelity,
        )
    return out


def _then(generator: ScoreGenerator, done: Callable[[], None] | None) -> ScoreGenerator:
    """``generator``, then ``done()`` (a method that stops early still completes its progress)."""
    result = yield from generator
    if done is not None:
        done()
    return result
