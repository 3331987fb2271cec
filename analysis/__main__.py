"""Command line: ``python -m analysis {robustness,cam-drift,entropy,stability,complementarity,report} --data D --out O``.

Each study evaluates what its output folder does not hold yet (rerun the same command to resume),
then writes its CSV and figures; ``report`` runs all of them and writes ``OUT/report.html``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from forensic.options import add_model_args, runtime_from_args

__all__ = ["main", "build_parser"]

EPILOG = """\
examples:
  python -m analysis robustness --data data/ --out runs/analysis --weights runs/small_all --limit 200
  python -m analysis robustness --data data.csv --out runs/analysis --families jpeg,gnoise --levels q100,q40,q5,sigma0,sigma30,sigma60
  python -m analysis cam-drift --data data/ --out runs/analysis --cam-limit 20 --strengths 0,0.2,0.4,0.6,0.8,1
  python -m analysis report --data data/ --out runs/analysis --limit 500 --cam-limit 50

families: {families}
groups: protocol (the paper's five), df (DeeperForensics), all.
"""

#: the command that runs every study of the registry (analysis.studies.REGISTRY) and writes the HTML page
REPORT_HELP = "all of the above and one self-contained HTML page"


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _box(text: str) -> tuple[float, float, float, float]:
    values = _floats(text)
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"--box takes x0,y0,x1,y1 in image pixels, got {text!r}")
    return values  # type: ignore[return-value]


def _common(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data and output")
    data.add_argument("--data", required=True, metavar="DIR_OR_CSV", help="folder with real/ and fake/ (any depth), or a CSV manifest path,label[,split]")
    data.add_argument("--out", required=True, metavar="DIR", help="output folder; rerunning with the same folder resumes")
    data.add_argument("--limit", type=int, metavar="N", help="use N images, balanced real/fake (default: all)")
    data.add_argument("--seed", type=int, default=0, help="seed of the image order and the per-image degradations (default 0)")
    data.add_argument("--split", choices=("train", "val"), help="only this split of a manifest")
    data.add_argument("--fresh", action="store_true", help="delete the records in --out instead of resuming")
    model = add_model_args(parser, exclusive_weights=True)
    model.add_argument("--batch-size", type=int, default=8, help="images per batched stream pass (default 8)")
    model.add_argument("--no-face-retries", action="store_true", help="skip MTCNN's retries on enhanced copies (faster on images without faces)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _robustness_args(parser: argparse.ArgumentParser, *, flag: str = "--families") -> None:
    g = parser.add_argument_group("robustness")
    g.add_argument(flag, dest="families", type=_names, default=None, metavar="F,...", help="degradation families or groups (default: protocol,df)")
    g.add_argument("--levels", type=_names, default=None, metavar="L,...", help="keep only these level labels, e.g. q100,q20,q5,sigma0,0.0,1.0,3")


def _sweep_args(parser: argparse.ArgumentParser, *, flag: str = "--families") -> None:
    g = parser.add_argument_group("strength sweep")
    g.add_argument(flag, dest="sweep_families", type=_names, default=None, metavar="F,...", help="families swept over strength (default: compound)")
    g.add_argument("--strengths", type=_floats, default=None, metavar="S,...", help="strengths in [0, 1] (default: 0,0.1,...,1)")


def _cam_args(parser: argparse.ArgumentParser, *, allow_none: bool) -> None:
    g = parser.add_argument_group("Score-CAM")
    from forensic.explain.methods import method_names  # the registry names the valid methods and the default (first)

    names = method_names(allow_none=allow_none)
    g.add_argument("--cam", choices=names, default=names[0], help=f"Score-CAM method: {', '.join(names)} (default {names[0]})")
    g.add_argument("--cam-limit", type=int, metavar="N", help="Score-CAM on the first N images only (default: all)")
    g.add_argument("--cam-groups", type=int, metavar="K", help="channel groups of the fast Score-CAM (default: channels / 16)")
    g.add_argument("--box", type=_box, metavar="X0,Y0,X1,Y1", help="fixed reference box in image pixels for the box metrics (default: the clean image's face box)")
    g.add_argument("--figure-images", type=int, default=2, metavar="N", help="images in the overlay grid (default 2)")


def build_parser() -> argparse.ArgumentParser:
    import textwrap

    from .conditions import ROBUSTNESS_FAMILIES

    families = textwrap.fill(" ".join(ROBUSTNESS_FAMILIES), width=100, subsequent_indent="          ")
    epilog = EPILOG.format(families=families)
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Robustness and explainability studies of a detector on a labelled image set (resumable).",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="study", required=True, metavar="STUDY")
    from .studies import REGISTRY

    for study in REGISTRY.values():
        p = sub.add_parser(study.name, help=study.summary, description=study.summary + ".", epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(p)
        if "families" in study.options:
            _robustness_args(p)
        if "sweep" in study.options:
            _sweep_args(p)
        if "cam" in study.options:
            _cam_args(p, allow_none=not study.needs_cam)
    p = sub.add_parser("report", help=REPORT_HELP, description=REPORT_HELP + ".", epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    _robustness_args(p)
    _sweep_args(p, flag="--sweep-families")
    _cam_args(p, allow_none=True)
    return parser


def _options(args: argparse.Namespace):
    from .conditions import DEFAULT_ROBUSTNESS_FAMILIES, DEFAULT_SWEEP_FAMILIES, FAMILIES, SWEEP_STRENGTHS, resolve_families
    from .options import AnalysisOptions

    families = getattr(args, "families", None)
    sweep = getattr(args, "sweep_families", None)
    return AnalysisOptions(
        data=Path(args.data),
        out=Path(args.out),
        limit=args.limit,
        seed=args.seed,
        split=args.split,
        batch_size=args.batch_size,
        families=resolve_families(families) if families else DEFAULT_ROBUSTNESS_FAMILIES,
        levels=getattr(args, "levels", None),
        sweep_families=resolve_families(sweep, allowed=FAMILIES) if sweep else DEFAULT_SWEEP_FAMILIES,
        strengths=getattr(args, "strengths", None) or SWEEP_STRENGTHS,
        cam=getattr(args, "cam", "none"),
        cam_limit=getattr(args, "cam_limit", None),
        cam_groups=getattr(args, "cam_groups", None),
        box=getattr(args, "box", None),
        figure_images=getattr(args, "figure_images", 2),
        fresh=args.fresh,
    )


def _detector(args: argparse.Namespace):
    from forensic.faces import FaceDetector
    from forensic.pipeline import Detector

    detector = Detector.from_runtime(runtime_from_args(args))
    if args.no_face_retries:
        detector = Detector(detector.model, weights=detector.weights, runtime=detector.runtime,
                            face_detector=FaceDetector(device=str(detector.device), retries=False))
    return detector


def _progress(disabled: bool):
    from tqdm import tqdm

    def make(desc: str, total: int):
        return tqdm(total=total, desc=desc, unit="eval", file=sys.stderr, disable=disabled or total == 0, leave=False)

    return make


def main(argv: list[str] | None = None) -> int:
    """Runs one study (or the report); returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("analysis").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.verbose:
        logging.getLogger("forensic").setLevel(logging.DEBUG)

    from forensic.data import DataError
    from forensic.weights import WeightsUnavailable

    from .session import Analysis
    from .store import AnalysisError

    try:
        options = _options(args)
        analysis = Analysis(_detector(args), options, progress=_progress(args.no_progress))
        if args.study == "report":
            path, results = analysis.report()
            for r in results:
                print(f"{r.name}: {r.csv}")
            print(f"report: {path}")
        else:
            result = analysis.run(args.study)
            print(f"{result.name}: {result.csv}")
            for caption, fig in result.figures:
                print(f"  figure: {fig}  ({caption})")
            for note in result.notes:
                print(f"  {note}")
    except (DataError, AnalysisError, WeightsUnavailable, ValueError, KeyError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
