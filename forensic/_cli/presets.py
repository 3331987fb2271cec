"""``python -m forensic presets``: the presets, their backbones, inputs and weights."""

from __future__ import annotations

import argparse
import json

from ._common import say
from ..presets import PRESETS


def add_parser(subparsers, name: str) -> None:
    parser = subparsers.add_parser(name, help="list the model presets", description="List the model presets: backbones, input sizes and where their weights come from.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def _weights_text(preset) -> str:
    if preset.weights == "paper-seed":
        return "the authors' checkpoints (lpmkhoa/hcmusaqua-ntire26-weights), downloaded and converted once"
    if preset.weights:
        return preset.weights
    if preset.config.untrained:
        return "none: random, seeded (UNTRAINED)"
    return "none published: train with `python -m train`, pass --weights DIR"


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, preset in PRESETS.items():
        cfg = preset.config
        rows.append(
            {
                "preset": name,
                "dinov2": cfg.dinov2.arch + (f" {cfg.dinov2.overrides}" if cfg.dinov2.overrides else ""),
                "clip": (cfg.clip.arch + (" (tiny)" if cfg.clip.overrides else "")) if cfg.clip else None,
                "inputs": {s.name: f"{s.input} {s.size}px" + (f" (face resized to {s.face_size})" if s.face_size else "") for s in cfg.streams},
                "lora": cfg.lora.to_dict() if cfg.lora else None,
                "weights": _weights_text(preset),
                "hardware": preset.hardware,
            }
        )
    if args.json:
        say(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        say(f"{row['preset']}")
        say(f"  backbones: DINOv2 {row['dinov2']}; CLIP {row['clip']}")
        say("  inputs:    " + "; ".join(f"{k} {v}" for k, v in row["inputs"].items()))
        lora = row["lora"]
        say(f"  LoRA:      rank {lora['rank']}, alpha {lora['alpha']:g} on {', '.join(lora['targets'])}" if lora else "  LoRA:      none")
        say(f"  weights:   {row['weights']}")
        say(f"  for:       {row['hardware']}")
    return 0
