"""What the student and the teacher see in a distillation run: views of images, rendered by inference code.

A *view* of an image is the image itself or one seeded degradation of it. Every view is rendered
by :func:`forensic.stages.load` (safe decoding, then the degradation: the paper's compound engine
for training views, a spec for held-out sets), and each model's stream inputs by
:func:`forensic.stages.prepare` (texture crop, face crop, fusion resize, exactly as at inference),
with the face analysis of :class:`forensic.faces.FaceDetector` (cached in the run's face cache).

Training views: each training image has ``distill.views`` views, fixed for the run; view ``v``
is degraded (compound engine at ``augment.*``) with probability ``augment.global_p``, with a seed
drawn from ``(seed, image, v)``. Epoch ``e`` shows the student view ``(e + offset) mod views``,
so every view is used once per ``views`` epochs, and the teacher, run once per view before the
first epoch, is never run again. As in ``python -m train``, a degraded training view uses the
face box of the clean image (the compound engine keeps the size); held-out views are analysed
as inference analyses them (faces detected on the evaluated image).

Seeds come from the image's path relative to the data folder and its size, not from its
position in the list, so adding images to a data set keeps the other images' views (and their
cached teacher outputs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from forensic import stages
from forensic.config import ModelConfig
from forensic.degrade import parse_spec, protocol_levels
from forensic.faces import FaceResult
from forensic.images import ImageError
from forensic.streams import to_tensor

from .config import AugmentSection, DistillConfig
from .data import DataError, Sample, file_key, sample_rng

__all__ = [
    "CLEAN",
    "View",
    "augment_spec",
    "sample_id",
    "training_views",
    "eval_views",
    "eval_sets",
    "DistillDataset",
    "DistillCollate",
    "TeacherInputs",
    "collate_list",
]

CLEAN = "clean"
# purposes of the per-image generators (independent of train.data's)
_VIEW, _EVAL = 3, 4
_MAX_SEED = 2**32  # exclusive: forensic.degrade takes seeds in 0..2**32-1


@dataclass(frozen=True)
class View:
    """One rendering of an image: clean (``degradation`` None) or degraded by a spec at a seed."""

    degradation: str | None = None
    seed: int = 0

    @property
    def key(self) -> str:
        """Identifies the rendering (cache keys): ``clean`` or ``SPEC@SEED``."""
        return CLEAN if self.degradation is None else f"{self.degradation}@{self.seed}"


def augment_spec(augment: AugmentSection) -> str | None:
    """The compound-engine spec of the training degradation (None: training views stay clean)."""
    if augment.global_p <= 0 or augment.strength <= 0:
        return None
    return f"compound:strength={augment.strength:g},op_p={augment.op_p:g},cap={augment.strength_cap:g}"


def sample_id(sample: Sample, root: Path) -> int:
    """A stable 63-bit number for an image: its path relative to the data folder, and its size."""
    from .rundir import relative_name

    size = sample.path.stat().st_size
    text = f"{relative_name(sample.path, root)}:{size}"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big") >> 1


def training_views(ids: Sequence[int], cfg: DistillConfig) -> list[tuple[View, ...]]:
    """``distill.views`` views per image (see the module docstring)."""
    spec = augment_spec(cfg.augment)
    out = []
    for sid in ids:
        views = []
        for v in range(cfg.distill.views):
            rng = sample_rng(cfg.seed, sid, v, _VIEW)
            degraded = spec is not None and rng.random() < cfg.augment.global_p
            views.append(View(spec, int(rng.integers(_MAX_SEED))) if degraded else View())
        out.append(tuple(views))
    return out


def eval_views(ids: Sequence[int], spec: str | None, seed: int) -> list[tuple[View, ...]]:
    """One fixed view per held-out image: clean, or ``spec`` at a seed drawn from ``(seed, image)``."""
    if spec is None:
        return [(View(),) for _ in ids]
    return [(View(spec, int(sample_rng(seed, sid, _EVAL).integers(_MAX_SEED))),) for sid in ids]


def eval_sets(cfg: DistillConfig) -> dict[str, str | None]:
    """The held-out sets, name -> degradation: clean, ``eval.degradations``, then every level of the
    robustness protocol's families in ``distill.protocol`` (by canonical spec; duplicates once)."""
    sets: dict[str, str | None] = {CLEAN: None}
    seen = set()
    for spec in cfg.eval.degradations:
        sets[spec] = spec
        seen.add(str(parse_spec(spec)))
    for family in cfg.distill.protocol:
        for level in protocol_levels(family):
            text = str(level.spec)
            if level.spec.is_identity or text in seen:
                continue
            sets[text] = text
            seen.add(text)
    return sets


class DistillDataset(Dataset):
    """Images -> each stream's input, as ``{"pixels": {stream: SxSx3 uint8}, "index", "view", "label"}``.

    Args:
        samples: the images (label None when unknown; given as -1).
        config: the model whose stream inputs are produced (the student's).
        views: per image, its views (training: ``distill.views``; held-out: one).
        needs_faces: whether some model of the run has a face stream.
        faces_on_view: held-out sets: the face of each view is detected on the view itself
            (inference's rule); training: the clean image's face is used for every view.
        ids: per image, :func:`sample_id` (training: the epoch's view offset).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        config: ModelConfig,
        views: Sequence[Sequence[View]],
        *,
        needs_faces: bool,
        faces_on_view: bool,
        ids: Sequence[int] | None = None,
    ) -> None:
        if len(views) != len(samples):
            raise ValueError("one tuple of views per sample")
        self.samples = tuple(samples)
        self.config = config
        self.views = tuple(tuple(v) for v in views)
        self.needs_faces = needs_faces
        self.faces_on_view = faces_on_view
        self.offsets = tuple((sid % len(v)) for sid, v in zip(ids, self.views)) if ids is not None else (0,) * len(samples)
        self.faces: Mapping[str, FaceResult] = {}
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    # -- views ---------------------------------------------------------------------------------
    def view_index(self, index: int, epoch: int | None = None) -> int:
        """Which of image ``index``'s views epoch ``epoch`` shows."""
        epoch = self.epoch if epoch is None else epoch
        return (epoch + self.offsets[index]) % len(self.views[index])

    def load(self, index: int, view: View) -> stages.Loaded:
        """Decodes image ``index`` and renders ``view`` of it (:func:`forensic.stages.load`)."""
        sample = self.samples[index]
        try:
            return stages.load(sample.path, degradation=view.degradation, seed=view.seed)
        except ImageError as exc:
            raise DataError(f"cannot read image {sample.path}: {exc}") from exc

    def view_key(self, view: View) -> str:
        """``view.key`` and the face rule it is analysed with (cache keys of teacher outputs)."""
        on_view = self.faces_on_view and view.degradation is not None
        return f"{view.key}|faces-on-{'view' if on_view else 'clean'}"

    # -- faces (the interface of train.data.ensure_faces) ---------------------------------------
    def _clean_key(self, index: int) -> str:
        return f"{file_key(self.samples[index].path)}|clean"  # shared with python -m train's face cache

    def face_key(self, index: int, view: View) -> str:
        if not self.faces_on_view or view.degradation is None:
            return self._clean_key(index)
        return f"{file_key(self.samples[index].path)}|view:{view.key}"

    def face_requests(self) -> tuple[dict[str, Path], dict[str, int]]:
        """``({key: file}, {key: index})``: faces to detect on clean files and on rendered views."""
        clean: dict[str, Path] = {}
        rendered: dict[str, int] = {}
        if not self.needs_faces:
            return clean, rendered
        for i, sample in enumerate(self.samples):
            clean[self._clean_key(i)] = sample.path  # clean targets and training views use it
            for view in self.views[i]:
                key = self.face_key(i, view)
                if not key.endswith("|clean"):
                    rendered[key] = i  # held-out sets have one view per image
        return clean, rendered

    def render(self, index: int) -> np.ndarray:
        """The held-out view of image ``index`` (what its faces are detected on)."""
        return self.load(index, self.views[index][0]).image

    def face(self, index: int, view: View) -> FaceResult | None:
        """The face analysis ``view`` of image ``index`` is cropped with (None without a face stream)."""
        if not self.needs_faces:
            return None
        face = self.faces.get(self.face_key(index, view))
        if face is None:
            raise DataError(f"no face analysis for {self.samples[index].path}: call ensure_faces() first")
        return face

    def face_fallbacks(self) -> np.ndarray:
        """Per image (its first view), whether the face stream saw the whole image (the vote's rule)."""
        if not self.needs_faces:
            return np.zeros(len(self), dtype=bool)
        return np.array([self.face(i, self.views[i][0]).mode != "crop" for i in range(len(self))], dtype=bool)

    # -- items -----------------------------------------------------------------------------------
    def prepared(self, index: int, view: View, config: ModelConfig) -> stages.Prepared:
        """``view`` of image ``index`` as ``config``'s streams see it (:func:`forensic.stages.prepare`)."""
        return stages.prepare(self.load(index, view), self.face(index, view), config)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """``dataset[index]`` (at the epoch set with :meth:`set_epoch`) or ``dataset[(epoch, index)]``."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        k = self.view_index(index, epoch)
        inputs = self.prepared(index, self.views[index][k], self.config).inputs
        label = self.samples[index].label
        return {
            "pixels": {name: inputs[name].pixels for name in self.config.stream_names},
            "index": index,
            "view": k,
            "label": -1 if label is None else int(label),
        }


class DistillCollate:
    """Stacks items into ``{"x": {stream: (B, 3, S, S)}, "index", "view", "label"}`` with
    :func:`forensic.streams.to_tensor`, the inference normalisation."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "x": {s.name: to_tensor([b["pixels"][s.name] for b in batch], s) for s in self.config.streams},
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
            "view": torch.tensor([b["view"] for b in batch], dtype=torch.long),
            "label": torch.tensor([b["label"] for b in batch], dtype=torch.long),
        }


class TeacherInputs(Dataset):
    """The teacher's stream inputs of the entries it has to compute: ``(dataset, index, view)`` triples.

    Items are ``(position, {stream: StreamInput})``, for :func:`forensic.stages.forward`.
    """

    def __init__(self, entries: Sequence[tuple[DistillDataset, int, View]], config: ModelConfig) -> None:
        self.entries = tuple(entries)
        self.config = config

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, position: int) -> tuple[int, dict[str, Any]]:
        dataset, index, view = self.entries[position]
        return position, dataset.prepared(index, view, self.config).inputs


def collate_list(batch: list[Any]) -> list[Any]:
    """The batch as a list (teacher inputs are stacked on the teacher's device by :func:`forensic.stages.forward`)."""
    return batch
