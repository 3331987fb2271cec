"""Several images at once: one row per file (in upload order), a table for the page and a CSV file.

The CSV has the columns of ``python -m forensic predict --format csv`` with the uploaded file's
name in ``file``: one bad file is a row with an ``error``, never a failed batch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensic.config import STREAM_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from forensic.report import Report

__all__ = ["MAX_FILES", "CSV_COLUMNS", "TABLE_HEADERS", "batch_row", "table_rows", "to_csv"]

#: files one request may hold (a batch runs on the single model thread and blocks the queue)
MAX_FILES = 64
STREAMS = STREAM_NAMES
CSV_COLUMNS = ("file", "prob_fake", "label", *STREAMS, "face_mode", "preset", "untrained", "error")
TABLE_HEADERS = ("file", "P(fake)", "verdict", *STREAMS, "face mode", "error")


def batch_row(path: str | Path, outcome: Report | Exception, *, preset: str, untrained: bool) -> dict[str, Any]:
    """The CSV row of one file: its verdict, or its error in one line."""
    name = Path(path).name
    if isinstance(outcome, Exception):
        message = str(outcome).strip().splitlines()[0] if str(outcome).strip() else type(outcome).__name__
        return {"file": name, "prob_fake": None, "label": None, **{n: None for n in STREAMS}, "face_mode": None,
                "preset": preset, "untrained": untrained, "error": message}
    streams = {n: round(float(outcome.streams[n].prob_fake), 4) if n in outcome.streams else None for n in STREAMS}
    return {"file": name, "prob_fake": outcome.prob_fake, "label": outcome.label, **streams, "face_mode": outcome.face.mode,
            "preset": outcome.preset, "untrained": outcome.untrained, "error": None}


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
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r[k] for k in CSV_COLUMNS})
    return buf.getvalue()
