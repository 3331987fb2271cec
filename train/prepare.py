"""A run's data: read, scan once for unreadable files, split, and build the stream datasets.

:func:`scan_split` reads and scans (cached in the face cache) and splits; :func:`prepare_split`
also checks both classes are there; :func:`build_datasets` makes the training set and one
validation set per condition (``clean`` and each ``eval.degradations`` spec) and fills the face
cache. Shared by training one stream (:mod:`train.stream`) and distillation (:mod:`train.distill`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensic.data import DataError, read_samples

from .config import TrainConfig
from .data import BadFile, scan_samples
from .datasets import StreamDataset
from .distributed import DistInfo
from .face_cache import FaceCache, ensure_faces
from .samples import DataSplit, expand_items, split_samples
from .views import CLEAN, AugmentedViews, FixedViews

__all__ = ["SplitData", "RunData", "scan_split", "prepare_split", "face_detector_factory", "build_datasets", "prepare_data", "skipped_files"]

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """A run's samples after the readability scan, split, with the face cache they share.

    Attributes:
        split: the training and validation samples (readable files only).
        skipped: the unreadable files left out.
        cache: face analyses and readability verdicts.
    """

    split: DataSplit
    skipped: tuple[BadFile, ...]
    cache: FaceCache


@dataclass
class RunData:
    """The datasets of a run (``skipped``: the unreadable files left out)."""

    split: DataSplit
    train: StreamDataset
    val: dict[str, StreamDataset]
    skipped: tuple[BadFile, ...] = ()


def scan_split(cfg: TrainConfig, *, out: Path, info: DistInfo, labels: str = "required") -> SplitData:
    """Reads the data, scans every file once (cached), leaves out (or refuses) unreadable ones, splits.

    ``labels="optional"`` (distillation) also reads unlabelled folders and manifests.

    Raises:
        DataError: no data, or unreadable files with ``data.strict``.
    """
    if not cfg.data.path:
        raise DataError("no training data: pass --data DIR_OR_CSV (or set data.path)")
    cache = FaceCache(Path(cfg.data.face_cache) if cfg.data.face_cache else out / "face_cache.json")
    samples = read_samples(cfg.data.path, labels=labels)
    scan = scan_samples(samples, cache, info=info, threads=cfg.data.num_workers, progress=cfg.progress)
    if scan.decoded:
        log.info("scanned %d image(s) (cached in %s)", scan.decoded, cache.path)
    if scan.bad:
        first = scan.bad[0]
        if cfg.data.strict:
            raise DataError(
                f"{len(scan.bad)} of {len(samples)} image(s) cannot be read, e.g. {first.path} ({first.reason}): "
                "fix or remove them, or set data.strict=false to leave them out"
            )
        shown = "; ".join(f"{b.path} ({b.reason})" for b in scan.bad[:3])
        more = f"; and {len(scan.bad) - 3} more (all in log.jsonl)" if len(scan.bad) > 3 else ""
        log.warning("skipping %d of %d image(s) that cannot be read: %s%s", len(scan.bad), len(samples), shown, more)
    split = split_samples(scan.readable, val_fraction=cfg.data.val_fraction, seed=cfg.seed)
    return SplitData(split=split, skipped=scan.bad, cache=cache)


def prepare_split(cfg: TrainConfig, *, out: Path, info: DistInfo) -> SplitData:
    """:func:`scan_split` of labelled data, checking that the training split has both classes.

    Raises:
        DataError: no data, unreadable files with ``data.strict``, or a class missing.
    """
    data = scan_split(cfg, out=out, info=info)
    split = data.split
    if cfg.data.pseudo_fakes and not any(s.label == 0 for s in split.train):
        raise DataError("data.pseudo_fakes needs real images in the training split")
    counts = split.counts()
    if not cfg.data.pseudo_fakes and (counts["train"]["real"] == 0 or counts["train"]["fake"] == 0):
        raise DataError(
            f"the training split has {counts['train']['real']} real and {counts['train']['fake']} fake images: "
            "both classes are needed (or set data.pseudo_fakes=true to make fakes from real photos)"
        )
    return data


def face_detector_factory(cfg: TrainConfig, info: DistInfo) -> Callable[[], Any]:
    """Makes the MTCNN face detector on ``data.face_device`` (``auto``: the training device), when first needed."""

    def detector():
        from forensic.faces import FaceDetector

        device = str(info.device) if cfg.data.face_device == "auto" else cfg.data.face_device
        return FaceDetector(device=device)

    return detector


def build_datasets(
    cfg: TrainConfig, data: SplitData, stream_config, *, info: DistInfo, detect_faces: bool = True
) -> RunData:
    """The training and validation datasets of a split; fills the face cache."""
    split = data.split
    train_items = expand_items(split.train, pseudo_fakes=cfg.data.pseudo_fakes)
    val_items = expand_items(split.val, pseudo_fakes=cfg.data.pseudo_fakes)
    train = StreamDataset(train_items, stream_config, views=AugmentedViews(cfg.seed, cfg.augment))
    val: dict[str, StreamDataset] = {}
    if val_items:
        for name, spec in {CLEAN: None, **{spec: spec for spec in cfg.eval.degradations}}.items():
            val[name] = StreamDataset(val_items, stream_config, views=FixedViews(cfg.eval.seed, spec))
    if detect_faces:
        ran = ensure_faces(
            [train, *val.values()], data.cache, info=info, detector_factory=face_detector_factory(cfg, info), progress=cfg.progress
        )
        if ran:
            log.info("detected faces on %d images (cached in %s)", ran, data.cache.path)
    return RunData(split=split, train=train, val=val, skipped=data.skipped)


def prepare_data(cfg: TrainConfig, stream_config, *, out: Path, info: DistInfo, detect_faces: bool = True) -> RunData:
    """Reads, scans and splits the data, builds the training and validation datasets, fills the face cache."""
    return build_datasets(cfg, prepare_split(cfg, out=out, info=info), stream_config, info=info, detect_faces=detect_faces)


def skipped_files(bad: Sequence[BadFile]) -> list[dict[str, str]]:
    """The unreadable files left out, as the ``start`` record lists them."""
    return [{"path": str(b.path), "reason": b.reason} for b in bad]
