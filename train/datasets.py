"""What a model trains and evaluates on: :class:`StreamDataset`, its collation and its loader.

Every image goes through the *same* functions as at inference: :func:`forensic.images.load_image`,
:mod:`forensic.faces` for the face box (through :mod:`train.face_cache`),
:func:`forensic.streams.prepare_inputs` for each stream's crop or resize and
:func:`forensic.streams.to_tensor` for the normalisation. Which rendering of an image an epoch
shows is the dataset's view strategy (:mod:`train.views`): training one stream draws the paper's
compound degradation, validation is clean or degraded by a fixed spec at fixed seeds, and
distillation cycles through fixed views the teacher has seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from forensic.config import ModelConfig, StreamConfig
from forensic.data import DataError
from forensic.faces import FaceResult
from forensic.images import ImageError, load_image
from forensic.pseudofake import self_blend
from forensic.streams import StreamInput, prepare_inputs, to_tensor

from .distributed import DistInfo
from .face_cache import file_key
from .samples import Item
from .views import BLEND, View, ViewPlan

__all__ = ["StreamDataset", "Collate", "EpochSampler", "make_loader", "worker_init"]


class StreamDataset(Dataset):
    """Items -> what a model's streams see, as ``{"pixels", "label", "index", "view"}``.

    ``pixels`` is one SxSx3 uint8 array for one stream (``inputs`` a :class:`StreamConfig`), or
    ``{stream: SxSx3 uint8}`` for every stream of a :class:`ModelConfig`; ``label`` is -1 where
    unknown; ``view`` is the index of the view shown (see :mod:`train.views`).

    Args:
        items: the entries.
        inputs: the stream (its input kind and size), or the model whose streams are produced.
        views: the view strategy (training, evaluation or distillation).
        needs_faces: whether face analyses are needed (default: whether a stream crops faces; a
            distillation's teacher may need them when its student does not).
        faces: face analyses by key (see :meth:`face_requests`), filled by :func:`ensure_faces`.
    """

    def __init__(
        self,
        items: Sequence[Item],
        inputs: StreamConfig | ModelConfig,
        *,
        views: ViewPlan,
        needs_faces: bool | None = None,
        faces: Mapping[str, FaceResult] | None = None,
    ) -> None:
        self.items = tuple(items)
        self.inputs = inputs
        self.streams = (inputs,) if isinstance(inputs, StreamConfig) else tuple(inputs.streams)
        self.view_plan = views
        self.needs_faces = any(s.input == "face-crop" for s in self.streams) if needs_faces is None else needs_faces
        self.faces: Mapping[str, FaceResult] = faces or {}
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """The epoch used by ``dataset[index]`` (loaders pass it with each index instead, see :class:`EpochSampler`)."""
        self.epoch = int(epoch)

    @property
    def samples(self) -> tuple:
        """Each entry's sample."""
        return tuple(item.sample for item in self.items)

    def view(self, index: int, epoch: int | None = None) -> View | None:
        """The view of image ``index`` epoch ``epoch`` shows (None: drawn by the view strategy)."""
        plan = self.view_plan
        return plan.views(index)[plan.shown(index, self.epoch if epoch is None else epoch)]

    # -- face keys -------------------------------------------------------------------------
    def clean_key(self, index: int) -> str:
        """The face analysis of the clean file (shared by every run on the same data)."""
        return f"{file_key(self.items[index].sample.path)}|clean"

    def face_key(self, index: int, view: View | None) -> str:
        """The face analysis ``view`` of image ``index`` is cropped with."""
        where = self.view_plan.face_view(index, view, pseudo=self.items[index].pseudo)
        return self.clean_key(index) if where is None else f"{file_key(self.items[index].sample.path)}|{where}"

    def face_requests(self) -> tuple[dict[str, Path], dict[str, int]]:
        """The face analyses this dataset needs: ``({key: file}, {key: index})``.

        The first are detected on the clean file; the second on :meth:`render` of the index
        (which needs the first for the pseudo-fake's face box).
        """
        clean: dict[str, Path] = {}
        rendered: dict[str, int] = {}
        for i, item in enumerate(self.items):
            if item.pseudo:
                clean[self.clean_key(i)] = item.sample.path
            if not self.needs_faces:
                continue
            for view in self.view_plan.views(i):
                key = self.face_key(i, view)
                if key.endswith("|clean"):
                    clean[key] = item.sample.path
                else:
                    rendered[key] = i  # one view per image where faces are detected on the rendering
        return clean, rendered

    def face(self, index: int, view: View | None) -> FaceResult | None:
        """The face analysis ``view`` of image ``index`` is cropped with (None without faces)."""
        if not self.needs_faces:
            return None
        face = self.faces.get(self.face_key(index, view))
        if face is None:
            raise DataError(f"no face analysis for {self.items[index].name}: call ensure_faces() first")
        return face

    def face_fallbacks(self) -> np.ndarray:
        """Per image (its first view), whether the face stream saw the whole image (the vote's ``face_fallback``)."""
        if not self.needs_faces:
            return np.zeros(len(self), dtype=bool)
        return np.array([self.face(i, self.view_plan.views(i)[0]).mode != "crop" for i in range(len(self))], dtype=bool)

    # -- images ------------------------------------------------------------------------------
    def render(self, index: int, *, epoch: int | None = None, view: View | None = None) -> np.ndarray:
        """The full image (after pseudo-fake blending and the view's degradation) the inputs are cut from.

        ``epoch`` defaults to the one set with :meth:`set_epoch`; ``view`` (distillation) renders
        that view instead of the epoch's.
        """
        epoch = self.epoch if epoch is None else epoch
        item = self.items[index]
        try:
            image = load_image(item.sample.path)
        except ImageError as exc:
            raise DataError(f"cannot read image {item.sample.path}: {exc}") from exc
        if item.pseudo:
            face = self.faces.get(self.clean_key(index))
            box = None if face is None or face.box is None else (face.box.x0, face.box.y0, face.box.x1, face.box.y1)
            image = self_blend(image, rng=self.view_plan.rng(index, BLEND, epoch), face_box=box).image
        return self.view_plan.render(image, index, epoch, view)

    def stream_inputs(self, index: int, config: ModelConfig, *, view: View | None = None, epoch: int | None = None) -> dict[str, StreamInput]:
        """Image ``index`` (at ``view``, or the epoch's) as ``config``'s streams see it (a teacher's, too)."""
        view = self.view(index, epoch) if view is None else view
        return prepare_inputs(self.render(index, epoch=epoch, view=view), config.streams, face=self.face(index, view))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """``dataset[index]`` (at the epoch set with :meth:`set_epoch`) or ``dataset[(epoch, index)]``."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        k = self.view_plan.shown(index, epoch)
        view = self.view_plan.views(index)[k]
        inputs = prepare_inputs(self.render(index, epoch=epoch, view=view), self.streams, face=self.face(index, view))
        label = self.items[index].label
        pixels = {s.name: inputs[s.name].pixels for s in self.streams}
        return {
            "pixels": pixels if isinstance(self.inputs, ModelConfig) else pixels[self.inputs.name],
            "label": -1 if label is None else int(label),
            "index": index,
            "view": k,
        }



class Collate:
    """Stacks items into ``{"x", "label": (B,), "index": (B,), "view": (B,)}`` with
    :func:`forensic.streams.to_tensor`, the inference normalisation: ``x`` is (B, 3, S, S) for one
    stream, ``{stream: (B, 3, S, S)}`` for a model's streams."""

    def __init__(self, inputs: StreamConfig | ModelConfig) -> None:
        self.inputs = inputs

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if isinstance(self.inputs, StreamConfig):
            x: Any = to_tensor([b["pixels"] for b in batch], self.inputs)
        else:
            x = {s.name: to_tensor([b["pixels"][s.name] for b in batch], s) for s in self.inputs.streams}
        return {
            "x": x,
            "label": torch.tensor([b["label"] for b in batch], dtype=torch.long),
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
            "view": torch.tensor([b["view"] for b in batch], dtype=torch.long),
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


def worker_init(worker_id: int) -> None:
    """DataLoader workers: one thread each."""
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
    :class:`Collate` of a :class:`StreamDataset`'s inputs.
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
        collate_fn=collate or Collate(dataset.inputs),
        worker_init_fn=worker_init if num_workers else None,
        multiprocessing_context="spawn" if num_workers else None,
        persistent_workers=num_workers > 0,
        generator=generator,
        pin_memory=info.device.type == "cuda",
    )
