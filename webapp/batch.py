"""Several images at once: one row per file (in upload order), a table for the page and a CSV file.

The rows are those of ``python -m forensic predict --format csv`` (:mod:`forensic.records`), with
the uploaded file's name in ``file`` where the CLI has its ``path``: one bad file is a row with an
``error``, never a failed batch.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensic.config import STREAM_NAMES
from forensic.records import CSV_COLUMNS as RECORD_COLUMNS
from forensic.records import csv_row, report_record

if TYPE_CHECKING:  # pragma: no cover
    from forensic.report import Report

__all__ = ["MAX_FILES", "CSV_COLUMNS", "TABLE_HEADERS", "batch_row", "table_html", "status_text", "to_csv"]

#: files one request may hold (a batch runs on the single model thread and blocks the queue)
MAX_FILES = 64
STREAMS = STREAM_NAMES
#: the CLI's columns, the file named by its upload name
CSV_COLUMNS = ("file", *(c for c in RECORD_COLUMNS if c != "path"))
TABLE_HEADERS = ("file", "P(fake)", "verdict", *STREAMS, "face mode", "error")


def batch_row(path: str | Path, outcome: Report | Exception, *, preset: str, untrained: bool,
              vote_without_face: bool = False) -> dict[str, Any]:
    """The CSV row of one file: its verdict (the report's, as the page and the CLI say it), or its error in one line."""
    row = csv_row(report_record(Path(path).name, outcome, preset=preset, untrained=untrained,
                                vote_without_face=vote_without_face))
    return {"file": row.pop("path"), **row}


def table_html(rows: Iterable[dict[str, Any]]) -> str:
    """The rows as the page shows them: an HTML table whose headers never break a word (a narrow screen scrolls
    the table, not the page) and whose error text wraps in its cell; the verdict word is the CSV's (the report's
    :mod:`forensic.verdict`: ``none (untrained)``, ``out of scope: no face`` ...), blanks for missing values."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in TABLE_HEADERS)
    body = []
    for r in rows:
        verdict = "-" if r["error"] else r["verdict"]
        p = "" if r["prob_fake"] is None else f"{r['prob_fake']:.1f}"
        cells = [r["file"], p, verdict, *("" if r[n] is None else f"{r[n]:.3f}" for n in STREAMS), r["face_mode"] or ""]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                    + f"<td class='wrap'>{html.escape(r['error'] or '')}</td></tr>")
    return (f"<div class='table-scroll'><table class='streams batch'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def status_text(rows: list[dict[str, Any]], *, untrained: bool) -> str:
    """The status line of a batch: how many files were analysed, how many could not be read."""
    failed = sum(1 for r in rows if r["error"])
    done, total = len(rows) - failed, len(rows)
    files = f"{total} file{'s' if total != 1 else ''}"
    what = f"{files} analysed" if not failed else f"{done} of {files} analysed"
    unread = f"; {failed} could not be read (see the error column)" if failed else ""
    note = " UNTRAINED weights: the numbers are random, so no verdict is given." if untrained else ""
    return f"✓ {what} as uploaded (the lab is not applied){unread}.{note}"


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV text (header first; empty cells for None)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
