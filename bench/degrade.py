"""Time every degradation op and the compound engine on one core.

    python bench/degrade.py [--size 1024] [--repeats 7] [--seeds 30]

Prints the machine, then a table: median time per op on a SIZExSIZE photo (ops with a strength
run at 0.8, others at their defaults), and the compound engine at strengths 0.2/0.5/0.8/1.0 over
many seeds (its cost depends on which ops the seed draws: median, 90th percentile and max).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import cv2
import numpy as np

from forensic.degrade import OPS, compound_degrade
from forensic.degrade.ops import as_float


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _photo(size: int) -> np.ndarray:
    from PIL import Image

    try:  # a real photo if scikit-image is installed (dev requirements), else a synthetic one
        from skimage import data

        base = data.astronaut()
    except ImportError:
        rng = np.random.default_rng(0)
        base = cv2.GaussianBlur((rng.random((512, 512, 3)) * 255).astype(np.uint8), (0, 0), 3)
    return np.asarray(Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC))


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (first-call allocations, lazy tables)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args()

    cv2.setNumThreads(1)  # one core, as on a small CPU host
    print(f"machine: {_cpu_name()}, {os.cpu_count()} logical CPUs; benchmark uses 1 thread")
    print(f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}")
    img = _photo(args.size)
    x = as_float(img)
    print(f"image: {args.size}x{args.size} RGB, median of {args.repeats} runs\n")

    print(f"{'operation':<24}{'params (seed 0)':<42}{'ms':>9}")
    print("-" * 75)
    for name, op in OPS.items():
        params = {"strength": 0.8} if op.has_strength else {}
        ms = _median_ms(lambda op=op, params=params: op(x, rng=np.random.default_rng(0), **params), args.repeats)
        _, resolved = op.apply(x, rng=np.random.default_rng(0), params=params)
        choices = [f"{p.name}={resolved[p.name]}" for p in op.params if p.choices and p.name in resolved]
        label = ",".join((["strength=0.8"] if params else []) + choices) or "defaults"
        print(f"{name:<24}{label:<42}{ms:>9.1f}")

    print(f"\ncompound engine on uint8 {args.size}x{args.size}, {args.seeds} seeds (includes uint8<->float)")
    print(f"{'strength':<10}{'median ms':>11}{'p90 ms':>10}{'max ms':>10}{'ops/image':>11}")
    print("-" * 52)
    for strength in (0.2, 0.5, 0.8, 1.0):
        times, counts = [], []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            result = compound_degrade(img, strength=strength, rng=np.random.default_rng(seed))
            times.append(1000 * (time.perf_counter() - t0))
            counts.append(len(result.applied))
        p90 = float(np.percentile(times, 90))
        print(f"{strength:<10}{statistics.median(times):>11.1f}{p90:>10.1f}{max(times):>10.1f}{np.mean(counts):>11.2f}")


if __name__ == "__main__":
    main()
