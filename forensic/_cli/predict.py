"""``python -m forensic predict PATH...``: verdicts for images and folders as JSON Lines, CSV or NTIRE."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from contextlib import nullcontext
from pathlib import Path

from ._common import add_degrade_args, add_model_args, expand_paths, fail, load_detector, warn

STREAMS = ("texture", "face", "fusion")


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help="score images (files or folders) as real or fake",
        description=(
            "Score images as real or fake. Folders are walked recursively. One bad file never stops the "
            "batch: its record carries an error and the exit code is 1. A progress bar goes to stderr."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    add_model_args(parser)
    add_degrade_args(parser)
    parser.add_argument("--format", choices=["json", "csv", "ntire"], default="json",
                        help="json: one object per image (JSON Lines); csv: a table; ntire: one P(fake) per line, sorted by file name")
    parser.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _record(path: Path, report, error: Exception | None, detector) -> dict:
    from ..report import error_record

    if error is not None:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        return error_record(str(path), message, preset=detector.preset, untrained=detector.untrained)
    record = report.to_dict()
    record["path"] = str(path)
    return record


def _csv_row(record: dict) -> dict:
    streams = record.get("streams") or {}
    face = record.get("face") or {}
    row = {"path": record["path"], "prob_fake": record.get("prob_fake"), "label": record.get("label")}
    for name in STREAMS:
        row[name] = (streams.get(name) or {}).get("prob_fake")
    row.update({"face_mode": face.get("mode"), "preset": record.get("preset"), "untrained": record.get("untrained"), "error": record.get("error")})
    return row


def run(args: argparse.Namespace) -> int:
    if args.compound is not None and not (math.isfinite(args.compound) and 0 <= args.compound <= 1):
        return fail(f"--compound must be in [0, 1], got {args.compound}")
    paths = expand_paths(args.paths)
    if not paths:
        return fail("no image files found in the given paths")
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
    from tqdm import tqdm

    records = []
    failures = 0
    with (open(args.out, "w", newline="") if args.out else nullcontext(sys.stdout)) as sink:
        bar = tqdm(total=len(paths), desc="predict", unit="img", file=sys.stderr, disable=args.no_progress)
        writer = None
        results = detector.analyze_many(paths, degradation=args.degrade, compound=args.compound, seed=args.seed, stability=False)
        for path, outcome in results:
            error = outcome if isinstance(outcome, Exception) else None
            record = _record(path, None if error else outcome, error, detector)
            failures += error is not None
            if error is not None:
                bar.write(f"{path}: {record['error']}", file=sys.stderr)
            if args.format == "json":
                sink.write(json.dumps(record) + "\n")
                sink.flush()  # results already computed are never lost if a later file hangs
            elif args.format == "csv":
                row = _csv_row(record)
                if writer is None:
                    writer = csv.DictWriter(sink, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                sink.flush()
            else:
                records.append(record)
            bar.update(1)
        bar.close()
        if args.format == "ntire":
            buf = io.StringIO()
            for record in records:
                # a failed file keeps its line so the order matches the sorted file names
                value = record["prob_fake"] if record["prob_fake"] is not None else 0.5
                buf.write(f"{value}\n")
            sink.write(buf.getvalue())
    if detector.untrained:
        warn("note: the weights are UNTRAINED (tiny-random): these scores are meaningless.")
    if failures:
        warn(f"{failures} of {len(paths)} files failed (see their error field).")
        return 1
    return 0
