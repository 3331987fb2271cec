"""``python -m forensic degrade IN OUT (--spec SPEC | --compound STRENGTH) [--seed N]``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image

from ._common import fail, say, seed_arg, warn

# Saving: PIL picks the format from the extension; these are the ones we write losslessly or
# with a stated quality.
_JPEG_QUALITY = 95


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """Register the ``degrade`` subcommand."""
    from forensic.degrade import describe_ops

    parser = subparsers.add_parser(
        name,
        help="degrade an image by a spec, a preset or the paper's compound engine",
        description="Degrade IN and write OUT (format from the extension; JPEG at quality 95). "
        "Give a spec/preset (--spec) or a compound-engine strength (--compound). "
        "The same --seed gives the same bytes.",
        epilog=describe_ops(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", nargs="?", metavar="IN", help="image to degrade")
    parser.add_argument("output", nargs="?", metavar="OUT", help="result path (.png, .jpg, .webp, ...)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--spec", metavar="SPEC", help='e.g. "jpeg:quality=20;gblur:sigma=2" or a preset (ffpp-c40)')
    how.add_argument("--compound", metavar="STRENGTH", type=float, help="compound engine strength in [0, 1]")
    parser.add_argument("--seed", type=seed_arg, default=0, metavar="N", help="random seed, 0..2**32-1 (default 0)")
    parser.add_argument("--list", action="store_true", help="print every operation and preset, then exit")
    parser.set_defaults(run=run)
    return parser


def _fail(message: str, code: int = 2) -> int:
    return fail(message, code)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the exit code (2 for bad input, spec or output name)."""
    from forensic.degrade import SpecError, degrade_result, describe_ops, psnr
    from forensic.images import ImageError, load_image

    if args.list:
        say(describe_ops(full_presets=True))
        return 0
    if not args.input or not args.output:
        return _fail("give IN and OUT image paths (or --list)")
    if args.spec is None and args.compound is None:
        return _fail("give --spec SPEC or --compound STRENGTH (see --help for ops and presets)")
    if args.compound is not None and not (math.isfinite(args.compound) and 0.0 <= args.compound <= 1.0):
        return _fail(f"--compound must be in [0, 1], got {args.compound}")
    out_path = Path(args.output)
    ext = out_path.suffix.lower()
    if ext not in Image.registered_extensions():
        return _fail(f"cannot tell the format from {out_path.name!r}: use .png, .jpg, .webp, .bmp or .tif")
    try:
        image = load_image(args.input)
        result = degrade_result(image, args.spec, compound=args.compound, seed=args.seed)
    except (SpecError, ImageError) as exc:
        return _fail(str(exc))
    save_kwargs = {"quality": _JPEG_QUALITY} if Image.registered_extensions()[ext] == "JPEG" else {}
    try:
        Image.fromarray(result.image).save(out_path, **save_kwargs)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot write {out_path}: {exc}", code=1)
    steps = "; ".join(str(a) for a in result.applied) or "nothing (image unchanged)"
    quality = psnr(image, result.image)
    shown = "inf" if math.isinf(quality) else f"{quality:.2f}"
    summary = f"degrade: {len(result.applied)} ops [{steps}] -> {out_path} (PSNR {shown} dB vs input)"
    warn(summary)
    return 0
