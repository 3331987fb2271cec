"""Training data: the train/val split, faces, augmentation and loaders.

Folders and CSV manifests are read by :func:`forensic.data.read_samples` (re-exported here with
:class:`~forensic.data.Sample`, :class:`~forensic.data.DataError` and ``IMAGE_EXTENSIONS``), the
same reader ``python -m analysis`` uses.

Every image goes through the *same* functions as at inference: :func:`forensic.images.load_image`,
:mod:`forensic.faces` for the face box, :func:`forensic.streams.prepare_input` for the stream's
crop or resize and :func:`forensic.streams.to_tensor` for the normalisation. Training images get
the paper's compound degradation (:func:`forensic.degrade.compound_degrade`) with probability
``global_p``; validation images are clean, or degraded by fixed specs at fixed seeds.

Before any dataset is built, :func:`scan_samples` decodes every file once (the verdicts are cached
with the faces): unreadable files are listed and left out, or refused with ``data.strict``, so
one bad file never stops a run halfway through an epoch.

Randomness is per sample: the generator of sample ``i`` in epoch ``e`` is seeded from
``(seed, e, i, purpose)``, so an epoch's images do not depend on the number of workers or
processes, nor on the order in which they are drawn, and a resumed run sees the same images.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from forensic.config import StreamConfig
from forensic.data import IMAGE_EXTENSIONS, DataError, Sample, read_samples
from forensic.degrade import CompoundConfig, compound_degrade, degrade
from forensic.faces import CropRegion, FaceBox, FaceResult
from forensic.images import ImageError, load_image
from forensic.pseudofake import self_blend
from forensic.streams import prepare_input, to_tensor

from .config import AugmentSection
from .distributed import DistInfo, all_gather_objects

__all__ = [
    "DataError",
    "BadFile",
    "ScanResult",
    "scan_samples",
    "Sample",
    "Item",
    "DataSplit",
    "IMAGE_EXTENSIONS",
    "read_samples",
    "split_samples",
    "expand_items",
    "sample_rng",
    "FaceCache",
    "face_result_from_dict",
    "StreamDataset",
    "Collate",
    "make_loader",
    "EpochSampler",
    "ensure_faces",
]

log = logging.getLogger(__name__)

# purposes of the per-sample generators (keep their streams independent)
_BLEND, _DEGRADE = 1, 2
_SCAN = "|scan"
# images per face-detection call (bounds the decoded images held at once)
_FACE_BATCH = 8


# --------------------------------------------------------------------------------- samples
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


# --------------------------------------------------------------------------------- faces
def file_key(path: Path) -> str:
    """Identifies a file's content cheaply: resolved path, size and modification time."""
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def face_result_from_dict(data: Mapping[str, Any]) -> FaceResult:
    """Rebuilds a :class:`FaceResult` from :meth:`FaceResult.to_dict` (the cache format)."""
    box = data.get("box")
    return FaceResult(
        mode=data["mode"],
        box=FaceBox(**box) if box else None,
        region=CropRegion(**data["region"]),
        faces=tuple(FaceBox(**f) for f in data.get("faces", ())),
        found_by=data.get("found_by"),
        reason=data["reason"],
        image_size=tuple(int(v) for v in data["image_size"]),
    )


class FaceCache:
    """Face analyses (and readability verdicts) keyed by file identity and view, persisted as JSON.

    Detection (MTCNN, ~60 ms per image on a CPU) runs once per image; later epochs, resumed runs
    and other streams trained on the same data read the cache. The readability scan of
    :func:`scan_samples` is kept in the same file, under keys ending in ``|scan``.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._raw: dict[str, dict] = {}
        self.results: dict[str, FaceResult] = {}
        self.scans: dict[str, str | None] = {}
        if path is not None and path.is_file():
            try:
                self._raw = json.loads(path.read_text())
            except json.JSONDecodeError:
                log.warning("the face cache %s is unreadable; starting a new one", path)
            for key, value in self._raw.items():
                if key.endswith(_SCAN):
                    self.scans[key] = value.get("error")
                else:
                    self.results[key] = face_result_from_dict(value)

    def __contains__(self, key: str) -> bool:
        return key in self.results

    def put(self, key: str, data: Mapping[str, Any]) -> None:
        self._raw[key] = dict(data)
        self.results[key] = face_result_from_dict(data)

    def put_scan(self, key: str, error: str | None) -> None:
        """Records whether the file of ``key`` (``file_key(path) + "|scan"``) decodes (None) or why not."""
        self._raw[key] = {"error": error}
        self.scans[key] = error

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._raw))
        os.replace(tmp, self.path)  # atomic: an interrupted run never leaves half a cache


# --------------------------------------------------------------------------------- scan
@dataclass(frozen=True)
class BadFile:
    """A data file that cannot be used, and why (one line)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_samples` found.

    Attributes:
        readable: the samples whose files decode, in the given order.
        bad: the others, with the reason.
        decoded: files decoded by this call (the rest came from the cache).
    """

    readable: tuple[Sample, ...]
    bad: tuple[BadFile, ...]
    decoded: int


def _unreadable_reason(path: Path) -> str | None:
    """None when ``path`` decodes as training will decode it, else the reason."""
    try:
        load_image(path)
    except ImageError as exc:
        return str(exc).rstrip(".") or exc.__class__.__name__
    return None


def scan_samples(
    samples: Sequence[Sample],
    cache: FaceCache,
    *,
    info: DistInfo,
    threads: int = 1,
    progress: bool = False,
) -> ScanResult:
    """Decodes every file once (with :func:`forensic.images.load_image`, as training does).

    Verdicts are cached by file identity (path, size, modification time), so a file is decoded
    again only after it changed. The files to decode are shared out over the ranks and gathered;
    rank 0 saves the cache.
    """
    keys: dict[Path, str] = {}
    missing: dict[Path, str] = {}
    for s in samples:
        try:
            keys[s.path] = file_key(s.path) + _SCAN
        except OSError as exc:  # gone since it was listed, or no permission
            missing[s.path] = f"cannot open it ({exc.strerror or exc.__class__.__name__})"
    todo = sorted({key: path for path, key in keys.items() if key not in cache.scans}.items())
    mine = todo[info.rank :: info.world_size]
    found: dict[str, str | None] = {}
    if mine:
        paths = [path for _, path in mine]
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # decoding releases the GIL
            verdicts: Iterable[str | None] = pool.map(_unreadable_reason, paths)
            if progress and info.is_main:
                from tqdm import tqdm

                verdicts = tqdm(verdicts, total=len(paths), desc="scan images", unit="img", leave=False)
            found = {key: reason for (key, _), reason in zip(mine, verdicts)}
    gathered = all_gather_objects(info, found)
    for part in gathered:
        for key, reason in part.items():
            cache.put_scan(key, reason)
    if todo and info.is_main:
        cache.save()
    readable, bad = [], []
    for s in samples:
        reason = missing[s.path] if s.path in missing else cache.scans.get(keys[s.path])
        if reason:
            bad.append(BadFile(s.path, reason))
        else:
            readable.append(s)
    return ScanResult(readable=tuple(readable), bad=tuple(bad), decoded=len(todo))


# --------------------------------------------------------------------------------- dataset
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


def ensure_faces(
    datasets: Sequence[StreamDataset],
    cache: FaceCache,
    *,
    info: DistInfo,
    detector_factory: Callable[[], Any],
    progress: bool = False,
) -> int:
    """Detects the faces the datasets need and are not cached, shared out over the ranks.

    Clean files first (pseudo-fake boxes depend on them), then rendered evaluation images. Rank 0
    saves the cache. Afterwards every dataset's ``faces`` points at the cache.

    Returns:
        The number of detections this call ran (over all ranks).
    """
    detector = None
    ran = 0
    for phase in ("clean", "rendered"):
        todo: dict[str, Callable[[], np.ndarray]] = {}
        for ds in datasets:
            ds.faces = cache.results
            clean, rendered = ds.face_requests()
            if phase == "clean":
                todo.update({k: (lambda p=p: load_image(p)) for k, p in clean.items() if k not in cache})
            else:
                todo.update({k: (lambda d=ds, i=i: d.render(i)) for k, i in rendered.items() if k not in cache})
        keys = sorted(todo)[info.rank :: info.world_size]
        results: dict[str, dict] = {}
        if keys:
            detector = detector or detector_factory()
            bar = None
            if progress and info.is_main:
                from tqdm import tqdm

                bar = tqdm(total=len(keys), desc=f"faces ({phase})", unit="img", leave=False)
            # FaceDetector.analyze_batch runs MTCNN on several images at once, as inference does
            batched = getattr(detector, "analyze_batch", None)
            for start in range(0, len(keys), _FACE_BATCH):
                chunk = keys[start : start + _FACE_BATCH]
                images = [todo[key]() for key in chunk]
                found = batched(images) if batched is not None else [detector.analyze(image) for image in images]
                results.update((key, face.to_dict()) for key, face in zip(chunk, found))
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        gathered = all_gather_objects(info, results)
        for part in gathered:
            for key, data in part.items():
                cache.put(key, data)
        ran += sum(len(p) for p in gathered)
    if ran and info.is_main:
        cache.save()
    for ds in datasets:
        ds.faces = cache.results
    return ran
