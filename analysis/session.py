"""One analysis run: a detector, a labelled data set, an output folder; the studies run on it.

``Analysis(detector, options).run("robustness")`` (or any name of :data:`STUDIES`, each an entry of
:data:`analysis.studies.REGISTRY`; ``robustness()``, ``cam_drift()``, ... are shorthands) evaluates
what is missing from the output folder's records, aggregates, and writes the study's CSV and
figures; ``report()`` runs them all (one batched pass over the union of their degradations) and
writes a self-contained HTML page.

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
from pathlib import Path

from . import figures
from .conditions import Condition, robustness_conditions, sweep_conditions
from .data import AnalysisSample, load_samples
from .options import AnalysisOptions
from .runner import ProgressFactory, RunStats, cam_method_label, cam_store, pass_key, pass_store, run_cams, run_passes
from .store import AnalysisError, check_run_folder, model_identity
from .studies import REGISTRY, get_study
from .study import StudyResult

__all__ = ["Analysis", "STUDIES"]

log = logging.getLogger(__name__)

#: the studies in the order the report shows them (see :data:`analysis.studies.REGISTRY`)
STUDIES: tuple[str, ...] = tuple(REGISTRY)
RECORDS = "records"


class Analysis:
    """The studies of one detector on one data set, resumable in ``options.out``.

    Args:
        detector: a :class:`forensic.pipeline.Detector`.
        options: what to analyse.
        progress: progress-bar factory ``(description, total) -> bar`` (e.g. ``tqdm``); none by default.

    Raises:
        forensic.data.DataError: the data cannot be read.
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
    def run_passes(self, conditions: Sequence[Condition]) -> RunStats:
        """Evaluates the stream passes of every image at ``conditions`` that the records lack.

        Raises:
            AnalysisError: every image failed at every condition (no score to compute a metric
                from): says so, with the first error and where the records are.
        """
        stats = run_passes(
            self.detector, self.samples, conditions, self.passes, seed=self.options.seed, batch_size=self.options.batch_size, progress=self.progress
        )
        specs = {c.spec for c in conditions}
        if self.samples and specs and not any(self.passes.done(pass_key(s, sp, self.options.seed)) for s in self.samples for sp in specs):
            first = next((row["error"] for row in self.passes.rows() if row.get("error")), "no record")
            raise AnalysisError(
                f"every image failed ({len(self.samples)} images, {len(specs)} conditions), so there is nothing to measure; "
                f"the first error: {first}; each image's error is in {self.passes.path} (field 'error')"
            )
        return stats

    def run_cams(self, conditions: Sequence[Condition]) -> RunStats:
        """Computes the Score-CAM rows of the Score-CAM images at ``conditions`` that the records lack."""
        keep = [s.key for s in self.cam_samples[: self.options.figure_images]]
        return run_cams(
            self.detector, self.cam_samples, conditions, self.cams, seed=self.options.seed, method=self.options.cam,
            maps_dir=self.maps_dir, box=self.options.box, keep_maps_for=keep, cam_groups=self.options.cam_groups, progress=self.progress,
        )

    def save_figure(self, fig, name: str) -> Path:
        """Saves ``fig`` as ``OUT/figures/<name>.png``."""
        return figures.save_figure(fig, self.out / "figures" / f"{name}.png")

    # --------------------------------------------------------------------------------- studies
    def run(self, name: str) -> StudyResult:
        """Runs the study called ``name`` (one of :data:`STUDIES`).

        Raises:
            ValueError: no such study.
            AnalysisError: the study needs Score-CAM and ``options.cam`` is ``none``.
        """
        study = get_study(name)
        if study.needs_cam and self.options.cam == "none":
            from forensic.explain import method_names

            raise AnalysisError(f"{name} needs Score-CAM: use --cam with one of {', '.join(method_names())}")
        start = time.perf_counter()
        result = study.compute(self, study)
        result.seconds = time.perf_counter() - start
        return result

    def robustness(self) -> StudyResult:
        """AUC, AP, accuracy, EER and ECE per stream and vote, per family and level (``robustness.csv``)."""
        return self.run("robustness")

    def stability(self) -> StudyResult:
        """Clean-vs-degraded cosine of each stream's pooled feature against strength (``stability.csv``)."""
        return self.run("stability")

    def entropy(self) -> StudyResult:
        """CLS-attention and Score-CAM entropy against strength (``entropy.csv``)."""
        return self.run("entropy")

    def cam_drift(self) -> StudyResult:
        """Score-CAM movement against strength, and an overlay grid (``cam_drift.csv``)."""
        return self.run("cam-drift")

    def complementarity(self) -> StudyResult:
        """Inter-stream similarity and error correlation on the clean images (``complementarity.csv``)."""
        return self.run("complementarity")

    def report(self, *, title: str | None = None) -> tuple[Path, list[StudyResult]]:
        """Runs every study and writes ``report.html`` (self-contained); returns its path and the results."""
        from .report import write_report

        start = time.perf_counter()
        # one batched pass over the union of the degradations, so each image is read once per chunk
        self.run_passes([*self.robustness_conditions, *self.sweep_conditions])
        names = [s.name for s in REGISTRY.values() if not (s.needs_cam and self.options.cam == "none")]
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
