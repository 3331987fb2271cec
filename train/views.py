"""Which rendering of an image a dataset shows, epoch by epoch: the view strategies of :class:`train.datasets.StreamDataset`.

- :class:`AugmentedViews` (training one stream): each epoch draws, per image, the paper's compound
  degradation with probability ``augment.global_p`` (and a new pseudo-fake blend).
- :class:`FixedViews` (validation): the clean image, or one degradation spec at a fixed seed per image.
- :class:`CycledViews` (distillation): a fixed tuple of :class:`View` per image; epoch ``e`` shows
  view ``(e + offset) mod views``, so the teacher, run once per view, is never run again.

A strategy also says which face analysis a rendering is cropped with: the clean image's (the
compound engine keeps the size, so its box still fits), or one detected on the rendering itself
(inference's rule, for evaluated images). Randomness is per image: its generators are seeded from
``(seed, [epoch,] index or image id, purpose)``, so images do not depend on the number of workers
or processes, nor on the order in which they are drawn, and a resumed run sees the same images.

For distillation, :func:`training_views`, :func:`eval_views` and :func:`eval_sets` make the views;
their seeds come from :func:`sample_id` (the image's path relative to the data folder and its
size, not its position), so adding images to a data set keeps the other images' views and cached
teacher outputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from forensic.data import Sample
from forensic.degrade import CompoundConfig, compound_degrade, degrade, parse_spec, protocol_levels

from .config import AugmentSection, DistillConfig
from .rundir import relative_name
from .samples import sample_rng

__all__ = [
    "CLEAN", "View", "ViewPlan", "AugmentedViews", "FixedViews", "CycledViews",
    "BLEND", "augment_spec", "sample_id", "training_views", "eval_views", "eval_sets",
]

#: the name of the undegraded validation (held-out) set
CLEAN = "clean"
#: purposes of the per-image generators (keep their streams independent)
BLEND, _DEGRADE, _VIEW, _EVAL = 1, 2, 3, 4
_MAX_SEED = 2**32  # exclusive: forensic.degrade takes seeds in 0..2**32-1


@dataclass(frozen=True)
class View:
    """One fixed rendering of an image: clean (``degradation`` None) or degraded by a spec at a seed."""

    degradation: str | None = None
    seed: int = 0

    @property
    def key(self) -> str:
        """Identifies the rendering (cache keys): ``clean`` or ``SPEC@SEED``."""
        return CLEAN if self.degradation is None else f"{self.degradation}@{self.seed}"


class ViewPlan(Protocol):
    """A dataset's view strategy (see the module docstring)."""

    def views(self, index: int) -> Sequence[View | None]:
        """The fixed views of image ``index`` (``(None,)``: one view drawn anew, see :meth:`render`)."""

    def shown(self, index: int, epoch: int) -> int:
        """Which of :meth:`views` epoch ``epoch`` shows."""

    def render(self, image: np.ndarray, index: int, epoch: int, view: View | None) -> np.ndarray:
        """The decoded (and maybe blended) image as ``view`` of it (None: the plan's own draw)."""

    def face_view(self, index: int, view: View | None, *, pseudo: bool) -> str | None:
        """Where the face crop of ``view`` comes from: None for the clean image's analysis, else a
        key naming the rendering its faces are detected on."""

    def rng(self, index: int, purpose: int, epoch: int) -> np.random.Generator:
        """The generator of image ``index`` for ``purpose`` (the pseudo-fake blend) in ``epoch``."""


@dataclass(frozen=True)
class AugmentedViews:
    """Training one stream: the compound degradation drawn per (epoch, image) with probability ``global_p``."""

    seed: int
    augment: AugmentSection | None = None

    def views(self, index: int) -> tuple[None]:
        return (None,)

    def shown(self, index: int, epoch: int) -> int:
        return 0

    def rng(self, index: int, purpose: int, epoch: int) -> np.random.Generator:
        return sample_rng(self.seed, epoch, index, purpose)

    def render(self, image: np.ndarray, index: int, epoch: int, view: View | None) -> np.ndarray:
        aug = self.augment
        if aug is None or aug.global_p <= 0:
            return image
        rng = self.rng(index, _DEGRADE, epoch)
        if rng.random() >= aug.global_p:
            return image
        compound = CompoundConfig(op_p=aug.op_p, strength_cap=aug.strength_cap)
        return compound_degrade(image, strength=aug.strength, rng=rng, config=compound).image

    def face_view(self, index: int, view: View | None, *, pseudo: bool) -> str | None:
        return None  # the compound engine keeps the image size: the clean image's box still fits


@dataclass(frozen=True)
class FixedViews:
    """Evaluation: the clean image or ``degradation`` at a seed drawn from ``(seed, index)``, the
    same every epoch; faces are detected on the evaluated image itself, as at inference."""

    seed: int
    degradation: str | None = None

    def views(self, index: int) -> tuple[None]:
        return (None,)

    def shown(self, index: int, epoch: int) -> int:
        return 0

    def rng(self, index: int, purpose: int, epoch: int) -> np.random.Generator:
        return sample_rng(self.seed, index, purpose)

    def render(self, image: np.ndarray, index: int, epoch: int, view: View | None) -> np.ndarray:
        if self.degradation is None:
            return image
        return degrade(image, self.degradation, seed=self.rng(index, _DEGRADE, epoch))

    def face_view(self, index: int, view: View | None, *, pseudo: bool) -> str | None:
        if self.degradation is None and not pseudo:
            return None
        return f"eval:{self.seed}:{index}:{self.degradation or 'clean'}:{int(pseudo)}"


@dataclass(frozen=True)
class CycledViews:
    """Distillation: fixed views per image, shown in turn (epoch ``e``: view ``(e + offset) mod n``).

    Args:
        per_image: each image's views (training: ``distill.views``; held-out: one).
        offsets: each image's offset (default 0).
        faces_on_view: held-out sets: a degraded view's face is detected on the view itself
            (inference's rule); training: the clean image's face is used for every view.
    """

    per_image: tuple[tuple[View, ...], ...]
    offsets: tuple[int, ...] = ()
    faces_on_view: bool = False

    @classmethod
    def of(cls, per_image: Sequence[Sequence[View]], *, ids: Sequence[int] | None = None, faces_on_view: bool = False) -> CycledViews:
        """Views per image; ``ids`` (:func:`sample_id`) spread the images over the views of an epoch."""
        views = tuple(tuple(v) for v in per_image)
        offsets = tuple(sid % len(v) for sid, v in zip(ids, views)) if ids is not None else ()
        return cls(views, offsets, faces_on_view)

    def views(self, index: int) -> tuple[View, ...]:
        return self.per_image[index]

    def shown(self, index: int, epoch: int) -> int:
        offset = self.offsets[index] if self.offsets else 0
        return (epoch + offset) % len(self.per_image[index])

    def rng(self, index: int, purpose: int, epoch: int) -> np.random.Generator:
        return sample_rng(epoch, index, purpose)

    def render(self, image: np.ndarray, index: int, epoch: int, view: View | None) -> np.ndarray:
        view = view if view is not None else self.per_image[index][self.shown(index, epoch)]
        return image if view.degradation is None else degrade(image, view.degradation, seed=view.seed)

    def face_view(self, index: int, view: View | None, *, pseudo: bool) -> str | None:
        if view is None or not self.faces_on_view or view.degradation is None:
            return None
        return f"view:{view.key}"


# --------------------------------------------------------------------------------- distillation's views
def augment_spec(augment: AugmentSection) -> str | None:
    """The compound-engine spec of the training degradation (None: training views stay clean)."""
    if augment.global_p <= 0 or augment.strength <= 0:
        return None
    return f"compound:strength={augment.strength:g},op_p={augment.op_p:g},cap={augment.strength_cap:g}"


def sample_id(sample: Sample, root: Path) -> int:
    """A stable 63-bit number for an image: its path relative to the data folder, and its size."""
    size = sample.path.stat().st_size
    text = f"{relative_name(sample.path, root)}:{size}"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big") >> 1


def training_views(ids: Sequence[int], cfg: DistillConfig) -> list[tuple[View, ...]]:
    """``distill.views`` views per image: view ``v`` degraded (compound engine at ``augment.*``) with
    probability ``augment.global_p``, with a seed drawn from ``(seed, image, v)``."""
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
