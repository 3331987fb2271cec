"""Options and helpers shared by the model-running subcommands (predict, explain)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif", ".ppm", ".avif"}


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--preset", default=os.environ.get("FORENSIC_PRESET", "paper"), help="paper | small | tiny-random (default: paper)")
    group.add_argument("--weights", metavar="REF", default=os.environ.get("FORENSIC_WEIGHTS"), help="weights folder or hf-hub:owner/repo[@rev]")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    group.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default=None,
                       help="weights dtype (default: $FORENSIC_DTYPE or auto = bf16 on CUDA, float32 on CPU)")


def add_degrade_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("degradation (applied before analysis)")
    how = group.add_mutually_exclusive_group()
    how.add_argument("--degrade", metavar="SPEC", help='a spec or preset, e.g. "jpeg:quality=20;gblur:sigma=2" or ffpp-c40')
    how.add_argument("--compound", metavar="STRENGTH", type=float, help="the paper's compound engine at this strength in [0, 1]")
    group.add_argument("--seed", type=int, default=0, help="seed of the degradation (default 0)")


def say(text: str = "") -> None:
    """The CLI's results, on stdout (one place for every subcommand's output)."""
    sys.stdout.write(f"{text}\n")


def warn(text: str) -> None:
    """Notes and errors for the user, on stderr."""
    sys.stderr.write(f"{text}\n")


def fail(message: str, code: int = 2) -> int:
    warn(f"error: {message}")
    return code


def load_detector(args: argparse.Namespace):
    """The detector the options ask for, or None after printing why it cannot be had."""
    from ..pipeline import Detector
    from ..weights import WeightsUnavailable

    try:
        return Detector.from_preset(args.preset, weights=args.weights, device=args.device, dtype=args.dtype)
    except WeightsUnavailable as exc:
        warn(f"error: {exc}")
    except (KeyError, ValueError) as exc:
        warn(f"error: {exc.args[0] if exc.args else exc}")
    return None


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """Files as given, and the image files under folders (recursively, sorted by name)."""
    out: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            out.extend(sorted(found, key=lambda p: (p.name, str(p))))
        else:
            out.append(path)  # a missing or odd file is reported per file, not here
    return out
