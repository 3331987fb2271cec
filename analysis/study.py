"""What a study is: its entry (:class:`Study`), what it reads (:class:`StudyContext`), its result
(:class:`StudyResult`) and summary tables.

A study is one entry in :data:`analysis.studies.REGISTRY`: a name, a heading and description, its
CSV, and a ``compute`` function that evaluates what the records lack, aggregates them, writes the
table through :meth:`Study.tabulate` and adds its figures, summary tables and notes.
:class:`analysis.session.Analysis` is a :class:`StudyContext`: it runs any study by name and
returns a :class:`StudyResult`. Studies know only the context, never the session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .conditions import Condition
from .data import AnalysisSample
from .options import AnalysisOptions
from .runner import RunStats
from .store import RowStore
from .tables import write_csv

__all__ = ["Study", "StudyContext", "StudyResult", "TableView", "pivot", "run_note"]


class StudyContext(Protocol):
    """What a study reads and runs: the options, the images, the records and the output folder.

    Attributes:
        options: what to analyse and how.
        out: the output folder (the study's CSV goes there).
        samples: the labelled images; ``cam_samples`` those Score-CAM runs on (a prefix of them).
        streams: the detector's stream names.
        passes: the per-image stream pass records; ``cams`` the Score-CAM rows.
        maps_dir: the folder of the reduced Score-CAM maps.
        cam_label: the Score-CAM method's label in the records (``fast/g4``, ``exact``).
        robustness_conditions: the robustness protocol's conditions; ``sweep_conditions`` the sweeps'.
    """

    options: AnalysisOptions
    out: Path
    samples: Sequence[AnalysisSample]
    cam_samples: Sequence[AnalysisSample]
    streams: tuple[str, ...]
    passes: RowStore
    cams: RowStore
    maps_dir: Path
    cam_label: str
    robustness_conditions: Sequence[Condition]
    sweep_conditions: Sequence[Condition]

    def run_passes(self, conditions: Sequence[Condition]) -> RunStats:
        """Evaluates the stream passes at ``conditions`` that the records lack."""
        ...

    def run_cams(self, conditions: Sequence[Condition]) -> RunStats:
        """Computes the Score-CAM rows at ``conditions`` that the records lack."""
        ...

    def save_figure(self, fig: Any, name: str) -> Path:
        """Saves ``fig`` as ``out/figures/<name>.png``."""
        ...


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


#: runs a study on a context: ``compute(context, study) -> StudyResult``
Compute = Callable[[StudyContext, "Study"], StudyResult]


@dataclass(frozen=True)
class Study:
    """One study of :data:`analysis.studies.REGISTRY`.

    Attributes:
        name: the study's name on the command line (``python -m analysis NAME``).
        title: the heading of its section of the report.
        description: what it measures, for the report; a function of the context where it
            depends on the options (e.g. the Score-CAM method).
        csv: its table's file name in the output folder.
        columns: the table's columns.
        compute: evaluates, aggregates and writes the study (see :meth:`tabulate`).
        summary: one line for ``python -m analysis --help``.
        options: the command line's option groups it takes: ``families`` (degradation families
            and levels), ``sweep`` (families swept over strengths), ``cam`` (the Score-CAM method).
        needs_cam: whether it cannot run without Score-CAM (``--cam none``).
    """

    name: str
    title: str
    description: str | Callable[[StudyContext], str]
    csv: str
    columns: tuple[str, ...]
    compute: Compute
    summary: str = ""
    options: tuple[str, ...] = ()
    needs_cam: bool = False

    def describe(self, context: StudyContext) -> str:
        """The study's description for this context."""
        return self.description if isinstance(self.description, str) else self.description(context)

    def tabulate(self, context: StudyContext, rows: list[dict[str, Any]], runs: Sequence[RunStats]) -> StudyResult:
        """Writes ``rows`` to the study's CSV; returns its result so far (figures and views to add)."""
        csv = write_csv(context.out / self.csv, rows, self.columns)
        return StudyResult(
            name=self.name, title=self.title, description=self.describe(context), csv=csv, columns=self.columns,
            rows=rows, notes=[run_note(runs)], runs=list(runs),
        )


def run_note(runs: Sequence[RunStats]) -> str:
    """What the record runs computed, reused and lost, as a sentence."""
    computed = sum(r.computed for r in runs)
    skipped = sum(r.skipped for r in runs)
    failed = sum(r.failed for r in runs)
    text = f"{computed} per-image evaluations computed now, {skipped} reused from earlier runs"
    return text + (f", {failed} failed (see the records' error field)." if failed else ".")


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
