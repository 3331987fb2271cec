"""Training samples: the train/val split, the dataset entries (with pseudo-fakes) and per-sample seeds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from forensic.data import DataError, Sample

__all__ = ["Item", "DataSplit", "split_samples", "expand_items", "sample_rng"]


@dataclass(frozen=True)
class Item:
    """One dataset entry: a sample, or the self-blended pseudo-fake made from a real sample."""

    sample: Sample
    pseudo: bool = False

    @property
    def label(self) -> int:
        return 1 if self.pseudo else self.sample.label

    @property
    def name(self) -> str:
        return f"{self.sample.path}" + (" [pseudo-fake]" if self.pseudo else "")


@dataclass(frozen=True)
class DataSplit:
    """The training and validation samples, and how the split was made (``manifest`` or ``val_fraction``)."""

    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    split_by: str

    def counts(self) -> dict[str, dict[str, int]]:
        """``{"train": {"real": n, "fake": n}, "val": ...}``, plus ``"unlabelled"`` where some are."""
        def count(samples: Sequence[Sample]) -> dict[str, int]:
            fake = sum(s.label == 1 for s in samples)
            real = sum(s.label == 0 for s in samples)
            unknown = len(samples) - fake - real
            return {"real": real, "fake": fake, **({"unlabelled": unknown} if unknown else {})}

        return {"train": count(self.train), "val": count(self.val)}


def split_samples(samples: Sequence[Sample], *, val_fraction: float, seed: int) -> DataSplit:
    """The manifest's split if it has one, else a seeded split stratified by label.

    Each class gives ``round(n * val_fraction)`` samples (at least one when ``val_fraction > 0``
    and the class has two or more) to validation.
    """
    if samples and samples[0].split is not None:
        train = tuple(s for s in samples if s.split == "train")
        val = tuple(s for s in samples if s.split == "val")
        if not train:
            raise DataError("the manifest's split has no train rows")
        return DataSplit(train, val, "manifest")
    # independent of listing order; unlabelled samples (distillation) form a third group, drawn last
    ordered = sorted(samples, key=lambda s: (2 if s.label is None else s.label, str(s.path)))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5B117]))
    train, val = [], []
    for label in (0, 1, None):
        group = [s for s in ordered if s.label == label]
        n_val = int(round(len(group) * val_fraction))
        if val_fraction > 0 and n_val == 0 and len(group) >= 2:
            n_val = 1
        chosen = set(rng.permutation(len(group))[:n_val].tolist())
        for i, s in enumerate(group):
            (val if i in chosen else train).append(s)
    return DataSplit(tuple(train), tuple(val), "val_fraction")


def expand_items(samples: Iterable[Sample], *, pseudo_fakes: bool) -> tuple[Item, ...]:
    """Dataset entries: each sample, and with ``pseudo_fakes`` a pseudo-fake after each real one."""
    items = []
    for s in samples:
        items.append(Item(s))
        if pseudo_fakes and s.label == 0:
            items.append(Item(s, pseudo=True))
    return tuple(items)


def sample_rng(*key: int) -> np.random.Generator:
    """A generator seeded from a tuple of non-negative integers (seed, epoch, index, purpose...)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))
