"""CPU benchmark: load time, peak memory, analyze() per explanation mode, batch predict throughput.

    python bench/cpu.py                         # tiny-random and small (a few minutes)
    python bench/cpu.py --preset paper          # the paper's architecture (needs ~7 GB RAM; slow)
    python bench/cpu.py --exact                 # also exact Score-CAM (minutes for small)
    python bench/cpu.py --dtype float32 --dtype bfloat16   # both (bf16 is fast on CPUs with AMX)

Random weights are fine for timing: each preset's architecture is built with seeded random bases,
saved in our weights format to a temporary folder and loaded from there exactly as trained
weights would be (safetensors on the meta device, assign=True). Each preset runs in a fresh
process so that its peak RSS is its own. Times are medians of several runs on scikit-image's
astronaut (512x512).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def run_preset(preset: str, *, exact: bool, repeats: int, batch_images: int, dtype: str) -> dict:
    import numpy as np
    from skimage import data

    from _common import median_time, peak_rss_gb, random_config
    from forensic.model import ForensicModel
    from forensic import pipeline
    from forensic.pipeline import Detector
    from forensic.weights import load_model, save_pretrained

    import torch

    cfg = random_config(preset)
    row: dict = {"preset": f"{preset} ({dtype})"}
    with tempfile.TemporaryDirectory() as tmp:
        model = ForensicModel(cfg, device="meta").to_empty(device="cpu")
        model.init_random_(seed=0)
        save_pretrained(model, tmp, embed_bases=True)
        del model
        start = time.perf_counter()
        loaded = load_model(tmp, device="cpu", dtype=getattr(torch, dtype))
        row["load_s"] = time.perf_counter() - start
    detector = Detector(loaded, weights="random")
    image = data.astronaut()
    detector.analyze(image)  # warm-up: MTCNN, kernels
    row["analyze_none_s"] = median_time(lambda: detector.analyze(image), repeats=repeats, warmup=0)
    inputs = detector.analyze(image).streams
    row["streams_only_s"] = median_time(
        lambda: pipeline.forward(detector.model, [{n: s.input for n, s in inputs.items()}]).host(), repeats=repeats
    )
    row["faces_s"] = median_time(lambda: detector.face_detector.analyze(image), repeats=repeats)
    fast = detector.analyze(image, explain="fast")
    row["analyze_fast_s"] = median_time(lambda: detector.analyze(image, explain="fast"), repeats=max(1, repeats // 2), warmup=0)
    row["fast_passes_per_stream"] = {n: s.cam.forward_passes for n, s in fast.streams.items()}
    if exact:
        start = time.perf_counter()
        ex = detector.analyze(image, explain="exact")
        row["analyze_exact_s"] = time.perf_counter() - start
        row["exact_passes_per_stream"] = {n: s.cam.forward_passes for n, s in ex.streams.items()}
        row["fast_vs_exact_pearson"] = {
            n: float(np.corrcoef(ex.streams[n].cam.input_map.ravel(), fast.streams[n].cam.input_map.ravel())[0, 1]) for n in ex.streams
        }
    images = [np.ascontiguousarray(np.roll(image, 17 * i, axis=1)) for i in range(batch_images)]
    start = time.perf_counter()
    for _, result in detector.analyze_many(images, stability=False):
        assert not isinstance(result, Exception), result
    row["predict_images_per_s"] = batch_images / (time.perf_counter() - start)
    row["peak_rss_gb"] = peak_rss_gb()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="preset(s) (default: tiny-random, small)")
    parser.add_argument("--exact", action="store_true", help="also time exact Score-CAM (one pass per channel)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-images", type=int, default=8)
    parser.add_argument("--dtype", action="append", choices=["float32", "bfloat16"], help="weights dtype(s) (default: float32)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    presets = args.preset or ["tiny-random", "small"]
    if args.inner:
        print(json.dumps(run_preset(presets[0], exact=args.exact, repeats=args.repeats, batch_images=args.batch_images, dtype=args.dtype[0])))
        return
    from _common import machine, metric_table

    print(f"machine: {machine()}")
    rows = []
    for preset in presets:
        for dtype in args.dtype or ["float32"]:
            cmd = [sys.executable, __file__, "--inner", "--preset", preset, "--repeats", str(args.repeats),
                   "--batch-images", str(args.batch_images), "--dtype", dtype]
            if args.exact:
                cmd.append("--exact")
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    keys = ["load_s", "faces_s", "streams_only_s", "analyze_none_s", "analyze_fast_s", "analyze_exact_s", "predict_images_per_s",
            "peak_rss_gb", "fast_passes_per_stream", "exact_passes_per_stream", "fast_vs_exact_pearson"]
    print(metric_table(rows, keys))


if __name__ == "__main__":
    main()
