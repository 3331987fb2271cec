"""Command line: ``python -m train --config FILE --data DIR_OR_CSV --out DIR [key=value ...]``.

The same command runs on one process or, under ``torchrun --nproc_per_node N``, on N (GPUs or CPU
slots); only rank 0 writes. ``python -m train merge OUT EXPORT...`` (or ``--merge``) combines
single-stream exports into one folder. ``python -m train distill --teacher REF --config FILE
--data DIR_OR_CSV --out DIR`` distils a teacher (e.g. the ``paper`` weights) into a student of
another preset (e.g. ``small``), from unlabelled images.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

__all__ = ["main", "build_parser", "build_merge_parser", "build_distill_parser"]

EPILOG = """\
overrides: dotted config keys with YAML values, e.g. optim.lr=1e-4 epochs=3 augment.global_p=0
           eval.degradations=[jpeg-q40,compound-0.5] data.pseudo_fakes=true
output folders: a fresh run refuses an --out that holds another run (pass --resume auto to continue it, or
           --overwrite to replace it); a resume refuses a checkpoint of another config or data. Images that
           cannot be decoded are listed in the log and left out (data.strict=true refuses instead).
examples:
  python -m train --config train/configs/small_texture.yaml --data data/ --out runs/small_texture
  torchrun --nproc_per_node 4 -m train --config train/configs/paper_texture.yaml --data data.csv --out runs/paper_texture
  python -m train merge runs/small_all runs/small_texture/export runs/small_face/export runs/small_fusion_phase2/export
"""


DISTILL_EPILOG = """\
overrides: as for python -m train, plus distill.* (distill.targets=clean, distill.views=8, distill.temperature=4,
           distill.protocol=[jpeg,compound], distill.cache=DIR to share the teacher's outputs between runs)
the teacher runs once per (image, view) before the first epoch; its outputs are cached in OUT/teacher_cache
           (safetensors), so later epochs, --resume auto and --overwrite runs do not run it again.
examples:
  python -m train distill --teacher-preset paper --config distill_small --data photos/ --out runs/small_from_paper
  torchrun --nproc_per_node 8 -m train distill --teacher hf-hub:owner/paper-detector --config distill_small --data photos.csv --out runs/d
  python -m train distill --teacher runs/paper_all --config distill_tiny --data photos/ --out runs/try epochs=1
"""


def _add_run_arguments(parser: argparse.ArgumentParser, *, data_help: str) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="YAML config (a path, or a name in train/configs, e.g. tiny)")
    parser.add_argument("--data", metavar="DIR_OR_CSV", help=data_help)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder: log.jsonl, checkpoints/, export/")
    parser.add_argument(
        "--resume", metavar="CKPT",
        help="continue from a checkpoint, or 'auto' for the latest in --out; it must come from the same config and data (checked)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="start a new run in an --out that holds an earlier one, deleting its log, checkpoints and export (the face cache stays)",
    )
    parser.add_argument("--push-to-hub", metavar="OWNER/REPO", help="upload the export to this Hugging Face model repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train one stream of the detector (LoRA + head on the frozen base) and export it in our weights format.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(parser, data_help="folder with real/ and fake/, or a CSV manifest path,label[,split]")
    return parser


def build_distill_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train distill",
        description=(
            "Distil a teacher (any weights folder, or the paper preset) into a student of the config's preset: every stream the "
            "teacher has, from unlabelled images, exported as one weights folder with temperatures fitted against the teacher."
        ),
        epilog=DISTILL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    teacher = parser.add_mutually_exclusive_group()
    teacher.add_argument("--teacher", metavar="REF", help="the teacher: a weights folder or hf-hub:owner/repo[@revision]")
    teacher.add_argument("--teacher-preset", metavar="PRESET", help="the teacher: a preset's published weights (paper)")
    _add_run_arguments(
        parser, data_help="images: a folder (any depth; real/ and fake/ give labels for reporting), or a CSV manifest path[,label][,split]"
    )
    return parser


def build_merge_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train merge",
        description="Combine single-stream exports (OUT/export of several runs) into one weights folder, checking they share their bases.",
    )
    parser.add_argument("out", metavar="OUT_DIR", help="the merged weights folder")
    parser.add_argument("exports", nargs="+", metavar="EXPORT_DIR", help="export folders, one per stream")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    parser.add_argument("--push-to-hub", metavar="OWNER/REPO", help="upload the merged folder to this Hub repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    return parser


def _setup_logging(verbose: bool) -> None:
    rank = int(os.environ.get("RANK", "0"))
    level = logging.DEBUG if verbose else (logging.INFO if rank == 0 else logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("train").setLevel(level)
    if verbose:
        logging.getLogger("forensic").setLevel(logging.DEBUG)


def _merge(argv: list[str]) -> int:
    from forensic.weights import push_to_hub

    from .export import MergeError, merge_exports

    args = build_merge_parser().parse_args(argv)
    _setup_logging(False)
    try:
        folder = merge_exports(args.out, args.exports, overwrite=args.overwrite)
    except (MergeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(folder)
    if args.push_to_hub:
        print(push_to_hub(folder, args.push_to_hub, private=args.private, commit_message="Upload merged forensic detector"))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        return _merge(argv[1:])
    if "--merge" in argv:
        argv.remove("--merge")
        return _merge(argv)
    if argv[:1] == ["distill"]:
        return _run(argv[1:], distill=True)
    return _run(argv, distill=False)


def _device_problem(cfg) -> str | None:
    """Why a device the config names cannot be used here (one line), before any model loads; else None."""
    from forensic.runtime import RuntimeConfigError, check_device

    named = {"device": cfg.device, "data.face_device": cfg.data.face_device}
    distill = getattr(cfg, "distill", None)
    if distill is not None:
        named["distill.teacher_device"] = distill.teacher_device
    for key, device in named.items():
        if device and device != "auto":
            try:
                check_device(str(device), name=f"{key}=")
            except RuntimeConfigError as exc:
                return str(exc)
    return None


def _run(argv: list[str], *, distill: bool) -> int:
    from forensic.data import DataError
    from forensic.weights import WeightsUnavailable

    from .checkpoint import CheckpointError
    from .config import ConfigError, DistillConfig, TrainConfig, load_config
    from .rundir import RunFolderError

    args = (build_distill_parser() if distill else build_parser()).parse_intermixed_args(argv)
    _setup_logging(args.verbose)
    extra: dict[str, object] = {}
    if distill and args.teacher:
        extra["distill.teacher"] = args.teacher
    if distill and args.teacher_preset:
        extra["distill.teacher_preset"] = args.teacher_preset
    if args.data:
        extra["data.path"] = args.data
    if args.resume:
        extra["resume"] = args.resume
    if args.push_to_hub:
        extra["export.push_to_hub"] = args.push_to_hub
    if args.private:
        extra["export.private"] = True
    if args.no_progress:
        extra["progress"] = False
    try:
        from .config import parse_overrides

        cfg = load_config(args.config, {**parse_overrides(args.overrides), **extra}, kind=DistillConfig if distill else TrainConfig)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    if (problem := _device_problem(cfg)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    if distill:
        from .distill import distill as run
    else:
        from .engine import fit as run

    try:
        result = run(cfg, out=args.out, overwrite=args.overwrite)
    except (WeightsUnavailable, ConfigError, DataError, RunFolderError, CheckpointError, FileNotFoundError) as exc:
        # one line; what to do is in the message of the error it is about (train.modeling.RunWeightsUnavailable)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0 and result.export_dir is not None:
        print(result.export_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
