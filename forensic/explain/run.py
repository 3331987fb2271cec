"""Entry points: explain a report (the explanation stage) or one stream's input.

:func:`explain_report` is the stage :class:`~forensic.pipeline.Detector` runs after the verdict:
it takes a report and the verdict pass, and returns a *new* report with each stream's Score-CAM,
its entropy, its map in image coordinates and the inter-stream map similarity. Callers name a
method; the plan (:func:`~forensic.explain.plan.plan_for`) decides how it runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..runtime import RuntimeConfig
from .attention import map_entropy
from .cam import FAKE_TARGET, CamResult, GridMasks, ScoreCAM, ScoreGenerator, assemble_cam, vit_reshape
from .engine import JointScorer, MaskScorer, StreamTask, drive_all
from .methods import get_method, method_options
from .plan import ExplainPlan, explanation_lock, grad_batch_size_for, plan_for
from .similarity import map_similarity

__all__ = ["explain_report", "explain_streams", "stream_cam", "StreamInputs"]

log = logging.getLogger(__name__)

#: progress callback of the stage: (what is happening, fraction done in [0, 1])
StageProgress = Callable[[str, float], None]


@dataclass(frozen=True)
class StreamInputs:
    """One stream's input to explain and, when the verdict pass kept it, its target layer's output.

    Attributes:
        x: the normalised input (1, 3, S, S).
        activations: the last block's ``norm1`` output (1, prefix + N, C), or None (one more pass).
    """

    x: torch.Tensor
    activations: torch.Tensor | None = None


class _StreamLogits(nn.Module):
    """``model(x)`` -> logits of one stream of a model or of a merged copy (selected on each call)."""

    def __init__(self, model: nn.Module, stream: str, merged=None) -> None:
        super().__init__()
        self.model = model
        self.stream = stream
        self.merged = merged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.merged.select(self.stream) if self.merged is not None else self.model
        return model.forward_stream(self.stream, x).logits


def explain_streams(
    model,
    inputs: Mapping[str, StreamInputs],
    *,
    method: str = "fast",
    plan: ExplainPlan | None = None,
    runtime: RuntimeConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    **options: Any,
) -> dict[str, CamResult]:
    """Score-CAM of several streams of a :class:`~forensic.model.ForensicModel`, run as the plan says.

    Args:
        model: the model (not modified; its explanations run one at a time).
        inputs: per stream, its input and (ideally) its target layer's activations.
        method: a registered method name (:mod:`forensic.explain.methods`).
        plan: how to run (default: :func:`plan_for` the model with ``runtime``).
        runtime: settings for the default plan.
        progress: called with (stream, passes done, passes planned).
        options: method options (e.g. ``n_groups`` for ``fast``); those the method does not take are dropped.
    """
    from ..model import MergedStreamCopy

    cls = get_method(method)
    plan = plan or plan_for(model, runtime=runtime)
    start = time.perf_counter()
    with explanation_lock(model), torch.inference_mode(False):
        merged = MergedStreamCopy(model, plan.dtype, keep=plan.keep_merged) if plan.merged else None
        tasks, grids = {}, {}
        for name, item in inputs.items():
            x = item.x[:1].to(plan.device, plan.dtype if merged is not None else item.x.dtype, copy=True)  # made under inference_mode
            acts = item.activations
            if acts is None:
                with torch.no_grad():
                    acts = model.forward_stream(name, item.x[:1].to(plan.device), return_norm1=True).last_norm1
            grid = _reshape(model)(acts[:1].detach().to(plan.device, torch.float32, copy=True))[0]
            masks = GridMasks(grid, tuple(x.shape[-2:]))
            logits = _StreamLogits(model, name, merged)
            cam = cls(logits, [model.dinov2.target_layer], _reshape(model), batch_size=plan.batch_size, **method_options(cls, options))
            planned = cam.planned_passes(masks.channels)
            scorer = MaskScorer(
                logits, x[0], masks, target=FAKE_TARGET, batch_size=plan.batch_size,
                grad_batch_size=plan.grad_batch_size(model, name, tuple(x.shape[-2:])), autocast_dtype=plan.autocast,
                progress=None if progress is None else (lambda done, total, _n=name: progress(_n, done, total)), planned=planned,
            )
            done = None if progress is None else (lambda _n=name, _p=planned: progress(_n, _p, _p))
            tasks[name], grids[name] = StreamTask(_then(cam.channel_scores(masks), done), scorer), masks
        joint = JointScorer(model, {n: t.scorer for n, t in tasks.items()}) if plan.batch_streams and merged is None else None
        scores = drive_all(tasks, lockstep=plan.lockstep, execute=joint)
        del merged
    seconds = (time.perf_counter() - start) / max(1, len(inputs))
    out = {}
    for name, result in scores.items():
        masks = grids[name]
        input_map, grid_map = assemble_cam(result.scores, masks.activations, masks.size)
        scorer = tasks[name].scorer
        out[name] = CamResult(
            input_map=input_map.astype("float32"), grid_map=grid_map.astype("float32"),
            forward_passes=scorer.forward_passes, backward_passes=scorer.backward_passes,
            method=method, seconds=seconds, fidelity=result.fidelity,
        )
    log.debug("explained %s with %s Score-CAM: %s", list(inputs), method, plan.describe())
    return out


def explain_report(
    model,
    report,
    forwarded,
    *,
    method: str,
    progress: StageProgress | None = None,
    runtime: RuntimeConfig | None = None,
    plan: ExplainPlan | None = None,
    **options: Any,
):
    """The explanation stage: ``report`` with each stream's Score-CAM (a new report; ``report`` is untouched).

    Args:
        model: the detector's model.
        report: the verdict's :class:`~forensic.report.Report`.
        forwarded: the verdict pass (:class:`~forensic.stages.Forwarded`): its first image's
            stream tensors, and each stream's last ``norm1`` output if it kept them.
        method: a registered method name.
        progress: called with (stage, fraction in [0.2, 0.9]).
        runtime, plan: see :func:`explain_streams`.
        options: method options (``n_groups`` ...); None values and other methods' options are dropped.
    """
    names = list(report.streams)
    inputs = {
        n: StreamInputs(forwarded.tensors[n][:1], None if forwarded.outputs[n].last_norm1 is None else forwarded.outputs[n].last_norm1[:1])
        for n in names
    }
    fractions = dict.fromkeys(names, 0.0)

    def on_pass(stream: str, done: int, total: int) -> None:
        fractions[stream] = done / max(1, total)
        if progress is not None:
            progress(f"Score-CAM ({method}) {stream}", 0.2 + 0.7 * sum(fractions.values()) / len(names))

    timings = dict(report.timings)
    start = time.perf_counter()
    cams = explain_streams(model, inputs, method=method, plan=plan, runtime=runtime, progress=on_pass, **options)
    streams = dict(report.streams)
    for name, cam in cams.items():
        stream = streams[name]
        streams[name] = replace(
            stream, cam=cam, cam_entropy=map_entropy(cam.grid_map), cam_image=stream.input.region.paste_map(cam.input_map, report.image.shape)
        )
    timings[f"explain_{method}"] = timings.get(f"explain_{method}", 0.0) + time.perf_counter() - start
    similarity = map_similarity({n: streams[n].cam_image for n in names})
    return replace(report, streams=streams, cam_similarity=similarity, explain=method, timings=timings)


def stream_cam(
    model,
    stream: str,
    x: torch.Tensor,
    *,
    method: str = "fast",
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    autocast_dtype: torch.dtype | None = None,
    activations: torch.Tensor | None = None,
    grad_batch_size: int | None = None,
    **options: Any,
) -> CamResult:
    """Score-CAM of one stream on one input ``x`` (1, 3, S, S), on the model as it is (no plan, no copy).

    Runs the method through grad-cam's ``BaseCAM.forward`` (with a hooked pass unless
    ``activations``, the stream's last ``norm1`` output for ``x``, is given).
    ``grad_batch_size`` defaults to what fits :func:`~forensic.explain.plan.grad_batch_size_for`'s
    budget, at most ``batch_size`` and at most 8 on a CPU. ``options``: the method's own.
    """
    from ..model import StreamClassifier

    cls = get_method(method)
    start = time.perf_counter()
    cam: ScoreCAM = cls(
        StreamClassifier(model, stream), [model.dinov2.target_layer], _reshape(model),
        batch_size=batch_size,
        grad_batch_size=grad_batch_size or grad_batch_size_for(
            model, stream, x, cap=batch_size if x.device.type == "cuda" else min(batch_size, 8),
            element_size=2 if autocast_dtype is not None else x.element_size(),
        ),
        progress=progress, autocast_dtype=autocast_dtype, **method_options(cls, options),
    )
    maps = cam.forward(x, targets=[FAKE_TARGET] * x.shape[0], activations=activations)
    return CamResult(
        input_map=maps[0].astype("float32"), grid_map=cam.grid_cams[0].astype("float32"),
        forward_passes=cam.forward_passes, backward_passes=cam.backward_passes, method=method,
        seconds=time.perf_counter() - start, fidelity=cam.results[0].fidelity if cam.results else None,
    )


def _then(generator: ScoreGenerator, done: Callable[[], None] | None) -> ScoreGenerator:
    """``generator``, then ``done()`` (a method that stops early still completes its progress)."""
    result = yield from generator
    if done is not None:
        done()
    return result


def _reshape(model):
    return vit_reshape(num_prefix_tokens=model.dinov2.num_prefix_tokens, patch_size=model.dinov2.patch_size)
