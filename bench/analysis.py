"""Timing of the analysis studies, and the README's example figure.

    python bench/analysis.py timing                   # small architecture, random weights (about 10 minutes on 2 CPUs)
    python bench/analysis.py timing --preset tiny-random
    python bench/analysis.py example-figure           # docs/robustness_example.png (trained toy model, a few minutes)

``timing`` runs the real studies (``analysis.Analysis``) on a few copies of scikit-image's astronaut
(512x512, one face) and extrapolates to 100 images with the default options: the time per
evaluation is measured, the number of evaluations per image is what the defaults ask for. The
numbers are therefore *extrapolated*, not measured on 100 images. Random weights time exactly like
trained ones (same architecture, built like ``bench/_common.random_config``).

``example-figure`` trains the texture and fusion streams of a tiny model on the planted-artifact toy set (a +-16
one-pixel checkerboard, which JPEG removes from quality 20 on) and plots its robustness curves.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))


def _astronaut_folder(folder: Path, n: int) -> Path:
    import cv2
    import numpy as np
    from skimage import data

    base = np.ascontiguousarray(data.astronaut())
    for sub in ("real", "fake"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = base[:, ::-1] if i % 2 else base  # flipped copies: different pixels, same face size
        img = np.roll(img, 8 * (i // 2), axis=0)
        cv2.imwrite(str(folder / ("fake" if i % 2 else "real") / f"astronaut_{i}.png"), np.ascontiguousarray(img[..., ::-1]))
    return folder


def timing(args: argparse.Namespace) -> None:
    from _common import machine, random_config
    from analysis import Analysis, AnalysisOptions
    from analysis.conditions import DEFAULT_ROBUSTNESS_FAMILIES, DEFAULT_SWEEP_FAMILIES, SWEEP_STRENGTHS, robustness_conditions, sweep_conditions
    from forensic.pipeline import Detector
    from forensic.presets import get_preset
    from forensic.weights import build_model

    cfg = random_config(args.preset) if args.preset != "tiny-random" else get_preset("tiny-random").config
    detector = Detector(build_model(cfg, device="cpu"))
    print(f"# analysis timing: preset {args.preset} (random weights), {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = _astronaut_folder(Path(tmp) / "data", args.images)
        out = Path(tmp) / "out"

        # batched stream passes: a sample of the default robustness conditions (every family)
        rob = robustness_conditions(DEFAULT_ROBUSTNESS_FAMILIES)
        families = sorted({c.family for c in rob})
        sample_levels = tuple(sorted({c.level for c in rob if c.level in ("q40", "sigma30", "0.6", "3")}))
        opts = AnalysisOptions(data=data, out=out, families=tuple(families), levels=sample_levels, cam="fast", batch_size=args.batch_size)
        analysis = Analysis(detector, opts)
        start = time.perf_counter()
        result = analysis.robustness()
        passes = sum(r.computed for r in result.runs)
        per_pass = (time.perf_counter() - start) / passes

        # Score-CAM: fast method, clean + strongest compound on --cam-images images
        cam_opts = AnalysisOptions(data=data, out=out, strengths=(0.0, 1.0), cam="fast", cam_limit=args.cam_images, figure_images=0)
        analysis = Analysis(detector, cam_opts)
        start = time.perf_counter()
        result = analysis.cam_drift()
        cams = sum(r.computed for r in result.runs)
        per_cam = (time.perf_counter() - start) / cams

    n_rob = len({c.spec for c in rob} | {"none"})
    sweep = sweep_conditions(DEFAULT_SWEEP_FAMILIES, SWEEP_STRENGTHS)
    n_sweep = len({c.spec for c in sweep})
    n_report_passes = len({c.spec for c in rob} | {c.spec for c in sweep})
    rows = [
        ("robustness", f"{n_rob} passes", n_rob * per_pass),
        ("stability", f"{n_sweep} passes", n_sweep * per_pass),
        ("entropy (attention only, --cam none)", f"{n_sweep} passes", n_sweep * per_pass),
        ("entropy (with Score-CAM)", f"{n_sweep} passes + {n_sweep} CAMs", n_sweep * (per_pass + per_cam)),
        ("cam-drift", f"{n_sweep} CAMs", n_sweep * per_cam),
        ("complementarity", "1 pass + 1 CAM", per_pass + per_cam),
        ("report (all, shared records)", f"{n_report_passes} passes + {n_sweep} CAMs", n_report_passes * per_pass + n_sweep * per_cam),
    ]
    print(f"measured: {per_pass:.2f} s per image per stream pass (batch {args.batch_size}, with face detection and degradation; "
          f"{passes} passes on {args.images} images), {per_cam:.1f} s per image per fast Score-CAM analysis ({cams} analyses)")
    print("| study (default options) | evaluations per image | extrapolated time per 100 images |")
    print("|---|---|---|")
    for name, what, seconds in rows:
        print(f"| {name} | {what} | {_duration(100 * seconds)} |")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def example_figure(args: argparse.Namespace) -> None:
    from analysis import figures
    from analysis import Analysis, AnalysisOptions
    from forensic.model import ForensicModel
    from forensic.pipeline import Detector
    from forensic.presets import get_preset
    from forensic.toy import NoFaceDetector as NoFaces
    from forensic.toy import toy_set as planted_images
    from forensic.toy import train_stream, write_toy_folder

    model = ForensicModel.random(get_preset("tiny-random").config, seed=0)
    images, labels = planted_images(160, seed=0, amplitude=16.0)
    for stream in ("texture", "fusion"):  # the face stream needs faces; on these textures it stays untrained
        losses = train_stream(model, stream, images, labels, steps=args.steps)
        print(f"trained {stream}: last losses {[round(v, 3) for v in losses[-3:]]}")
    detector = Detector(model, face_detector=NoFaces())
    with tempfile.TemporaryDirectory() as tmp:
        data = write_toy_folder(Path(tmp) / "data", args.images, seed=1, amplitude=16.0)
        options = AnalysisOptions(data=data, out=Path(tmp) / "out", families=("jpeg", "gnoise", "gblur", "compound"))
        result = Analysis(detector, options).robustness()
        rows = result.rows
    fig = figures.metric_figure(rows, "auc", streams=detector.config.stream_names)
    fig.suptitle(
        f"ROC AUC of a tiny model trained on a planted-artifact toy set ({args.images} test images; face stream untrained: no faces)",
        fontsize=11,
    )
    path = figures.save_figure(fig, args.out)
    for r in rows:
        if r["stream"] in ("texture", "vote") and r["family"] == "jpeg":
            print(f"{r['family']} {r['level']} {r['stream']}: AUC {r['auc']:.3f}")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("timing", help="time the studies and extrapolate to 100 images")
    t.add_argument("--preset", default="small", help="architecture (random weights), default small")
    t.add_argument("--images", type=int, default=4, help="images for the pass timing (default 4)")
    t.add_argument("--cam-images", type=int, default=1, help="images for the Score-CAM timing (default 1)")
    t.add_argument("--batch-size", type=int, default=8)
    e = sub.add_parser("example-figure", help="the README's robustness figure from a trained toy model")
    e.add_argument("--out", default=str(ROOT / "docs" / "robustness_example.png"))
    e.add_argument("--images", type=int, default=48)
    e.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    {"timing": timing, "example-figure": example_figure}[args.command](args)


if __name__ == "__main__":
    main()
