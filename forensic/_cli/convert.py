"""``python -m forensic convert-seed CKPT --stream S --out DIR``: the authors' checkpoints -> our format."""

from __future__ import annotations

import argparse

from ._common import say, warn
from ..convert import ConversionError, convert_seed
from ..presets import get_preset


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help="convert one of the authors' .pth checkpoints into a weights folder",
        description=(
            "Convert an authors' checkpoint (dinov2_252.pth = texture, dinov2_252_crop.pth = face, "
            "dinov2_clip.pth = fusion) into our weights format. Convert the three into the same --out "
            "folder to get the three-stream model; load it with --weights DIR."
        ),
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="the .pth file")
    parser.add_argument("--stream", required=True, choices=["texture", "face", "fusion"])
    parser.add_argument("--out", required=True, metavar="DIR", help="weights folder to create or add to")
    parser.add_argument("--preset", default="paper", help="architecture of the checkpoint (default: paper)")
    parser.add_argument(
        "--base",
        choices=["reference", "embed"],
        default="reference",
        help="reference the public base backbones (checked against them when reachable) or embed the checkpoint's own base",
    )
    parser.add_argument("--lora-scaling", type=float, default=2.0, help="LoRA alpha / rank (the paper: 64/32 = 2.0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..weights import WeightsUnavailable

    try:
        config = get_preset(args.preset).config
        report = convert_seed(
            args.checkpoint, stream=args.stream, out=args.out, config=config, base=args.base, lora_scaling=args.lora_scaling
        )
    except (ConversionError, WeightsUnavailable, KeyError, FileNotFoundError) as exc:
        warn(f"error: {exc}")
        return 2
    diffs = ", ".join(f"{k} max|diff| {'not checked' if v is None else f'{v:.2e}'}" for k, v in report.base_max_abs_diff.items())
    say(f"converted {args.checkpoint} -> {report.folder} ({report.stream}; {report.layout}; LoRA rank {report.lora_rank}; base {report.base}; {diffs})")
    for note in report.notes:
        warn(f"note: {note}")
    return 0
