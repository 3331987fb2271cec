"""``python -m forensic explain IMAGE --out DIR``: Score-CAM overlays, figures and report.json."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from ..options import add_model_args
from ._common import (
    UsageError, add_degrade_args, check_regular_input, fail, load_detector, method_arg, output_folder_problem, save_atomically,
    say, whole_number, write_problem,
)
from .video import add_sampling_args, clip_explanation


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help="explain one image or clip: where each stream looked (Score-CAM), entropy, similarity",
        description=(
            "Analyse one image with explanations and write: regions.png (what each stream saw), "
            "cam_<stream>.png overlays, explanation.png (side by side), entropy.png, similarity.png "
            "and report.json. A clip (mp4, mov, webm, mkv, avi, m4v) is sampled and analysed frame by "
            "frame, its --explain-frames most suspicious frames explained: timeline.png, "
            "frame<i>_regions.png, frame<i>_cam_<stream>.png, frame<i>_explanation.png and report.json "
            "(the clip's record, as predict writes it)."
        ),
    )
    parser.add_argument("image", metavar="IMAGE_OR_CLIP")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    add_model_args(parser)
    # checked by the registry on use (importing it here would cost every subcommand's --help seconds)
    parser.add_argument("--cam", type=method_arg(), default="fast", metavar="METHOD",
                        help="the explanation method: fast (estimated Score-CAM with a fidelity estimate, the default), "
                             "adaptive (fast, finished exactly where its fidelity is not high) "
                             "or exact (one forward pass per channel, slow on CPU)")
    add_degrade_args(parser)
    parser.add_argument("--vote-without-face", action="store_true",
                        help="give the verdict even when no face is found (by default such an image is "
                             "'out of scope: no face': its P(fake) is reported, its label left empty)")
    clips = parser.add_argument_group("clips", "How a clip is sampled (images ignore these options).")
    add_sampling_args(clips)
    clips.add_argument("--explain-frames", type=whole_number(1), default=1, metavar="N",
                       help="explain the N most suspicious frames of the clip (default 1)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image
    from tqdm import tqdm

    from ..degrade import SpecError
    from ..images import ImageError
    from ..records import report_record
    from ..video import is_video_path

    if args.compound is not None and not (math.isfinite(args.compound) and 0 <= args.compound <= 1):
        return fail(f"--compound must be in [0, 1], got {args.compound}")
    try:
        if check_regular_input(args.image):
            return fail(f"{args.image} is a folder: explain takes one image or clip file")
    except UsageError as exc:
        return fail(str(exc))
    if problem := output_folder_problem(args.out):
        return fail(problem)
    detector = load_detector(args)
    if detector is None:
        return 2
    bar = tqdm(total=100, desc=f"explain ({args.cam})", file=sys.stderr, bar_format="{l_bar}{bar}| {postfix}")

    def progress(stage: str, fraction: float) -> None:
        bar.n = round(100 * fraction)
        bar.set_postfix_str(stage)
        bar.refresh()

    clip = is_video_path(args.image)
    try:
        if clip:
            report, video, pictures, figures = clip_explanation(detector, args, progress)
        else:
            report = detector.analyze(args.image, degradation=args.degrade, compound=args.compound, seed=args.seed,
                                      explain=args.cam, progress=progress)
    except (ImageError, SpecError) as exc:
        bar.close()
        return fail(str(exc))
    bar.close()
    out = Path(args.out)
    if clip:
        record = json.dumps(video, indent=2) + "\n"
    else:
        report = replace(report, vote_without_face=args.vote_without_face)
        pictures, figures = _image_outputs(report, Path(args.image).name)
        record = json.dumps(report_record(args.image, report), indent=2) + "\n"
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, img in pictures.items():
            save_atomically(out / name, lambda tmp, img=img: Image.fromarray(img).save(tmp, format="PNG"))
        for name, make in figures.items():
            save_atomically(out / name, lambda tmp, make=make: make().savefig(tmp, format="png", dpi=100))
        save_atomically(out / "report.json", lambda tmp: tmp.write_text(record))
    except OSError as exc:  # a full disk: each file is whole or absent, never cut
        return fail(write_problem(getattr(exc, "filename", None) or out, exc))
    untrained = " [UNTRAINED weights: meaningless]" if detector.untrained else ""
    p = "n/a" if report.prob_fake is None else f"{report.prob_fake:.1f}"
    what = f"clip P(fake) {p} ({report.verdict.word}), {len(report.frames)} frames" if clip else f"P(fake) {p} ({report.verdict.word})"
    say(f"{args.image}: {what}{untrained}; wrote {len(list(out.iterdir()))} files to {out}")
    explained = [(f"frame {i} at {report.frame(i).time_s:.2f} s", report.frame(i).report) for i in report.explained] if clip \
        else [("", report)]
    for where, frame in explained:
        if where:
            say(f"  {where}: P(fake) {frame.prob_fake:.1f}")
        for name, stream in frame.streams.items():
            fidelity = stream.cam.fidelity if stream.cam is not None else None
            if fidelity is not None:
                hint = "" if fidelity.level in ("high", "exact") else " -- rerun with --cam adaptive (or exact) where this map matters"
                say(f"{'    ' if where else '  '}{name}: {fidelity.summary()}{hint}")
    for note in (report.notes if clip else ()):
        say(f"  note: {note}")
    return 0


def _image_outputs(report, subject: str) -> tuple[dict, dict]:
    """An image's pictures (arrays) and figures (makers), by file name."""
    from .. import viz

    pictures = {"regions.png": viz.regions_picture(report)}
    pictures.update({f"cam_{name}.png": img for name, img in viz.stream_overlays(report).items()})
    figures = {"explanation.png": lambda: viz.explanation_figure(report),
               "entropy.png": lambda: viz.entropy_figure(report, subject=subject)}
    if report.cam_similarity is not None:
        figures["similarity.png"] = lambda: viz.similarity_figure(
            report.cam_similarity, title="Do the streams' Score-CAM maps look at the same places?", subject=subject)
    return pictures, figures
