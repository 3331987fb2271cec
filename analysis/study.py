"""What a study is: its entry (:class:`Study`), its result (:class:`StudyResult`) and summary tables.

A study is one entry in :data:`analysis.studies.REGISTRY`: a name, a heading and description, its
CSV, and a ``compute`` function that evaluates what the records lack, aggregates them, writes the
table through :meth:`Study.tabulate` and adds its figures, summary tables and notes.
:class:`analysis.session.Analysis` runs any of them by name and returns a :class:`StudyResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .runner import RunStats
from .tables import write_csv

if TYPE_CHECKING:
    from .session import Analysis

__all__ = ["Study", "StudyResult", "TableView", "pivot", "run_note"]


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


#: runs a study on an analysis: ``compute(analysis, study) -> StudyResult``
Compute = Callable[["Analysis", "Study"], StudyResult]


@dataclass(frozen=True)
class Study:
    """One study of :data:`analysis.studies.REGISTRY`.

    Attributes:
        name: the study's name on the command line (``python -m analysis NAME``).
        title: the heading of its section of the report.
        description: what it measures, for the report; a function of the analysis where it
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
    description: str | Callable[[Analysis], str]
    csv: str
    columns: tuple[str, ...]
    compute: Compute
    summary: str = ""
    options: tuple[str, ...] = ()
    needs_cam: bool = False

    def describe(self, analysis: Analysis) -> str:
        """The study's description for this analysis."""
        return self.description if isinstance(self.description, str) else self.description(analysis)

    def tabulate(self, analysis: Analysis, rows: list[dict[str, Any]], runs: Sequence[RunStats]) -> StudyResult:
        """Writes ``rows`` to the study's CSV; returns its result so far (figures and views to add)."""
        csv = write_csv(analysis.out / self.csv, rows, self.columns)
        return StudyResult(
            name=self.name, title=self.title, description=self.describe(analysis), csv=csv, columns=self.columns,
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
