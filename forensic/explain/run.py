"""The entry points: explain a report (the explanation stage) or streams' inputs.

- :func:`explain_streams`: Score-CAM of several streams' inputs by a named method, run as the plan
  (:func:`~forensic.explain.plan.plan_for`) says. The one function the pipeline's stage, the app,
  the CLI, the analyses and the bench explain with.
- :func:`explain_report`: the stage :class:`~forensic.pipeline.Detector` runs after the verdict:
  it takes a report and the verdict pass, and returns a *new* report with each stream's Score-CAM,
  its entropy, its map in image coordinates and the inter-stream map similarity.

Both run on the engine (:func:`~forensic.explain.engine.run_method`); callers name a method and,
at most, a plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..runtime import RuntimeConfig
from .attention import map_entropy
from .engine import run_method
from .methods import make_method
from .plan import ExplainPlan, explanation_lock, plan_for
from .similarity import map_similarity
from .types import CamResult, StreamInputs

__all__ = ["explain_report", "explain_streams"]

log = logging.getLogger(__name__)

#: progress callback of the stage: (what is happening, fraction done in [0, 1])
StageProgress = Callable[[str, float], None]


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
        inputs: per stream, its input and (ideally) its target layer's activations; a stream
            without them costs one more forward pass.
        method: a registered method name (:mod:`forensic.explain.methods`).
        plan: how to run (default: :func:`plan_for` the model with ``runtime``; ``plan_for(model,
            prefer="shared")``: on the model itself, no merged copy).
        runtime: settings for the default plan.
        progress: called with (stream, passes done, passes planned).
        options: method options (e.g. ``n_groups`` for ``fast``); those the method does not take are dropped.
    """
    cam_method = make_method(method, **options)
    plan = plan or plan_for(model, runtime=runtime)
    with explanation_lock(model):
        out = run_method(model, inputs, cam_method, plan, progress=progress)
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
        forwarded: the verdict pass: ``.tensors`` (stream -> its input batch; the first image is
            explained) and ``.outputs`` (stream -> :class:`~forensic.model.StreamOutput`, whose
            ``last_norm1`` is used when the pass kept it).
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
