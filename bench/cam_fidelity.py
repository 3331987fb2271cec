"""Fast vs exact Score-CAM over many models and images: fidelity, passes and time, side by side.

    python bench/cam_fidelity.py                       # default budget (about 3 minutes)
    python bench/cam_fidelity.py --groups 8 --exact 12 # another budget (tiny-random: 192 channels)

Cases (tiny-random architecture, 192 channels at the Score-CAM layer):
- random weights (seeds 0 and 3) on four scikit-image photos, texture and fusion streams: the
  hard case, where the exact softmax weights are nearly uniform and the map lives in small
  differences between channels;
- the texture stream trained on the planted-artifact toy set (seeds 0, 1, 2), four test fakes each.

For each case: Pearson correlation between the fast and the exact input-size maps, and both
methods' forward passes and seconds. The tests (tests/test_cam.py) check a subset of this.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine  # noqa: E402


def _cases():
    from skimage import data

    from forensic.model import ForensicModel
    from forensic.presets import get_preset
    from forensic.streams import prepare_input, to_tensor
    from tests.toy import toy_set, train_stream

    cfg = get_preset("tiny-random").config

    def x_of(image, stream):
        s = cfg.stream(stream)
        return to_tensor(prepare_input(image, s).pixels, s)

    photos = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(), "rocket": data.rocket()}
    for seed in (0, 3):
        model = ForensicModel.random(cfg, seed=seed).eval()
        for name, image in photos.items():
            for stream in ("texture", "fusion"):
                yield "random weights", f"seed {seed} {name} {stream}", model, stream, x_of(image, stream)
    for seed in (0, 1, 2):
        model = ForensicModel.random(cfg, seed=seed)
        images, labels = toy_set(48, seed=seed)
        train_stream(model, "texture", images, labels, steps=40)
        model.eval()
        test_images, test_labels = toy_set(10, seed=100 + seed)
        fakes = [im for im, y in zip(test_images, test_labels) if y == 1][:4]
        for i, image in enumerate(fakes):
            yield "trained on the toy set", f"seed {seed} fake {i}", model, "texture", x_of(image, "texture")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, help="fast Score-CAM groups (default: channels / 16)")
    parser.add_argument("--exact", type=int, dest="n_exact", help="channels scored exactly (default: channels / 24)")
    args = parser.parse_args()

    from forensic.explain.cam import stream_cam

    print(f"machine: {machine()}")
    rows: dict[str, list[tuple[float, int, int, float, float]]] = {}
    for kind, label, model, stream, x in _cases():
        exact = stream_cam(model, stream, x, method="exact")
        start = time.perf_counter()
        fast = stream_cam(model, stream, x, method="fast", n_groups=args.groups, n_exact=args.n_exact)
        fast_s = time.perf_counter() - start
        r = float(np.corrcoef(exact.input_map.ravel(), fast.input_map.ravel())[0, 1])
        rows.setdefault(kind, []).append((r, exact.forward_passes, fast.forward_passes, exact.seconds, fast_s))
        print(f"  {kind:24s} {label:28s} Pearson {r:.3f}", flush=True)
    print("| cases | n | Pearson mean | median | min | share >= 0.9 | passes exact / fast | seconds exact / fast |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, values in rows.items():
        r = np.array([v[0] for v in values])
        ep, fp = np.mean([v[1] for v in values]), np.mean([v[2] for v in values])
        es, fs = np.mean([v[3] for v in values]), np.mean([v[4] for v in values])
        print(
            f"| {kind} | {len(r)} | {r.mean():.3f} | {np.median(r):.3f} | {r.min():.3f} | {np.mean(r >= 0.9):.0%} "
            f"| {ep:.0f} / {fp:.0f} ({ep / fp:.1f}x) | {es:.2f} / {fs:.2f} ({es / fs:.1f}x) |"
        )


if __name__ == "__main__":
    main()
