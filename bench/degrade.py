"""Time every degradation op and the compound engine on one core.

    python bench/degrade.py [--size 1024] [--repeats 7] [--seeds 30]
    python bench/degrade.py --references [--repeats 7]

Prints the machine, then a table: median time per op on a SIZExSIZE photo (ops with a strength
run at 0.8, others at their defaults), and the compound engine at strengths 0.2/0.5/0.8/1.0 over
many seeds (its cost depends on which ops the seed draws: median, 90th percentile and max).

``--references`` prints instead what the reference-named operations cost and how close they are:
``h264`` next to ``jpeg`` at 512 and 1024 px; the JPEG stand-in the lab used before real H.264
(quality round(98 - 4.3 (CRF - 20)), the deleted ``h264-approx``) against libx264 over five
scikit-image photos at CRF 23/30/35/40 (PSNR and SSIM to the original and to each other); and
``df-noise``'s standard deviation per level on flat grey, against the DeeperForensics-1.0 formula.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import math

import cv2
import numpy as np

from forensic.codecs import h264_roundtrip
from forensic.degrade import OPS, compound_degrade, psnr, ssim
from forensic.degrade.ops import DF_LEVELS, as_float, as_uint8
from forensic.degrade.ops.compression import jpeg_roundtrip


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
    parser.add_argument("--references", action="store_true", help="h264 cost and fidelity, df-noise std")
    args = parser.parse_args()

    cv2.setNumThreads(1)  # one core, as on a small CPU host
    print(f"machine: {_cpu_name()}, {os.cpu_count()} logical CPUs; benchmark uses 1 thread")
    print(f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}")
    if args.references:
        _references(args.repeats)
        return
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


def _former_jpeg_quality(crf: int) -> int:
    """The quality the deleted ``h264-approx`` used for a CRF (linear, anchored at 23 -> 85, 40 -> 12)."""
    return int(np.clip(round(98.0 - 4.3 * (crf - 20.0)), 5, 95))


def _references(repeats: int) -> None:
    import av
    from skimage import data

    print(f"PyAV {av.__version__}, libx264 through FFmpeg {av.ffmpeg_version_info}\n")
    print(f"{'operation':<24}{'512 px ms':>11}{'1024 px ms':>12}")
    print("-" * 47)
    for label, fn in (
        ("h264:crf=23", lambda u: h264_roundtrip(u, 23)),
        ("h264:crf=40", lambda u: h264_roundtrip(u, 40)),
        ("jpeg:quality=85", lambda u: jpeg_roundtrip(as_float(u), 85)),
        ("jpeg:quality=12", lambda u: jpeg_roundtrip(as_float(u), 12)),
    ):
        ms = [_median_ms(lambda fn=fn, u=_photo(size): fn(u), repeats) for size in (512, 1024)]
        print(f"{label:<24}{ms[0]:>11.1f}{ms[1]:>12.1f}")

    photos = {name: getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")}
    photos = {n: np.stack([v] * 3, axis=-1) if v.ndim == 2 else v for n, v in photos.items()}
    print("\nJPEG stand-in vs libx264 (intra frame), mean [min..max] over the five photos")
    print(f"{'CRF':<5}{'q':>4}{'x264 dB':>21}{'JPEG dB':>21}{'x264 SSIM':>11}{'JPEG SSIM':>11}{'JPEG vs x264':>20}")
    for crf in (23, 30, 35, 40):
        quality = _former_jpeg_quality(crf)
        rows = []
        for img in photos.values():
            real, stand_in = h264_roundtrip(img, crf), as_uint8(jpeg_roundtrip(as_float(img), quality))
            rows.append((psnr(img, real), psnr(img, stand_in), ssim(img, real), ssim(img, stand_in),
                         psnr(real, stand_in), ssim(real, stand_in)))
        r = np.asarray(rows)
        cell = [f"{m:.2f} [{lo:.1f}..{hi:.1f}]" if i < 2 else f"{m:.3f}" for i, (m, lo, hi) in
                enumerate(zip(r.mean(0), r.min(0), r.max(0)))]
        print(f"{crf:<5}{quality:>4}{cell[0]:>21}{cell[1]:>21}{cell[2]:>11}{cell[3]:>11}"
              f"{f'{r[:, 4].mean():.2f} dB / {r[:, 5].mean():.3f}':>20}")

    flat = np.full((512, 512, 3), 128, dtype=np.uint8)
    print("\ndf-noise on flat grey 128, 512x512: std in grey levels, ours vs the formula (before clipping)")
    print(f"{'level':<7}{'variance':>9}{'Y ours':>9}{'Y formula':>11}{'Cr ours':>9}{'Cb ours':>9}{'C formula':>11}")
    for level, v in enumerate(DF_LEVELS["noise"], start=1):
        out = OPS["df-noise"](as_float(flat), rng=np.random.default_rng(level), level=level) * np.float32(255.0)
        ycc = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb).reshape(-1, 3).std(axis=0)
        s_y, s_c = math.sqrt(v) * 255 * 255 / 219, math.sqrt(v) * 255 * 255 / 224
        print(f"{level:<7}{v:>9g}{ycc[0]:>9.2f}{s_y:>11.2f}{ycc[1]:>9.2f}{ycc[2]:>9.2f}{s_c:>11.2f}")


if __name__ == "__main__":
    main()
