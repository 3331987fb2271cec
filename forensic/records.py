"""One file's result as a record: the JSON object of ``predict --format json`` and its CSV rows.

``python -m forensic predict`` (JSON Lines and CSV) and the app's batch table and CSV build their
rows here, so a field means the same everywhere. A file that could not be analysed is a record
with the same top-level keys, its values null and its ``error`` in one line.

Clips (:func:`video_record`): one JSON record per clip, :meth:`forensic.video.VideoReport.to_dict`
with ``path``, ``preset``, ``untrained`` and ``error`` added, and the clip's verdict also at the top
(``prob_fake``, ``label``, ``verdict``, ``verdict_reason``, ``verdict_rule``, copied from
``summary``), so every line of a mixed run answers "what is the verdict" the same way. In CSV a
run that holds a clip uses :data:`VIDEO_CSV_COLUMNS` (:func:`csv_rows`): the image columns, then
``row`` (``image``, ``frame`` or ``clip``) and the clip columns: one row per sampled frame, then
one summary row per clip. A run of images only keeps :data:`CSV_COLUMNS`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import STREAM_NAMES
from .report import Report, error_record

__all__ = ["CSV_COLUMNS", "VIDEO_CSV_COLUMNS", "CLIP_COLUMNS", "error_message", "report_record", "csv_row",
           "video_record", "csv_rows"]

#: the columns of ``predict --format csv``: ``label`` (empty when no verdict is given) and the
#: ``verdict`` word (:mod:`forensic.verdict`), one P(fake) per stream after the vote's
CSV_COLUMNS = ("path", "prob_fake", "label", "verdict", *STREAM_NAMES, "face_mode", "preset", "untrained", "error")

#: the columns a CSV with clips adds after :data:`CSV_COLUMNS`:
#:
#: - ``row``: ``image`` (an image's row), ``frame`` (one sampled frame of a clip) or ``clip`` (the clip's summary);
#: - ``frame``, ``time_s``: the frame's index among the sampled frames and its presentation time (s) (frame rows);
#: - ``on_main_track``: the frame shows the clip's main face (frame rows);
#: - ``frames``, ``frames_with_face``, ``share_fake``, ``streams_agree``, ``frames_agree``: the clip
#:   summary's (summary rows; :class:`forensic.video.ClipSummary`).
#:
#: In a frame row the image columns are that frame's (``path`` is the clip's); in a summary row
#: ``prob_fake``/``label``/``verdict`` are the clip's (the clip rule), each stream column that
#: stream's median over the counted frames, ``face_mode`` empty, and ``error`` the clip's (a clip
#: that could not be read is its summary row alone, with the error).
CLIP_COLUMNS = ("row", "frame", "time_s", "on_main_track", "frames", "frames_with_face", "share_fake", "streams_agree",
                "frames_agree")
VIDEO_CSV_COLUMNS = (*CSV_COLUMNS, *CLIP_COLUMNS)
#: the keys of a clip's summary a summary row copies
_SUMMARY_KEYS = ("frames", "frames_with_face", "share_fake", "streams_agree", "frames_agree")


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


def video_record(path: str | Path, outcome: Any, *, preset: str | None = None,
                 untrained: bool | None = None) -> dict[str, Any]:
    """The JSON record of one clip: ``outcome.to_dict()`` (a :class:`forensic.video.VideoReport`) with
    ``path``, ``preset``, ``untrained``, ``error`` (None) and the clip's verdict at the top; for an
    exception, the same keys with null values (``frames`` and ``tracks`` empty) and the error in one line.
    """
    head = {"path": str(path), "kind": "video", "prob_fake": None, "label": None, "verdict": None,
            "verdict_reason": None, "verdict_rule": None, "preset": preset, "untrained": untrained}
    if isinstance(outcome, BaseException):
        return {**head, "source": str(path), "clip": None, "sampling": None, "degradation": None, "tracks": [],
                "notes": [], "summary": None, "explain": "none", "explained": [], "frames": [],
                "error": error_message(outcome)}
    body = outcome.to_dict()
    summary = body["summary"]
    head.update({key: summary.get(key) for key in ("prob_fake", "label", "verdict", "verdict_reason", "verdict_rule")})
    return {**head, **body, "error": None}


def csv_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows (keys :data:`VIDEO_CSV_COLUMNS`) of a record: an image's one row (``row`` = ``image``),
    or a clip's frame rows in time order and its summary row last (see :data:`CLIP_COLUMNS`)."""
    blank = dict.fromkeys(CLIP_COLUMNS)
    if record.get("kind") != "video":
        return [{**csv_row(record), **blank, "row": "image"}]
    rows = []
    for frame in record.get("frames") or []:
        row = csv_row({**frame, "path": record["path"]})
        rows.append({**row, **blank, "row": "frame", "frame": frame["index"], "time_s": frame["time_s"],
                     "on_main_track": frame["on_main_track"]})
    summary = record.get("summary") or {}
    medians = summary.get("streams") or {}
    rows.append({
        "path": record["path"], "prob_fake": record.get("prob_fake"), "label": record.get("label"),
        "verdict": record.get("verdict"),
        **{name: (medians.get(name) or {}).get("median") for name in STREAM_NAMES},
        "face_mode": None, "preset": record.get("preset"), "untrained": record.get("untrained"),
        "error": record.get("error"),
        **blank, "row": "clip", **{key: summary.get(key) for key in _SUMMARY_KEYS},
    })
    return rows
