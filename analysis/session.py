"""One analysis run: a detector, a labelled data set, an output folder; each study is a method.

``Analysis(detector, options).robustness()`` (or ``cam_drift``, ``entropy``, ``stability``,
``complementarity``) evaluates what is missing from the output folder's records, aggregates, and
writes the study's CSV and figures; ``report()`` runs them all (one batched pass over the union of
their degradations) and writes a self-contained HTML page.

Output folder layout::

    OUT/run.json                   the model the records belong to, and the last run's options
    OUT/records/passes.jsonl       per-image stream passes (robustness, stability, entropy, complementarity)
    OUT/records/cams.jsonl         per-image Score-CAM rows (cam-drift, entropy, complementarity)
    OUT/records/cam_maps/*.npz     reduced Score-CAM maps (clean maps; every strength for figure images)
    OUT/<study>.csv                the study's table
    OUT/figures/*.png              the study's figures
    OUT/report.html                (report) everything on one page, figures embedded
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from forensic.images import load_image

from . import cam_drift as cam_drift_mod
from . import complementarity as comp_mod
from . import entropy as entropy_mod
from . import figures
from . import robustness as robustness_mod
from . import stability as stability_mod
from .conditions import (
    CLEAN,
    DEFAULT_ROBUSTNESS_FAMILIES,
    DEFAULT_SWEEP_FAMILIES,
    SWEEP_STRENGTHS,
    Condition,
    robustness_conditions,
    sweep_conditions,
)
from .data import AnalysisSample, load_samples
from .runner import (
    ProgressFactory,
    RunStats,
    degraded_copy,
    cam_key,
    cam_method_label,
    cam_store,
    load_maps,
    pass_store,
    run_cams,
    run_passes,
)
from .store import AnalysisError, check_run_folder, model_identity
from .tables import write_csv

__all__ = ["AnalysisOptions", "Analysis", "StudyResult", "TableView", "STUDIES"]

log = logging.getLogger(__name__)

#: the studies in the order the report shows them
STUDIES: tuple[str, ...] = ("robustness", "stability", "entropy", "cam-drift", "complementarity")
RECORDS = "records"


@dataclass(frozen=True)
class AnalysisOptions:
    """What to analyse and how (the command-line options of ``python -m analysis``).

    Attributes:
        data: a folder with ``real/`` and ``fake/`` or a CSV manifest ``path,label[,split]``.
        out: the output folder (records are resumed from it).
        limit: use this many images, balanced real/fake (None: all).
        seed: seed of the image order and of every image's degradation seed.
        split: only a manifest's ``train`` or ``val`` rows.
        batch_size: images per batched stream pass.
        families: robustness families (see :mod:`analysis.conditions`).
        levels: keep only these level labels in robustness (None: all).
        sweep_families: families of the strength sweeps (stability, entropy, Score-CAM drift).
        strengths: the sweeps' strengths in [0, 1].
        cam: Score-CAM method, ``fast`` or ``exact``; ``none`` skips the Score-CAM parts.
        cam_limit: Score-CAM on only the first this-many images (None: all of them).
        cam_groups: channel groups of the fast Score-CAM (None: channels / 16).
        box: a fixed reference box (x0, y0, x1, y1) in image pixels for the CAM box metrics
            (default: the face box found on each clean image).
        figure_images: images shown in the Score-CAM overlay grid.
        fresh: delete earlier records in ``out`` instead of resuming.
    """

    data: Path
    out: Path
    limit: int | None = None
    seed: int = 0
    split: str | None = None
    batch_size: int = 8
    families: tuple[str, ...] = DEFAULT_ROBUSTNESS_FAMILIES
    levels: tuple[str, ...] | None = None
    sweep_families: tuple[str, ...] = DEFAULT_SWEEP_FAMILIES
    strengths: tuple[float, ...] = SWEEP_STRENGTHS
    cam: str = "fast"
    cam_limit: int | None = None
    cam_groups: int | None = None
    box: tuple[float, float, float, float] | None = None
    figure_images: int = 2
    fresh: bool = False

    def __post_init__(self) -> None:
        from forensic.explain import check_method

        check_method(self.cam, allow_none=True)
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if any(not 0.0 <= float(s) <= 1.0 for s in self.strengths) or not self.strengths:
            raise ValueError(f"strengths must be in [0, 1], got {list(self.strengths)}")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"box must be x0,y0,x1,y1 with x1 > x0 and y1 > y0, got {self.box}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        return d


@dataclass(frozen=True)
class TableView:
    """A small table for the HTML page (the CSV holds everything)."""

    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass
class StudyResult:
    """What a study wrote and found.

    Attributes:
        name: ``robustness``, ``cam-drift``, ...
        title: a heading.
        description: what it measures, for the HTML page.
        csv: the table's path; ``columns`` and ``rows`` are its content.
        figures: (caption, PNG path) pairs.
        views: summary tables for the HTML page.
        notes: sentences for the reader (what was reused, what is missing).
        runs: what the record runs computed and reused.
        seconds: wall time of the study.
    """

    name: str
    title: str
    description: str
    csv: Path
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    figures: list[tuple[str, Path]] = field(default_factory=list)
    views: list[TableView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs: list[RunStats] = field(default_factory=list)
    seconds: float = 0.0


def pivot(table: Sequence[dict[str, Any]], *, index: Sequence[str], column: str, value: str, caption: str) -> TableView:
    """Rows = distinct ``index`` tuples (in table order), columns = distinct ``column`` values."""
    cols: list[str] = []
    cells: dict[tuple, dict[str, Any]] = {}
    for r in table:
        key = tuple(r[k] for k in index)
        cells.setdefault(key, {})[r[column]] = r.get(value)
        if r[column] not in cols:
            cols.append(r[column])
    rows = tuple((*k, *(v.get(c) for c in cols)) for k, v in cells.items())
    return TableView(caption=caption, columns=(*index, *cols), rows=rows)


class Analysis:
    """The studies of one detector on one data set, resumable in ``options.out``.

    Args:
        detector: a :class:`forensic.pipeline.Detector`.
        options: what to analyse.
        progress: progress-bar factory ``(description, total) -> bar`` (e.g. ``tqdm``); none by default.

    Raises:
        train.data.DataError: the data cannot be read.
        AnalysisError: ``out`` holds records of another model.
    """

    def __init__(self, detector, options: AnalysisOptions, *, progress: ProgressFactory | None = None) -> None:
        self.detector = detector
        self.options = options
        self.progress = progress
        self.out = Path(options.out)
        self.samples: list[AnalysisSample] = load_samples(options.data, limit=options.limit, seed=options.seed, split=options.split)
        if len({s.label for s in self.samples}) < 2:
            log.warning("the data has only %s images: AUC, AP and EER will be NaN", "fake" if self.samples[0].label else "real")
        self.identity = model_identity(detector)
        check_run_folder(self.out, self.identity, fresh=options.fresh, records=RECORDS)
        (self.out / "run.json").write_text(json.dumps({"model": self.identity, "options": options.to_dict()}, indent=2) + "\n")
        self.records = self.out / RECORDS
        self.passes = pass_store(self.records)
        self.cams = cam_store(self.records)
        self.maps_dir = self.records / "cam_maps"
        self.streams: tuple[str, ...] = tuple(detector.config.stream_names)
        self.cam_label = cam_method_label(options.cam, options.cam_groups)
        limit = options.cam_limit
        self.cam_samples = self.samples if limit is None else self.samples[: max(0, limit)]
        self.robustness_conditions: list[Condition] = robustness_conditions(options.families, levels=options.levels)
        self.sweep_conditions: list[Condition] = sweep_conditions(options.sweep_families, options.strengths)

    # --------------------------------------------------------------------------------- records
    def _run_passes(self, conditions: Sequence[Condition]) -> RunStats:
        return run_passes(
            self.detector, self.samples, conditions, self.passes, seed=self.options.seed, batch_size=self.options.batch_size, progress=self.progress
        )

    def _run_cams(self, conditions: Sequence[Condition]) -> RunStats:
        keep = [s.key for s in self.cam_samples[: self.options.figure_images]]
        return run_cams(
            self.detector, self.cam_samples, conditions, self.cams, seed=self.options.seed, method=self.options.cam,
            maps_dir=self.maps_dir, box=self.options.box, keep_maps_for=keep, cam_groups=self.options.cam_groups, progress=self.progress,
        )

    def _figure(self, fig, name: str) -> Path:
        return figures.save_figure(fig, self.out / "figures" / f"{name}.png")

    @staticmethod
    def _run_note(runs: Sequence[RunStats]) -> str:
        computed = sum(r.computed for r in runs)
        skipped = sum(r.skipped for r in runs)
        failed = sum(r.failed for r in runs)
        text = f"{computed} per-image evaluations computed now, {skipped} reused from earlier runs"
        return text + (f", {failed} failed (see the records' error field)." if failed else ".")

    # --------------------------------------------------------------------------------- studies
    def robustness(self) -> StudyResult:
        """AUC, AP, accuracy, EER and ECE per stream and vote, per family and level (``robustness.csv``)."""
        start = time.perf_counter()
        conditions = self.robustness_conditions
        runs = [self._run_passes(conditions)]
        rows = robustness_mod.robustness_table(self.passes, self.samples, conditions, seed=self.options.seed, streams=self.streams)
        csv = write_csv(self.out / "robustness.csv", rows, robustness_mod.COLUMNS)
        figs = [
            (f"{figures.METRIC_LABELS[m]} against strength", self._figure(figures.metric_figure(rows, m, streams=self.streams), f"robustness_{m}"))
            for m in robustness_mod.METRICS
        ]
        views = [pivot(rows, index=("family", "level"), column="stream", value=m, caption=f"{figures.METRIC_LABELS[m]} per stream") for m in ("auc", "accuracy")]
        return StudyResult(
            name="robustness",
            title="Robustness to degradations",
            description=(
                "Detection metrics of each stream and of the vote on the images degraded by each family at each level "
                "(the paper's protocol: JPEG quality 100..5, Gaussian noise sigma 0..60, Gaussian blur, motion blur and the "
                "random compound mix at strength 0..1; DeeperForensics-1.0 levels 1-5). Accuracy at P(fake) >= 0.5; "
                "the vote's P(fake) lies on the 0.1 grid."
            ),
            csv=csv, columns=robustness_mod.COLUMNS, rows=rows, figures=figs, views=views,
            notes=[self._run_note(runs)], runs=runs, seconds=time.perf_counter() - start,
        )

    def stability(self) -> StudyResult:
        """Clean-vs-degraded cosine of each stream's pooled feature against strength (``stability.csv``)."""
        start = time.perf_counter()
        conditions = self.sweep_conditions
        runs = [self._run_passes(conditions)]
        rows = stability_mod.stability_table(self.passes, self.samples, conditions, seed=self.options.seed, streams=self.streams)
        csv = write_csv(self.out / "stability.csv", rows, stability_mod.COLUMNS)
        fig = figures.curve_figure(
            rows, value="cosine_mean", spread="cosine_std", streams=self.streams,
            title="Feature stability: cosine(clean, degraded) of the pooled feature", ylabel="cosine to clean",
        )
        return StudyResult(
            name="stability",
            title="Feature stability",
            description=(
                "Per stream, the cosine similarity between the pooled feature the head sees on the clean image and on the same "
                "image degraded at each strength (a fixed seed per image), mean +- standard deviation over the images. "
                "1.0: the degradation did not move the representation."
            ),
            csv=csv, columns=stability_mod.COLUMNS, rows=rows,
            figures=[("cosine to the clean feature against strength", self._figure(fig, "stability"))],
            views=[pivot(rows, index=("family", "strength"), column="stream", value="cosine_mean", caption="mean cosine to clean")],
            notes=[self._run_note(runs)], runs=runs, seconds=time.perf_counter() - start,
        )

    def entropy(self) -> StudyResult:
        """CLS-attention and Score-CAM entropy against strength (``entropy.csv``)."""
        start = time.perf_counter()
        conditions = self.sweep_conditions
        runs = [self._run_passes(conditions)]
        with_cam = self.options.cam != "none"
        if with_cam:
            runs.append(self._run_cams(conditions))
        rows = entropy_mod.entropy_table(
            self.passes, self.samples, conditions, seed=self.options.seed, streams=self.streams,
            cams=self.cams if with_cam else None, cam_samples=self.cam_samples, cam_method=self.cam_label, box=self.options.box,
        )
        csv = write_csv(self.out / "entropy.csv", rows, entropy_mod.COLUMNS)
        fig = figures.entropy_figure(rows, streams=self.streams)
        notes = [self._run_note(runs)]
        if with_cam and len(self.cam_samples) < len(self.samples):
            notes.append(f"Score-CAM entropy over the first {len(self.cam_samples)} images (--cam-limit); attention entropy over all {len(self.samples)}.")
        views = [
            pivot([r for r in rows if r["measure"] == m], index=("family", "strength"), column="stream", value="normalized_mean", caption=f"{m} entropy / ln N (mean)")
            for m in (("attention", "cam") if with_cam else ("attention",))
        ]
        return StudyResult(
            name="entropy",
            title="Attention entropy",
            description=(
                "How spread out each stream's attention is: the Shannon entropy (nats) of the last block's CLS attention over the "
                "patches (head-averaged) and of the Score-CAM over the token grid, against degradation strength. Both lie in "
                "[0, ln N] (N patches); the figure shows entropy / ln N, mean +- standard deviation."
            ),
            csv=csv, columns=entropy_mod.COLUMNS, rows=rows,
            figures=[("normalised entropy against strength", self._figure(fig, "entropy"))],
            views=views, notes=notes, runs=runs, seconds=time.perf_counter() - start,
        )

    def cam_drift(self) -> StudyResult:
        """Score-CAM movement against strength, and an overlay grid (``cam_drift.csv``)."""
        if self.options.cam == "none":
            raise AnalysisError("cam-drift needs Score-CAM: use --cam fast or --cam exact")
        start = time.perf_counter()
        conditions = self.sweep_conditions
        runs = [self._run_cams(conditions)]
        o = self.options
        rows = cam_drift_mod.cam_drift_table(self.cams, self.cam_samples, conditions, seed=o.seed, method=self.cam_label, box=o.box, streams=self.streams)
        csv = write_csv(self.out / "cam_drift.csv", rows, cam_drift_mod.COLUMNS)
        faithful = cam_drift_mod.cam_faithfulness_table(
            self.cams, self.cam_samples, conditions, seed=o.seed, method=self.cam_label, box=o.box, streams=self.streams
        )
        faithful_csv = write_csv(self.out / "cam_faithfulness.csv", faithful, cam_drift_mod.FAITHFULNESS_COLUMNS)
        figs = [("Score-CAM drift against strength", self._figure(figures.cam_drift_figure(rows, streams=self.streams), "cam_drift"))]
        for family in o.sweep_families:
            grid = self._overlay_figure([c for c in conditions if c.family == family])
            if grid is not None:
                figs.append((f"Score-CAM overlays under {family}", self._figure(grid, f"cam_drift_overlays_{family}")))
        notes = [self._run_note(runs)]
        if o.box is not None:
            notes.append(f"Box metrics use the fixed box {tuple(o.box)} (--box).")
        else:
            with_box = sum(1 for r in rows if r["n_box"]) 
            notes.append("Box metrics use the face box found on each clean image" + ("." if with_box else "; no face was found, so they are empty (use --box)."))
        notes.append(
            f"Faithfulness ({faithful_csv.name}): deletion AUC (lower is better) and insertion AUC (higher is better) of each map over "
            "its stream's input, next to a random map's; deletion_gain and insertion_gain > 0 where the map beats chance"
            + ("; fidelity_mean: the fast maps' expected Pearson with exact Score-CAM." if any(r["n_fidelity"] for r in faithful) else ".")
        )
        views = [
            pivot(rows, index=("family", "strength"), column="stream", value="clean_corr_mean", caption="correlation with the clean map (mean)"),
            pivot(rows, index=("family", "strength"), column="stream", value="mass_in_box_mean", caption="Score-CAM mass inside the box (mean)"),
            pivot(faithful, index=("family", "strength"), column="stream", value="deletion_gain_mean", caption="deletion AUC gain over a random map (mean)"),
            pivot(faithful, index=("family", "strength"), column="stream", value="insertion_gain_mean", caption="insertion AUC gain over a random map (mean)"),
        ]
        return StudyResult(
            name="cam-drift",
            title="Score-CAM drift",
            description=(
                f"Each stream's Score-CAM ({self.cam_label}) in image coordinates on {len(self.cam_samples)} images at each strength (a fixed "
                "seed per image), compared with the clean image's map: correlation, shift of the mass centre (in image fractions), "
                "share of the mass inside the reference box (rest: background; dotted line: the box's share of the image), "
                "and the map's entropy."
            ),
            csv=csv, columns=cam_drift_mod.COLUMNS, rows=rows, figures=figs, views=views,
            notes=notes, runs=runs, seconds=time.perf_counter() - start,
        )

    def complementarity(self) -> StudyResult:
        """Inter-stream similarity and error correlation on the clean images (``complementarity.csv``)."""
        start = time.perf_counter()
        o = self.options
        clean = [Condition("clean", "clean", 0.0, CLEAN)]
        runs = [self._run_passes(clean)]
        pass_rows, missing = robustness_mod.collect_rows(self.passes, self.samples, CLEAN, seed=o.seed)
        cam_rows: list[dict[str, Any]] = []
        if o.cam != "none":
            runs.append(self._run_cams(clean))
            cam_rows = cam_drift_mod.collect_cam_rows(self.cams, self.cam_samples, CLEAN, seed=o.seed, method=self.cam_label, box=o.box)
        rows = comp_mod.complementarity_table(pass_rows, cam_rows, streams=self.streams)
        csv = write_csv(self.out / "complementarity.csv", rows, comp_mod.COLUMNS)
        fig = figures.complementarity_figure(rows, streams=self.streams)
        labels = np.array([r["label"] for r in pass_rows], dtype=int)
        errs = {n: comp_mod.wrong([r["streams"][n]["prob_fake"] for r in pass_rows], labels) for n in self.streams}
        cov = comp_mod.coverage(errs) if pass_rows else {"all_wrong": float("nan"), "any_right": float("nan")}
        vote_acc = float(np.mean(comp_mod.wrong([r["prob_fake"] for r in pass_rows], labels) == 0)) if pass_rows else float("nan")
        notes = [
            self._run_note(runs),
            f"On {len(pass_rows)} clean images all streams were wrong together on {cov['all_wrong']:.1%}; at least one stream was right "
            f"on {cov['any_right']:.1%} (an oracle's accuracy), the vote on {vote_acc:.1%}.",
        ]
        if missing:
            notes.append(f"{missing} images could not be analysed and are left out.")
        cols = ("stream_a", "stream_b", "both_wrong", "either_wrong", "jaccard", "error_corr", "yule_q", "prob_corr", "feature_cosine_mean", "cam_cosine_mean")
        views = [TableView("stream pairs", cols, tuple(tuple(r.get(c) for c in cols) for r in rows))]
        return StudyResult(
            name="complementarity",
            title="Complementarity of the streams",
            description=(
                "On the clean images, per pair of streams: cosine similarity of their Score-CAM maps (image coordinates) and of "
                "their DINOv2 CLS features, and how their mistakes co-occur (both wrong, Jaccard of the error sets, phi "
                "correlation and Yule's Q of the error indicators). Low values mean the streams are not redundant."
            ),
            csv=csv, columns=comp_mod.COLUMNS, rows=rows,
            figures=[("inter-stream similarity and error correlation", self._figure(fig, "complementarity"))],
            views=views, notes=notes, runs=runs, seconds=time.perf_counter() - start,
        )

    def run(self, name: str) -> StudyResult:
        """Runs the study called ``name`` (one of :data:`STUDIES`)."""
        methods = {
            "robustness": self.robustness, "stability": self.stability, "entropy": self.entropy,
            "cam-drift": self.cam_drift, "complementarity": self.complementarity,
        }
        if name not in methods:
            raise ValueError(f"unknown study {name!r}; choose one of {', '.join(methods)}")
        return methods[name]()

    def report(self, *, title: str | None = None) -> tuple[Path, list[StudyResult]]:
        """Runs every study and writes ``report.html`` (self-contained); returns its path and the results."""
        from .report import write_report

        start = time.perf_counter()
        # one batched pass over the union of the degradations, so each image is read once per chunk
        self._run_passes([*self.robustness_conditions, *self.sweep_conditions])
        names = [n for n in STUDIES if not (n == "cam-drift" and self.options.cam == "none")]
        results = [self.run(n) for n in names]
        path = write_report(
            self.out / "report.html",
            results,
            title=title or "Robustness analysis",
            model=self.detector.describe(),
            identity=self.identity,
            data={
                "source": str(self.options.data),
                "images": len(self.samples),
                "fake": sum(s.label for s in self.samples),
                "real": sum(1 - s.label for s in self.samples),
                "score_cam_images": len(self.cam_samples) if self.options.cam != "none" else 0,
            },
            options=self.options.to_dict(),
            seconds=time.perf_counter() - start,
        )
        return path, results

    # --------------------------------------------------------------------------------- figures
    def _overlay_figure(self, conditions: Sequence[Condition]):
        shown = self.cam_samples[: self.options.figure_images]
        if not shown or not conditions:
            return None
        if len(conditions) > 6:  # six columns stay readable: first, last and evenly between
            idx = np.unique(np.round(np.linspace(0, len(conditions) - 1, 6)).astype(int))
            conditions = [conditions[i] for i in idx]
        o = self.options
        rows = []
        for s in shown:
            try:
                image = load_image(s.path)
            except Exception as exc:  # the figure goes on without this image
                log.warning("overlay figure: cannot read %s: %s", s.path, exc)
                continue
            clean_row = self.cams.get(cam_key(s, CLEAN, o.seed, self.cam_label, o.box)) or {}
            images, per_stream = [], {n: [] for n in self.streams}
            for c in conditions:
                stored = load_maps(self.maps_dir, cam_key(s, c.spec, o.seed, self.cam_label, o.box))
                degraded = degraded_copy(image, s, c.spec, o.seed)
                if stored is None:
                    size = _reduced_size(image.shape)
                    maps = {}
                else:
                    maps, _ = stored
                    any_map = next(iter(maps.values()))
                    size = (any_map.shape[1], any_map.shape[0])
                images.append(cv2.resize(degraded, size, interpolation=cv2.INTER_AREA))
                for n in self.streams:
                    per_stream[n].append(maps.get(n))
            box = None
            if clean_row.get("box"):
                h, w = image.shape[:2]
                sx, sy = images[0].shape[1] / w, images[0].shape[0] / h
                x0, y0, x1, y1 = clean_row["box"]
                box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
            label = "fake" if s.label else "real"
            for n in self.streams:
                rows.append(figures.OverlayRow(f"{Path(s.key).name} ({label})", n, tuple(images), tuple(per_stream[n]), box))
        if not rows:
            return None
        return figures.overlay_grid(rows, [c.strength for c in conditions], title=f"Score-CAM ({self.cam_label}) under {conditions[0].family}, maps scaled to their maximum")


def _reduced_size(shape: tuple[int, ...]) -> tuple[int, int]:
    from .maps import MAP_SIDE

    h, w = shape[:2]
    scale = min(1.0, MAP_SIDE / max(h, w))
    return (max(1, round(w * scale)), max(1, round(h * scale)))
