"""Command line: ``python -m forensic {predict,degrade,explain,convert-seed,presets} ...``.

Each subcommand lives in its own module under ``forensic._cli`` and exposes
``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> module implementing it (kept explicit: no discovery by string magic)
_COMMANDS = {
    "predict": "forensic._cli.predict",
    "degrade": "forensic._cli.degrade",
    "explain": "forensic._cli.explain",
    "convert-seed": "forensic._cli.convert",
    "presets": "forensic._cli.presets",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m forensic",
        description="Robust deepfake forensics: detect, degrade, explain.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in _COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a subcommand not built yet must not break the others
            if exc.name != module_name:
                raise
            continue
        module.add_parser(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
