"""The clip side of ``python -m forensic predict``: its options, and one clip's record with a frame progress bar.

A clip (``.mp4 .mov .webm .mkv .avi .m4v``) goes through :meth:`forensic.pipeline.Detector.analyze_video`:
frames sampled at ``--fps`` (default 1 per second), at most ``--max-frames`` (default 64, then
spread over the whole clip), the clip's verdict by the clip rule (:mod:`forensic.video.summary`).
The record is :func:`forensic.records.video_record`; a clip that cannot be read is an error
record, and the batch goes on.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from ._common import method_arg, whole_number

#: libx264's CRF range
MAX_CRF = 51
_PROGRESS = re.compile(r"^(faces|frames) (\d+)/(\d+)")


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of frames per second, got {text[:40]!r}")
    return value


def add_sampling_args(group) -> None:
    """``--fps``, ``--max-frames`` and ``--crf``: how a clip is sampled and re-encoded (``predict`` and ``explain``)."""
    group.add_argument("--fps", type=_fps, default=1.0, metavar="F",
                       help="frames sampled per second of clip (default 1)")
    group.add_argument("--max-frames", type=whole_number(1), default=64, metavar="N",
                       help="at most N frames per clip, spread evenly over the whole clip when --fps would give "
                            "more (default 64)")
    group.add_argument("--crf", type=whole_number(0, MAX_CRF), metavar="N",
                       help="re-encode each clip first with H.264 (libx264) at this CRF, as the references do: "
                            "FaceForensics++ c23 = 23, c40 = 40; DeeperForensics-1.0: 30, 32, 35, 38, 40")


def add_video_args(parser: argparse.ArgumentParser) -> None:
    """``--fps``, ``--max-frames``, ``--crf``, ``--explain`` and ``--explain-frames`` (clips only)."""
    group = parser.add_argument_group(
        "clips (mp4, mov, webm, mkv, avi, m4v)",
        "Each clip is sampled, every sampled frame analysed as an image (the degradation options\n"
        "apply to every frame), and the clip's P(fake) is the median of its frames' P(fake) over the\n"
        "frames that show the main face, on the vote's 0.1 grid. Images ignore these options.",
    )
    add_sampling_args(group)
    group.add_argument("--explain", type=method_arg(allow_none=True), default="none", metavar="METHOD",
                       help="explain each clip's most suspicious frames with this method (fast, adaptive, exact; "
                            "default none: no explanation). Their frame records carry the method, its passes and "
                            "fidelity; for the pictures use 'python -m forensic explain CLIP --out DIR' or the app")
    group.add_argument("--explain-frames", type=whole_number(0), default=1, metavar="N",
                       help="with --explain: how many of the most suspicious frames of each clip (default 1)")


def video_paths(paths: list[Path]) -> set[Path]:
    """The paths that name clips (by suffix)."""
    from ..video import is_video_path

    return {p for p in paths if is_video_path(p)}


def clip_record(detector: Any, path: Path, args: argparse.Namespace, *, progress: bool = True) -> dict[str, Any]:
    """One clip's JSON record (:func:`forensic.records.video_record`), with a tqdm bar in frames on
    stderr; any failure of the clip is its error record. Ctrl-C is not caught."""
    from tqdm import tqdm

    from ..records import video_record

    bar = tqdm(total=None, desc=f"{path.name} frames", unit="frame", file=sys.stderr,
               disable=not progress, leave=False)

    def report(text: str, fraction: float) -> None:
        match = _PROGRESS.match(text)
        if match is None:
            return
        stage, done, total = match.group(1), int(match.group(2)), int(match.group(3))
        bar.set_description_str(f"{path.name} {stage}", refresh=False)
        if bar.total != total:
            bar.reset(total=total)
        bar.n = done
        bar.refresh()

    try:
        outcome = detector.analyze_video(
            path, fps=args.fps, max_frames=args.max_frames, degradation=args.degrade, compound=args.compound,
            crf=args.crf, seed=args.seed, batch_size=args.batch_size, explain=args.explain,
            explain_frames=args.explain_frames, vote_without_face=args.vote_without_face, progress=report,
        )
    except Exception as exc:  # one bad clip never stops the batch
        outcome = exc
    finally:
        bar.close()
    return video_record(path, outcome, preset=detector.preset, untrained=detector.untrained)


def clip_explanation(detector: Any, args: argparse.Namespace, progress) -> tuple[Any, dict, dict, dict]:
    """``explain CLIP``: the clip analysed with ``args.cam`` on its ``--explain-frames`` most suspicious frames,
    and what to write: ``(report, record, pictures, figures)``; pictures (arrays) and figures (makers) by file
    name: ``timeline.png``, ``frame<i>_regions.png``, ``frame<i>_cam_<stream>.png``, ``frame<i>_explanation.png``.

    Raises:
        forensic.images.ImageError: the clip cannot be read (a VideoError).
        forensic.degrade.SpecError: the degradation spec is invalid.
    """
    from .. import viz
    from ..records import video_record

    report = detector.analyze_video(
        args.image, fps=args.fps, max_frames=args.max_frames, degradation=args.degrade, compound=args.compound,
        crf=args.crf, seed=args.seed, explain=args.cam, explain_frames=args.explain_frames,
        vote_without_face=args.vote_without_face, progress=progress)
    record = video_record(args.image, report, preset=detector.preset, untrained=detector.untrained)
    pictures: dict[str, Any] = {}
    figures: dict[str, Any] = {"timeline.png": lambda: viz.timeline_figure(record, threshold=detector.config.vote.threshold)}
    for index in report.explained:
        frame = report.frame(index).report
        stem = f"frame{index:03d}"
        pictures[f"{stem}_regions.png"] = viz.regions_picture(frame)
        pictures.update({f"{stem}_cam_{name}.png": img for name, img in viz.stream_overlays(frame).items()})
        figures[f"{stem}_explanation.png"] = lambda frame=frame: viz.explanation_figure(frame)
    return report, record, pictures, figures
