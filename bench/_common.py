"""Helpers shared by the benchmark scripts (not a test module)."""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import torch

from forensic.config import ModelConfig
from forensic.presets import get_preset


def random_config(preset: str) -> ModelConfig:
    """The preset's architecture with seeded random bases (nothing to download)."""
    cfg = get_preset(preset).config
    dinov2 = dataclasses.replace(cfg.dinov2, hub_id=None, filename=None, revision=None, init_seed=0)
    clip = dataclasses.replace(cfg.clip, hub_id=None, filename=None, revision=None, init_seed=1)
    return cfg.replace(dinov2=dinov2, clip=clip, untrained=True)


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def median_time(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}; {os.cpu_count()} CPUs; torch {torch.__version__} ({torch.get_num_threads()} threads); {gpu}"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    if isinstance(v, dict):
        return " ".join(f"{k}:{_fmt(x)}" for k, x in v.items())
    return str(v)


def metric_table(rows: list[dict], keys: list[str]) -> str:
    """A Markdown table: one row per metric in ``keys`` (those any row has), one column per ``row["preset"]``."""
    lines = ["| metric | " + " | ".join(r["preset"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    lines += [f"| {key} | " + " | ".join(_fmt(r.get(key, "-")) for r in rows) + " |" for key in keys if any(key in r for r in rows)]
    return "\n".join(lines)
