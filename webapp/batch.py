"""Several images at once: one row per file (in upload order), a table for the page and a CSV file.

The rows are those of ``python -m forensic predict --format csv`` (:mod:`forensic.records`), with
the uploaded file's name in ``file`` where the CLI has its ``path``: one bad file is a row with an
``error``, never a failed batch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensic.config import STREAM_NAMES
from forensic.records import CSV_COLUMNS as RECORD_COLUMNS
from forensic.records import csv_row, report_record

if TYPE_CHECKING:  # pragma: no cover
    from forensic.report import Report

__all__ = ["MAX_FILES", "CSV_COLUMNS", "TABLE_HEADERS", "batch_row", "table_rows", "to_csv"]

#: files one request may hold (a batch runs on the single model thread and blocks the queue)
MAX_FILES = 64
STREAMS = STREAM_NAMES
#: the CLI's columns, the file named by its upload name
CSV_COLUMNS = ("file", *(c for c in RECORD_COLUMNS if c != "path"))
TABLE_HEADERS = ("file", "P(fake)", "verdict", *STREAMS, "face mode", "error")


def batch_row(path: str | Path, outcome: Report | Exception, *, preset: str, untrained: bool) -> dict[str, Any]:
    """The CSV row of one file: its verdict, or its error in one line."""
    row = csv_row(report_record(Path(path).name, outcome, preset=preset, untrained=untrained))
    return {"file": row.pop("path"), **row}


def table_rows(rows: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """The rows as the page shows them: no verdict word for an untrained model, blanks for missing values."""
    out = []
    for r in rows:
        if r["error"]:
            verdict = "-"
        elif r["untrained"]:
            verdict = "none (untrained)"
        else:
            verdict = r["label"]
        p = "" if r["prob_fake"] is None else f"{r['prob_fake']:.1f}"
        out.append([r["file"], p, verdict, *("" if r[n] is None else f"{r[n]:.3f}" for n in STREAMS),
                    r["face_mode"] or "", r["error"] or ""])
    return out


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV text (header first; empty cells for None)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
