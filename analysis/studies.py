"""The studies, one :class:`~analysis.study.Study` entry each, in the order the report shows them.

Each ``compute`` function runs the records it needs through its :class:`~analysis.study.StudyContext`
(stream passes, Score-CAM), aggregates them with its module (:mod:`analysis.robustness`, ...),
writes its CSV with :meth:`Study.tabulate` and adds figures, summary tables and notes. Adding a
study is writing one function and adding its entry to :data:`REGISTRY`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from forensic.images import load_image
from forensic.pipeline import load

from . import cam_drift as cam_drift_mod
from . import complementarity as comp_mod
from . import entropy as entropy_mod
from . import figures
from . import robustness as robustness_mod
from . import stability as stability_mod
from .conditions import CLEAN, Condition
from .runner import cam_key, load_maps, work_item
from .study import Study, StudyContext, StudyResult, TableView, pivot
from .tables import write_csv

__all__ = ["REGISTRY", "get_study"]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- robustness
def _robustness(a: StudyContext, study: Study) -> StudyResult:
    conditions = a.robustness_conditions
    runs = [a.run_passes(conditions)]
    rows = robustness_mod.robustness_table(a.passes, a.samples, conditions, seed=a.options.seed, streams=a.streams)
    result = study.tabulate(a, rows, runs)
    result.figures = [
        (f"{figures.METRIC_LABELS[m]} against strength", a.save_figure(figures.metric_figure(rows, m, streams=a.streams), f"robustness_{m}"))
        for m in robustness_mod.METRICS
    ]
    result.views = [
        pivot(rows, index=("family", "level"), column="stream", value=m, caption=f"{figures.METRIC_LABELS[m]} per stream")
        for m in ("auc", "accuracy")
    ]
    return result


ROBUSTNESS = Study(
    name="robustness",
    summary="AUC, AP, accuracy, EER and ECE per stream and vote, per degradation family and level",
    options=('families',),
    title="Robustness to degradations",
    description=(
        "Detection metrics of each stream and of the vote on the images degraded by each family at each level "
        "(the paper's protocol: JPEG quality 100..5, Gaussian noise sigma 0..60, Gaussian blur, motion blur and the "
        "random compound mix at strength 0..1; DeeperForensics-1.0 levels 1-5). Accuracy at P(fake) >= 0.5; "
        "the vote's P(fake) lies on the 0.1 grid."
    ),
    csv="robustness.csv",
    columns=robustness_mod.COLUMNS,
    compute=_robustness,
)


# ------------------------------------------------------------------------------------- stability
def _stability(a: StudyContext, study: Study) -> StudyResult:
    conditions = a.sweep_conditions
    runs = [a.run_passes(conditions)]
    rows = stability_mod.stability_table(a.passes, a.samples, conditions, seed=a.options.seed, streams=a.streams)
    result = study.tabulate(a, rows, runs)
    fig = figures.curve_figure(
        rows, value="cosine_mean", spread="cosine_std", streams=a.streams,
        title="Feature stability: cosine(clean, degraded) of the pooled feature", ylabel="cosine to clean",
    )
    result.figures = [("cosine to the clean feature against strength", a.save_figure(fig, "stability"))]
    result.views = [pivot(rows, index=("family", "strength"), column="stream", value="cosine_mean", caption="mean cosine to clean")]
    return result


STABILITY = Study(
    name="stability",
    summary="clean-vs-degraded cosine of each stream's pooled feature against strength",
    options=('sweep',),
    title="Feature stability",
    description=(
        "Per stream, the cosine similarity between the pooled feature the head sees on the clean image and on the same "
        "image degraded at each strength (a fixed seed per image), mean +- standard deviation over the images. "
        "1.0: the degradation did not move the representation."
    ),
    csv="stability.csv",
    columns=stability_mod.COLUMNS,
    compute=_stability,
)


# ------------------------------------------------------------------------------------- entropy
def _entropy(a: StudyContext, study: Study) -> StudyResult:
    conditions = a.sweep_conditions
    runs = [a.run_passes(conditions)]
    with_cam = a.options.cam != "none"
    if with_cam:
        runs.append(a.run_cams(conditions))
    rows = entropy_mod.entropy_table(
        a.passes, a.samples, conditions, seed=a.options.seed, streams=a.streams,
        cams=a.cams if with_cam else None, cam_samples=a.cam_samples, cam_method=a.cam_label, box=a.options.box,
    )
    result = study.tabulate(a, rows, runs)
    fig = figures.entropy_figure(rows, streams=a.streams)
    if with_cam and len(a.cam_samples) < len(a.samples):
        result.notes.append(
            f"Score-CAM entropy over the first {len(a.cam_samples)} images (--cam-limit); attention entropy over all {len(a.samples)}."
        )
    result.figures = [("normalised entropy against strength", a.save_figure(fig, "entropy"))]
    result.views = [
        pivot([r for r in rows if r["measure"] == m], index=("family", "strength"), column="stream", value="normalized_mean",
              caption=f"{m} entropy / ln N (mean)")
        for m in (("attention", "cam") if with_cam else ("attention",))
    ]
    return result


ENTROPY = Study(
    name="entropy",
    summary="CLS-attention and Score-CAM entropy against degradation strength",
    options=('sweep', 'cam'),
    title="Attention entropy",
    description=(
        "How spread out each stream's attention is: the Shannon entropy (nats) of the last block's CLS attention over the "
        "patches (head-averaged) and of the Score-CAM over the token grid, against degradation strength. Both lie in "
        "[0, ln N] (N patches); the figure shows entropy / ln N, mean +- standard deviation."
    ),
    csv="entropy.csv",
    columns=entropy_mod.COLUMNS,
    compute=_entropy,
)


# ------------------------------------------------------------------------------------- cam-drift
def _cam_drift(a: StudyContext, study: Study) -> StudyResult:
    conditions = a.sweep_conditions
    runs = [a.run_cams(conditions)]
    o = a.options
    rows = cam_drift_mod.cam_drift_table(a.cams, a.cam_samples, conditions, seed=o.seed, method=a.cam_label, box=o.box, streams=a.streams)
    result = study.tabulate(a, rows, runs)
    faithful = cam_drift_mod.cam_faithfulness_table(
        a.cams, a.cam_samples, conditions, seed=o.seed, method=a.cam_label, box=o.box, streams=a.streams
    )
    faithful_csv = write_csv(a.out / "cam_faithfulness.csv", faithful, cam_drift_mod.FAITHFULNESS_COLUMNS)
    result.figures = [("Score-CAM drift against strength", a.save_figure(figures.cam_drift_figure(rows, streams=a.streams), "cam_drift"))]
    for family in o.sweep_families:
        grid = _overlay_figure(a, [c for c in conditions if c.family == family])
        if grid is not None:
            result.figures.append((f"Score-CAM overlays under {family}", a.save_figure(grid, f"cam_drift_overlays_{family}")))
    if o.box is not None:
        result.notes.append(f"Box metrics use the fixed box {tuple(o.box)} (--box).")
    else:
        with_box = sum(1 for r in rows if r["n_box"])
        result.notes.append(
            "Box metrics use the face box found on each clean image" + ("." if with_box else "; no face was found, so they are empty (use --box).")
        )
    result.notes.append(
        f"Faithfulness ({faithful_csv.name}): deletion AUC (lower is better) and insertion AUC (higher is better) of each map over "
        "its stream's input, next to a random map's; deletion_gain and insertion_gain > 0 where the map beats chance"
        + ("; fidelity_mean: the fast maps' expected Pearson with exact Score-CAM." if any(r["n_fidelity"] for r in faithful) else ".")
    )
    result.views = [
        pivot(rows, index=("family", "strength"), column="stream", value="clean_corr_mean", caption="correlation with the clean map (mean)"),
        pivot(rows, index=("family", "strength"), column="stream", value="mass_in_box_mean", caption="Score-CAM mass inside the box (mean)"),
        pivot(faithful, index=("family", "strength"), column="stream", value="deletion_gain_mean", caption="deletion AUC gain over a random map (mean)"),
        pivot(faithful, index=("family", "strength"), column="stream", value="insertion_gain_mean", caption="insertion AUC gain over a random map (mean)"),
    ]
    return result


def _overlay_figure(a: StudyContext, conditions: Sequence[Condition]):
    """The first ``figure_images`` images and their streams' maps at (up to six of) ``conditions``; None without any."""
    shown = a.cam_samples[: a.options.figure_images]
    if not shown or not conditions:
        return None
    if len(conditions) > 6:  # six columns stay readable: first, last and evenly between
        idx = np.unique(np.round(np.linspace(0, len(conditions) - 1, 6)).astype(int))
        conditions = [conditions[i] for i in idx]
    o = a.options
    rows = []
    for s in shown:
        try:
            image = load_image(s.path)
        except Exception as exc:  # the figure goes on without this image
            log.warning("overlay figure: cannot read %s: %s", s.path, exc)
            continue
        clean_row = a.cams.get(cam_key(s, CLEAN, o.seed, a.cam_label, o.box)) or {}
        images, per_stream = [], {n: [] for n in a.streams}
        for c in conditions:
            stored = load_maps(a.maps_dir, cam_key(s, c.spec, o.seed, a.cam_label, o.box))
            item = work_item(s, c.spec, o.seed)  # the pixels the maps were computed on
            degraded = load(image, degradation=item.degradation, seed=item.seed).image
            if stored is None:
                size = _reduced_size(image.shape)
                maps = {}
            else:
                maps, _ = stored
                any_map = next(iter(maps.values()))
                size = (any_map.shape[1], any_map.shape[0])
            images.append(cv2.resize(degraded, size, interpolation=cv2.INTER_AREA))
            for n in a.streams:
                per_stream[n].append(maps.get(n))
        box = None
        if clean_row.get("box"):
            h, w = image.shape[:2]
            sx, sy = images[0].shape[1] / w, images[0].shape[0] / h
            x0, y0, x1, y1 = clean_row["box"]
            box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
        label = "fake" if s.label else "real"
        for n in a.streams:
            rows.append(figures.OverlayRow(f"{Path(s.key).name} ({label})", n, tuple(images), tuple(per_stream[n]), box))
    if not rows:
        return None
    return figures.overlay_grid(rows, [c.strength for c in conditions], title=f"Score-CAM ({a.cam_label}) under {conditions[0].family}, maps scaled to their maximum")


def _reduced_size(shape: tuple[int, ...]) -> tuple[int, int]:
    from .maps import MAP_SIDE

    h, w = shape[:2]
    scale = min(1.0, MAP_SIDE / max(h, w))
    return (max(1, round(w * scale)), max(1, round(h * scale)))


def _cam_drift_description(a: StudyContext) -> str:
    return (
        f"Each stream's Score-CAM ({a.cam_label}) in image coordinates on {len(a.cam_samples)} images at each strength (a fixed "
        "seed per image), compared with the clean image's map: correlation, shift of the mass centre (in image fractions), "
        "share of the mass inside the reference box (rest: background; dotted line: the box's share of the image), "
        "and the map's entropy."
    )


CAM_DRIFT = Study(
    name="cam-drift",
    summary="how far each stream's Score-CAM moves as the degradation grows",
    options=('sweep', 'cam'),
    title="Score-CAM drift",
    description=_cam_drift_description,
    csv="cam_drift.csv",
    columns=cam_drift_mod.COLUMNS,
    compute=_cam_drift,
    needs_cam=True,
)


# ------------------------------------------------------------------------------------- complementarity
def _complementarity(a: StudyContext, study: Study) -> StudyResult:
    o = a.options
    clean = [Condition("clean", "clean", 0.0, CLEAN)]
    runs = [a.run_passes(clean)]
    pass_rows, missing = robustness_mod.collect_rows(a.passes, a.samples, CLEAN, seed=o.seed)
    cam_rows: list[dict[str, Any]] = []
    if o.cam != "none":
        runs.append(a.run_cams(clean))
        cam_rows = cam_drift_mod.collect_cam_rows(a.cams, a.cam_samples, CLEAN, seed=o.seed, method=a.cam_label, box=o.box)
    rows = comp_mod.complementarity_table(pass_rows, cam_rows, streams=a.streams)
    result = study.tabulate(a, rows, runs)
    fig = figures.complementarity_figure(rows, streams=a.streams)
    labels = np.array([r["label"] for r in pass_rows], dtype=int)
    errs = {n: comp_mod.wrong([r["streams"][n]["prob_fake"] for r in pass_rows], labels) for n in a.streams}
    cov = comp_mod.coverage(errs) if pass_rows else {"all_wrong": float("nan"), "any_right": float("nan")}
    vote_acc = float(np.mean(comp_mod.wrong([r["prob_fake"] for r in pass_rows], labels) == 0)) if pass_rows else float("nan")
    result.notes.append(
        f"On {len(pass_rows)} clean images all streams were wrong together on {cov['all_wrong']:.1%}; at least one stream was right "
        f"on {cov['any_right']:.1%} (an oracle's accuracy), the vote on {vote_acc:.1%}."
    )
    if missing:
        result.notes.append(f"{missing} images could not be analysed and are left out.")
    cols = ("stream_a", "stream_b", "both_wrong", "either_wrong", "jaccard", "error_corr", "yule_q", "prob_corr", "feature_cosine_mean", "cam_cosine_mean")
    result.figures = [("inter-stream similarity and error correlation", a.save_figure(fig, "complementarity"))]
    result.views = [TableView("stream pairs", cols, tuple(tuple(r.get(c) for c in cols) for r in rows))]
    return result


COMPLEMENTARITY = Study(
    name="complementarity",
    summary="inter-stream similarity (Score-CAM, features) and error correlation on clean images",
    options=('cam',),
    title="Complementarity of the streams",
    description=(
        "On the clean images, per pair of streams: cosine similarity of their Score-CAM maps (image coordinates) and of "
        "their DINOv2 CLS features, and how their mistakes co-occur (both wrong, Jaccard of the error sets, phi "
        "correlation and Yule's Q of the error indicators). Low values mean the streams are not redundant."
    ),
    csv="complementarity.csv",
    columns=comp_mod.COLUMNS,
    compute=_complementarity,
)


# ------------------------------------------------------------------------------------- the registry
#: every study by name, in the order the report shows them
REGISTRY: dict[str, Study] = {s.name: s for s in (ROBUSTNESS, STABILITY, ENTROPY, CAM_DRIFT, COMPLEMENTARITY)}


def get_study(name: str) -> Study:
    """The study called ``name``.

    Raises:
        ValueError: no study has that name (the message lists them).
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]
