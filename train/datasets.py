"""What one stream trains and evaluates on: :class:`StreamDataset`, its collation and its loader.

Every image goes through the *same* functions as at inference: :func:`forensic.images.load_image`,
:mod:`forensic.faces` for the face box (through :mod:`train.face_cache`),
:func:`forensic.streams.prepare_input` for the stream's crop or resize and
:func:`forensic.streams.to_tensor` for the normalisation. Training images get the paper's compound
degradation (:func:`forensic.degrade.compound_degrade`) with probability ``global_p``; validation
images are clean, or degraded by fixed specs at fixed seeds.

Randomness is per sample: the generator of sample ``i`` in epoch ``e`` is seeded from
``(seed, e, i, purpose)``, so an epoch's images do not depend on the number of workers or
processes, nor on the order in which they are drawn, and a resumed run sees the same images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from forensic.config import StreamConfig
from forensic.data import DataError
from forensic.degrade import CompoundConfig, compound_degrade, degrade
from forensic.faces import FaceResult
from forensic.images import ImageError, load_image
from forensic.pseudofake import self_blend
from forensic.streams import prepare_input, to_tensor

from .config import AugmentSection
from .distributed import DistInfo
from .face_cache import file_key
from .samples import Item, sample_rng

__all__ = ["StreamDataset", "Collate", "EpochSampler", "make_loader"]

# purposes of the per-sample generators (keep their streams independent)
_BLEND, _DEGRADE = 1, 2


class StreamDataset(Dataset):
    """Items -> what one stream sees, as ``{"pixels": SxSx3 uint8, "label": int, "index": int}``.

    Args:
        items: the entries.
        stream: the stream's config (its input kind and size).
        train: training (random per epoch: pseudo-fake blend, compound degradation) or evaluation
            (fixed: the same image every epoch).
        seed: base seed (training: the run's seed; evaluation: ``eval.seed``).
        augment: training degradation settings (None or ``global_p = 0``: none).
        degradation: evaluation only: a degradation spec applied to every image.
        faces: face analyses by key (see :meth:`face_requests`), filled by :func:`ensure_faces`.
    """

    def __init__(
        self,
        items: Sequence[Item],
        stream: StreamConfig,
        *,
        train: bool,
        seed: int,
        augment: AugmentSection | None = None,
        degradation: str | None = None,
        faces: Mapping[str, FaceResult] | None = None,
    ) -> None:
        if train and degradation is not None:
            raise ValueError("a fixed degradation spec is for evaluation sets; training uses 'augment'")
        self.items = tuple(items)
        self.stream = stream
        self.train = train
        self.seed = seed
        self.augment = augment
        self.degradation = degradation
        self.faces: Mapping[str, FaceResult] = faces or {}
        self.epoch = 0
        self._compound = (
            CompoundConfig(op_p=augment.op_p, strength_cap=augment.strength_cap) if augment is not None else None
        )

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """The epoch used by ``dataset[index]`` (loaders pass it with each index instead, see :class:`EpochSampler`)."""
        self.epoch = int(epoch)

    @property
    def needs_faces(self) -> bool:
        return self.stream.input == "face-crop"

    # -- face keys -------------------------------------------------------------------------
    def _clean_key(self, index: int) -> str:
        return f"{file_key(self.items[index].sample.path)}|clean"

    def _view_key(self, index: int) -> str:
        """The face analysis the stream crop uses: the clean image's for training (the compound
        engine keeps the image size, so the box still fits), the exact evaluated image's for
        evaluation (as at inference, where faces are detected on what is analysed)."""
        item = self.items[index]
        if self.train or (self.degradation is None and not item.pseudo):
            return self._clean_key(index)
        return f"{file_key(item.sample.path)}|eval:{self.seed}:{index}:{self.degradation or 'clean'}:{int(item.pseudo)}"

    def face_requests(self) -> tuple[dict[str, Path], dict[str, int]]:
        """The face analyses this dataset needs: ``({key: file}, {key: index})``.

        The first are detected on the clean file; the second on :meth:`render` of the index
        (which needs the first for the pseudo-fake's face box).
        """
        clean: dict[str, Path] = {}
        rendered: dict[str, int] = {}
        for i, item in enumerate(self.items):
            if item.pseudo:
                clean[self._clean_key(i)] = item.sample.path
            if self.needs_faces:
                key = self._view_key(i)
                if key.endswith("|clean"):
                    clean[key] = item.sample.path
                else:
                    rendered[key] = i
        return clean, rendered

    # -- images ------------------------------------------------------------------------------
    def _rng(self, index: int, purpose: int, epoch: int) -> np.random.Generator:
        if self.train:
            return sample_rng(self.seed, epoch, index, purpose)
        return sample_rng(self.seed, index, purpose)

    def render(self, index: int, *, epoch: int | None = None) -> np.ndarray:
        """The full image (after pseudo-fake blending and degradation) the stream input is cut from.

        ``epoch`` defaults to the one set with :meth:`set_epoch`.
        """
        epoch = self.epoch if epoch is None else epoch
        item = self.items[index]
        try:
            image = load_image(item.sample.path)
        except ImageError as exc:
            raise DataError(f"cannot read training image {item.sample.path}: {exc}") from exc
        if item.pseudo:
            face = self.faces.get(self._clean_key(index))
            box = None if face is None or face.box is None else (face.box.x0, face.box.y0, face.box.x1, face.box.y1)
            image = self_blend(image, rng=self._rng(index, _BLEND, epoch), face_box=box).image
        if self.train:
            if self.augment is not None and self.augment.global_p > 0:
                rng = self._rng(index, _DEGRADE, epoch)
                if rng.random() < self.augment.global_p:
                    image = compound_degrade(image, strength=self.augment.strength, rng=rng, config=self._compound).image
        elif self.degradation is not None:
            image = degrade(image, self.degradation, seed=self._rng(index, _DEGRADE, epoch))
        return image

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """``dataset[index]`` (at the epoch set with :meth:`set_epoch`) or ``dataset[(epoch, index)]``."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        image = self.render(index, epoch=epoch)
        face = None
        if self.needs_faces:
            key = self._view_key(index)
            face = self.faces.get(key)
            if face is None:
                raise DataError(f"no face analysis for {self.items[index].name}: call ensure_faces() first")
        pixels = prepare_input(image, self.stream, face=face).pixels
        return {"pixels": pixels, "label": self.items[index].label, "index": index}


class Collate:
    """Stacks samples into ``{"x": (B, 3, S, S) normalised, "label": (B,), "index": (B,)}`` with
    :func:`forensic.streams.to_tensor`, the inference normalisation."""

    def __init__(self, stream: StreamConfig) -> None:
        self.stream = stream

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        return {
            "x": to_tensor([b["pixels"] for b in batch], self.stream),
            "label": torch.tensor([b["label"] for b in batch], dtype=torch.long),
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
        }


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs of a :class:`DistributedSampler`, so the epoch reaches
    persistent workers with every index (their copy of the dataset never sees ``set_epoch``)."""

    def __init__(self, inner: DistributedSampler) -> None:
        self.inner = inner
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, i) for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


def _worker_init(worker_id: int) -> None:
    # each worker does OpenCV/numpy work on one image at a time: extra threads only oversubscribe
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    info: DistInfo,
    num_workers: int = 0,
    collate: Callable[[Sequence[Any]], Any] | None = None,
) -> DataLoader:
    """A DataLoader over this process's shard.

    The sampler is a ``DistributedSampler`` also for one process, so the order is the same function
    of (seed, epoch) everywhere; call ``loader.sampler.set_epoch(epoch)``. Workers are spawned, not
    forked (a fork after OpenCV or OpenMP threads ran in the parent can deadlock the child), and
    persist across epochs so the start-up is paid once. ``collate`` defaults to
    :class:`Collate` of a :class:`StreamDataset`'s stream.
    """
    sampler = EpochSampler(
        DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed, drop_last=False)
    )
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate or Collate(dataset.stream),
        worker_init_fn=_worker_init if num_workers else None,
        multiprocessing_context="spawn" if num_workers else None,
        persistent_workers=num_workers > 0,
        generator=generator,
        pin_memory=info.device.type == "cuda",
    )
