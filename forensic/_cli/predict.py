"""``python -m forensic predict PATH...``: verdicts for images, clips and folders as JSON Lines, CSV or NTIRE."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..options import add_model_args
from ._common import (
    UsageError, add_degrade_args, expand_paths, fail, load_detector, output_file_problem, silence_stdout, warn, whole_number,
    write_problem,
)
from .video import add_video_args, clip_record, video_paths


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help="score images and clips (files or folders) as real or fake",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Score images and video clips as real or fake. Folders are walked recursively (regular image\n"
            "and clip files only; a named pipe or device given by name is refused up front). One bad file\n"
            "never stops the batch: its record carries an error and the exit code is 1. json and csv\n"
            "records are written and flushed one by one, in input order, as soon as each is final (a clip's\n"
            "when the clip is done), so an interrupted run keeps every record already written. Progress\n"
            "goes to stderr (images, and each clip's frames).\n\n"
            "Output per clip:\n"
            "  json   one object per clip: its frames, face tracks and summary (the clip's verdict also at\n"
            "         the top: prob_fake, label, verdict), 'kind': 'video'\n"
            "  csv    one row per sampled frame (row=frame: the image columns for that frame, plus frame,\n"
            "         time_s, on_main_track), then one summary row (row=clip: the clip's prob_fake, label and\n"
            "         verdict, each stream's median, frames, frames_with_face, share_fake, streams_agree,\n"
            "         frames_agree); image rows have row=image. A run without clips keeps the image columns.\n"
            "  ntire  the clip's summary P(fake) (0.5 for a clip that failed)"
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, clips and/or folders")
    add_model_args(parser)
    add_degrade_args(parser)
    add_video_args(parser)
    parser.add_argument("--format", choices=["json", "csv", "ntire"], default="json",
                        help="json: one object per image or clip (JSON Lines); csv: a table (clips: a row per frame "
                             "and a summary row); ntire: one P(fake) per line (a clip's summary P(fake)), "
                             "sorted by file name, written only at the end (an interrupted run writes nothing; "
                             "a file that failed gets 0.5, and stderr says how many did)")
    parser.add_argument("--out", metavar="FILE", help="write here instead of stdout (its folder must exist)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--batch-size", type=whole_number(1), default=8, metavar="N",
                        help="images per pass through the streams (default 8; 32-128 keeps a big GPU busy)")
    parser.add_argument("--vote-without-face", action="store_true",
                        help="give the verdict even when no face is found (by default such an image is "
                             "'out of scope: no face': its P(fake) is reported, its label left empty)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.compound is not None and not (math.isfinite(args.compound) and 0 <= args.compound <= 1):
        return fail(f"--compound must be in [0, 1], got {args.compound}")
    skipped: list[tuple[Path, str]] = []
    try:
        paths = expand_paths(args.paths, skipped)
    except UsageError as exc:
        return fail(str(exc))
    if not paths:
        return fail("no image or video files found in the given paths" + _skipped_note(skipped, ", and"))
    if args.out and (problem := output_file_problem(args.out)):
        return fail(problem)
    if args.degrade is not None:
        from ..degrade import SpecError, parse_spec

        try:
            parse_spec(args.degrade)
        except SpecError as exc:
            return fail(str(exc))
    detector = load_detector(args)
    if detector is None:
        return 2
    if args.format == "ntire":
        paths = sorted(paths, key=lambda p: (p.name, str(p)))
    try:
        sink_context = open(args.out, "w", newline="") if args.out else nullcontext(sys.stdout)  # noqa: SIM115
    except OSError as exc:
        return fail(write_problem(args.out, exc))
    tally = _Tally()
    try:
        with sink_context as sink:
            written, failures, interrupted = _write_all(detector, paths, args, sink, tally)
    except OSError as exc:  # a full disk, /dev/full, a file that refuses writes (/proc/version)
        return fail(_output_failed(args, exc, tally))
    if detector.untrained:
        warn("note: the weights are UNTRAINED (tiny-random): these scores are meaningless.")
    if interrupted:
        kept = "nothing was written (the ntire format needs every file)" if args.format == "ntire" else "the records written so far are complete"
        warn(f"interrupted after {written} of {len(paths)} files: {kept}.")
        return 130
    if failures or skipped:
        failed = f"{failures} of {len(paths)} files failed (see their error field)" if failures else f"{len(paths)} files scored"
        warn(f"{failed}{_skipped_note(skipped, ';')}.")
    if failures and args.format == "ntire":
        warn(f"note: the ntire output holds 0.5 for each of the {failures} failed files (the format needs one number per file).")
    return 1 if failures else 0


def _skipped_note(skipped: list[tuple[Path, str]], joiner: str) -> str:
    """`` and skipped N entries that are not regular files (e.g. x.png: a named pipe (FIFO))``, or ""."""
    if not skipped:
        return ""
    path, kind = min(skipped, key=lambda entry: str(entry[0]))
    return f"{joiner} skipped {len(skipped)} folder entries that are not regular files (e.g. {path}: {kind})"


@dataclass
class _Tally:
    """How far the output got: records written and flushed, and the file offset after the last one."""

    done: int = 0
    kept: int = 0


def _output_failed(args: argparse.Namespace, exc: OSError, tally: _Tally) -> str:
    """The one line for a failed write; a regular --out file is cut back to its last complete record."""
    where = args.out or "standard output"
    if args.out:
        try:
            if Path(args.out).is_file():
                os.truncate(args.out, tally.kept)
        except OSError:
            pass
    else:
        silence_stdout()
    if args.format == "ntire":
        kept = "nothing usable was written (the ntire format needs every file)"
    elif tally.done == 0:
        kept = "no record was written"
    else:
        kept = "the record written before it is complete" if tally.done == 1 else f"the {tally.done} records written before it are complete"
    return f"{write_problem(where, exc)}; {kept}"


def _records(detector, paths: list[Path], clips: set[Path], args: argparse.Namespace, bar) -> Iterator[tuple[Path, dict]]:
    """``(path, record)`` in input order: each run of consecutive images through one batched
    :meth:`~forensic.pipeline.Detector.analyze_many`, each clip through its own analysis."""
    from ..records import report_record

    start = 0
    while start < len(paths):
        if paths[start] in clips:
            yield paths[start], clip_record(detector, paths[start], args, progress=not args.no_progress)
            start += 1
            continue
        end = start
        while end < len(paths) and paths[end] not in clips:
            end += 1
        results = detector.analyze_many(paths[start:end], batch_size=args.batch_size, degradation=args.degrade,
                                        compound=args.compound, seed=args.seed, stability=False)
        try:
            for path, outcome in results:
                bar.update(1)
                yield path, report_record(path, outcome, preset=detector.preset, untrained=detector.untrained,
                                          vote_without_face=args.vote_without_face)
        finally:
            results.close()  # let the pipeline release what it holds
        start = end


def _write_all(detector, paths: list[Path], args: argparse.Namespace, sink: IO[str], tally: _Tally) -> tuple[int, int, bool]:
    """Writes each record as soon as it is final, in input order.

    json and csv records are flushed one by one, so a later hang or crash loses nothing already
    computed. The ntire format is one bare number per line in sorted order: written at the end.
    A run with a clip writes the CSV columns of :data:`forensic.records.VIDEO_CSV_COLUMNS`.

    Returns:
        The number of records done, how many of them failed, and whether Ctrl-C stopped the run.
    """
    from tqdm import tqdm

    from ..records import CSV_COLUMNS, VIDEO_CSV_COLUMNS, csv_row, csv_rows

    clips = video_paths(paths)
    values: list[float] = []
    writer = None
    done = failures = 0
    images = len(paths) - len(clips)
    bar = tqdm(total=images, desc="predict", unit="img", file=sys.stderr, disable=args.no_progress or not images)
    results = _records(detector, paths, clips, args, bar)
    try:
        for path, record in results:
            failures += record["error"] is not None
            if record["error"] is not None:
                bar.write(f"{path}: {record['error']}", file=sys.stderr)
            for note in record.get("notes") or ():  # a clip's (cut short, two face tracks ...): the CSV has no column for them
                bar.write(f"{path}: note: {note}", file=sys.stderr)
            if args.format == "json":
                sink.write(json.dumps(record) + "\n")
            elif args.format == "csv":
                if writer is None:
                    writer = csv.DictWriter(sink, fieldnames=VIDEO_CSV_COLUMNS if clips else CSV_COLUMNS)
                    writer.writeheader()
                writer.writerows(csv_rows(record) if clips else [csv_row(record)])
            else:
                # a failed file keeps its line so the order matches the sorted file names
                values.append(record["prob_fake"] if record["prob_fake"] is not None else 0.5)
            sink.flush()
            done += 1
            if args.format != "ntire":
                tally.done, tally.kept = done, _offset(sink)
    except KeyboardInterrupt:
        return done, failures, True
    finally:
        bar.close()
        results.close()
    sink.write("".join(f"{value}\n" for value in values))
    sink.flush()
    return done, failures, False


def _offset(sink: IO[str]) -> int:
    try:
        return sink.tell() if sink.seekable() else 0
    except (OSError, ValueError):
        return 0
