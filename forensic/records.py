"""One file's result as a record: the JSON object of ``predict --format json`` and its CSV row.

``python -m forensic predict`` (JSON Lines and CSV) and the app's batch table and CSV build their
rows here, so a field means the same everywhere. A file that could not be analysed is a record
with the same top-level keys, its values null and its ``error`` in one line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import STREAM_NAMES
from .report import Report, error_record

__all__ = ["CSV_COLUMNS", "error_message", "report_record", "csv_row"]

#: the columns of ``predict --format csv``: ``label`` (empty when no verdict is given) and the
#: ``verdict`` word (:mod:`forensic.verdict`), one P(fake) per stream after the vote's
CSV_COLUMNS = ("path", "prob_fake", "label", "verdict", *STREAM_NAMES, "face_mode", "preset", "untrained", "error")


def error_message(error: BaseException) -> str:
    """The error in one line: the first line of its message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def report_record(path: str | Path, outcome: Report | BaseException, *, preset: str | None = None,
                  untrained: bool | None = None, vote_without_face: bool = False) -> dict[str, Any]:
    """The JSON record of one file (:meth:`forensic.report.Report.to_dict` with ``path`` set), or its error record.

    Args:
        path: what names the file in the record (as given on the command line, or an upload's name).
        outcome: the file's report, or the exception that stopped its analysis.
        preset, untrained: the detector's, written into an error record (a report carries its own).
        vote_without_face: give the vote even when no face was found (:mod:`forensic.verdict`).
    """
    if isinstance(outcome, BaseException):
        return error_record(str(path), error_message(outcome), preset=preset, untrained=untrained)
    if vote_without_face:
        outcome = replace(outcome, vote_without_face=True)
    record = outcome.to_dict()
    record["path"] = str(path)
    return record


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """The CSV row (keys :data:`CSV_COLUMNS`, in order) of a record from :func:`report_record`; None for a missing value."""
    streams = record.get("streams") or {}
    face = record.get("face") or {}
    return {
        "path": record["path"],
        "prob_fake": record.get("prob_fake"),
        "label": record.get("label"),
        "verdict": record.get("verdict"),
        **{name: (streams.get(name) or {}).get("prob_fake") for name in STREAM_NAMES},
        "face_mode": face.get("mode"),
        "preset": record.get("preset"),
        "untrained": record.get("untrained"),
        "error": record.get("error"),
    }
