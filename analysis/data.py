"""The labelled images a study runs on: the training data layouts, a balanced subset, stable keys.

The layouts are the ones ``python -m train`` reads (a folder with ``real/`` and ``fake/``, or a CSV
manifest ``path,label[,split]``), read by the same function, :func:`forensic.data.read_samples`.
Each image gets a *key* (its path relative to the data root, so an output folder survives moving
the data) and a *degradation seed* derived from the key and the run's seed, so a degraded copy does
not depend on which other images are in the run or in which order they are processed (resuming
must reproduce the same bytes).
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensic.data import DataError, read_samples

__all__ = ["AnalysisSample", "DataError", "load_samples", "select_samples", "image_seed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisSample:
    """One labelled image of a study.

    Attributes:
        path: the image file.
        key: its path relative to the data root (``/`` separators): the resume key.
        label: 0 = real, 1 = fake.
    """

    path: Path
    key: str
    label: int


def image_seed(key: str, seed: int) -> int:
    """The degradation seed of one image: fixed by its key and the run's seed (CRC-32, 31 bits)."""
    return zlib.crc32(f"{int(seed)}/{key}".encode()) & 0x7FFFFFFF


def select_samples(samples: Sequence[AnalysisSample], *, limit: int | None, seed: int) -> list[AnalysisSample]:
    """A balanced, seeded order: real and fake alternate, each class shuffled by ``seed``.

    ``limit`` keeps the first ``limit`` of that order, so a limited run is as balanced as the data
    allows and a larger limit later extends it (the first images stay the same: resume reuses them).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xA11A]))
    by_label: dict[int, list[AnalysisSample]] = {0: [], 1: []}
    for s in sorted(samples, key=lambda s: s.key):
        by_label[s.label].append(s)
    queues = [[group[i] for i in rng.permutation(len(group))] for group in (by_label[0], by_label[1])]
    ordered: list[AnalysisSample] = []
    for i in range(max(len(q) for q in queues)):
        ordered.extend(q[i] for q in queues if i < len(q))
    return ordered if limit is None else ordered[:limit]


def load_samples(
    source: str | os.PathLike, *, limit: int | None = None, seed: int = 0, split: str | None = None
) -> list[AnalysisSample]:
    """Reads a data folder or manifest (see :func:`forensic.data.read_samples`) into study samples.

    Args:
        source: a folder with ``real/`` and ``fake/`` (any depth) or a CSV manifest.
        limit: keep this many images, balanced between the classes (see :func:`select_samples`).
        seed: the seed of the balanced order.
        split: keep only a manifest's ``train`` or ``val`` rows (None: all rows).

    Raises:
        DataError: missing or malformed data, or nothing left after ``split``.
    """
    path = Path(source).expanduser()
    root = path if path.is_dir() else path.parent
    raw = read_samples(path)
    if split is not None:
        if raw and raw[0].split is None:
            raise DataError(f"--split {split} needs a manifest with a split column; {path} has none")
        raw = [s for s in raw if s.split == split]
        if not raw:
            raise DataError(f"{path} has no rows with split {split!r}")
    samples = [AnalysisSample(path=Path(s.path), key=_key(Path(s.path), root), label=int(s.label)) for s in raw]
    keys = [s.key for s in samples]
    if len(set(keys)) != len(keys):
        raise DataError(f"{path} lists the same image more than once; each image must appear once")
    chosen = select_samples(samples, limit=limit, seed=seed)
    n_fake = sum(s.label for s in chosen)
    log.info("data: %d images (%d real, %d fake) from %s", len(chosen), len(chosen) - n_fake, n_fake, path)
    return chosen


def _key(path: Path, root: Path) -> str:
    try:
        rel = os.path.relpath(path.resolve(), root.resolve())
    except ValueError:  # another drive on Windows: keep the absolute path
        rel = str(path.resolve())
    return Path(rel).as_posix()
