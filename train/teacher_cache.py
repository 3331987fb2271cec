"""The teacher's outputs, computed once per (teacher, image, view) and kept on disk as safetensors.

A distillation run needs the teacher's per-stream logits for every training image under each of
its degradation views, and for every held-out image under each evaluation degradation. The
teacher (for ``paper``, 2.3 TFLOP per image) runs once per entry, before the first epoch; epochs,
resumed runs and later runs sharing the cache read it instead.

Layout: ``CACHE/shard-*.safetensors``, each holding ``keys`` (N, 16) uint8 and ``logits``
(N, S, 2) float32 (the teacher's raw logits, streams listed in the shard's metadata). A key is a
16-byte BLAKE2 digest of the teacher's fingerprint and dtype, the file's identity (path, size,
modification time) and the view (clean, or degradation spec and seed), so entries of other
teachers, changed files or other views are never confused. Shards are written atomically and
never modified; a new batch of entries is a new shard. An entry costs 16 + 8 S bytes on disk.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from torch.utils.data import DataLoader, Dataset

from forensic.config import ModelConfig
from forensic.faces import FaceResult
from forensic.pipeline import Detector, WorkItem, resolve_dtype

from ._io import atomic_write
from .config import DistillConfig
from .datasets import StreamDataset, worker_init
from .distributed import DistInfo, all_gather_objects
from .face_cache import file_key
from .teacher import TeacherSource, load_teacher, teacher_device
from .views import View

__all__ = ["TeacherCache", "TeacherPass", "TeacherTargets", "entry_key", "fill_cache", "FORMAT", "FLUSH_EVERY"]

log = logging.getLogger(__name__)

FORMAT = "forensic-teacher-cache"
VERSION = "1"
KEY_BYTES = 16


def entry_key(*, teacher: str, dtype: str, file: str, view: str) -> bytes:
    """The cache key of one teacher output (see the module docstring)."""
    text = "\x1f".join((FORMAT, VERSION, teacher, dtype, file, view))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=KEY_BYTES).digest()


class TeacherCache:
    """Teacher logits by key, loaded from (and added to) a folder of safetensors shards.

    Args:
        folder: the cache folder (created on the first :meth:`flush`); None keeps it in memory.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = None if folder is None else Path(folder)
        self._rows: dict[bytes, tuple[tuple[str, ...], np.ndarray]] = {}
        self._pending: list[tuple[tuple[str, ...], list[bytes], np.ndarray]] = []
        if self.folder is not None and self.folder.is_dir():
            for path in sorted(self.folder.glob("shard-*.safetensors")):
                self._load(path)

    def _load(self, path: Path) -> None:
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                    log.warning("%s is not a teacher-cache shard of this version: ignored", path)
                    return
                keys, logits = f.get_tensor("keys").numpy(), f.get_tensor("logits").numpy()
        except (SafetensorError, OSError, KeyError) as exc:
            log.warning("teacher cache shard %s cannot be read (%s): ignored, its entries are computed again", path, exc)
            return
        streams = tuple(meta.get("streams", "").split(","))
        if keys.ndim != 2 or keys.shape[1] != KEY_BYTES or logits.shape != (len(keys), len(streams), 2):
            log.warning("teacher cache shard %s has unexpected shapes: ignored", path)
            return
        for key, row in zip(keys, logits):
            self._rows[key.tobytes()] = (streams, row)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: bytes) -> bool:
        return key in self._rows

    def missing(self, keys: Iterable[bytes]) -> list[bytes]:
        """The keys without an entry, each once, in first-seen order."""
        return list(dict.fromkeys(k for k in keys if k not in self._rows))

    def get(self, key: bytes, streams: Sequence[str]) -> np.ndarray:
        """The (S, 2) float32 logits of ``streams`` for ``key``.

        Raises:
            KeyError: no entry for ``key``, or it lacks one of ``streams``.
        """
        have, row = self._rows[key]
        return np.stack([row[have.index(s)] for s in streams])

    def table(self, keys: Sequence[bytes], streams: Sequence[str]) -> torch.Tensor:
        """(len(keys), S, 2) float32 logits, in the order of ``keys``."""
        if not keys:
            return torch.zeros((0, len(streams), 2))
        return torch.from_numpy(np.stack([self.get(k, streams) for k in keys]).astype(np.float32))

    def put(self, keys: Sequence[bytes], streams: Sequence[str], logits: np.ndarray) -> None:
        """Adds entries (``logits``: (N, S, 2)); they reach the disk with :meth:`flush`."""
        streams = tuple(streams)
        logits = np.asarray(logits, dtype=np.float32).reshape(len(keys), len(streams), 2)
        for key, row in zip(keys, logits):
            self._rows[key] = (streams, row)
        if keys:
            self._pending.append((streams, list(keys), logits))

    def flush(self) -> Path | None:
        """Writes the entries added since the last flush as new shard(s), atomically; returns the last."""
        written = None
        if self.folder is None:
            self._pending.clear()
            return None
        for streams, keys, logits in self._pending:
            tensors = {
                "keys": torch.from_numpy(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES).copy()),
                "logits": torch.from_numpy(np.ascontiguousarray(logits)),
            }
            data = safetensors_bytes(tensors, metadata={"format": FORMAT, "version": VERSION, "streams": ",".join(streams)})
            name = f"shard-{time.time_ns():020d}-{os.getpid()}.safetensors"
            written = atomic_write(self.folder / name, lambda f, data=data: f.write(data))
        self._pending.clear()
        return written

    def drop_pending(self) -> None:
        """Forgets which entries are not on disk yet (they stay in memory): another process writes them."""
        self._pending.clear()

    def disk_bytes(self) -> int:
        """The size of the shards on disk."""
        if self.folder is None or not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.glob("shard-*.safetensors"))


# --------------------------------------------------------------------------------- the teacher pass
@dataclass
class TeacherPass:
    """What :func:`fill_cache` did (the ``teacher_pass`` of the ``start`` record).

    Attributes:
        needed: distinct entries the run needs.
        computed: entries the teacher computed now (over all ranks).
        forward_calls: batched teacher forward passes (this rank).
        seconds: wall time of the pass.
    """

    needed: int = 0
    computed: int = 0
    forward_calls: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"needed": self.needed, "computed": self.computed, "cached": self.needed - self.computed,
                "forward_calls": self.forward_calls, "seconds": round(self.seconds, 3)}


#: entries computed between two shard writes: a killed teacher pass loses at most this many
FLUSH_EVERY = 2048


def fill_cache(
    cache: TeacherCache,
    entries: Sequence[tuple[bytes, StreamDataset, int, View]],
    *,
    load: Callable[[], Detector],
    config: ModelConfig,
    info: DistInfo,
    batch_size: int,
    num_workers: int = 0,
    progress: bool = False,
) -> TeacherPass:
    """Runs the teacher on the entries ``(key, dataset, index, view)`` the cache lacks, and stores them.

    The missing entries are shared out over the ranks in rounds of :data:`FLUSH_EVERY`; each
    round's outputs are gathered on every rank and rank 0 writes them as one shard, so a killed
    pass resumes from the last round. The teacher (``load()``, a :class:`~forensic.pipeline.Detector`)
    is loaded only if something is missing; it analyses each view as a work item with the view's
    cached face, through the same pipeline as ``python -m forensic predict``.
    """
    start = time.perf_counter()
    todo: dict[bytes, tuple[StreamDataset, int, View]] = {}
    for key, dataset, index, view in entries:
        todo.setdefault(key, (dataset, index, view))
    missing = cache.missing(todo)
    result = TeacherPass(needed=len(todo))
    teacher: Detector | None = None
    bar = None
    if missing and progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(total=len(missing), desc="teacher", unit="img", leave=False)
    for begin in range(0, len(missing), FLUSH_EVERY):
        mine = missing[begin : begin + FLUSH_EVERY][info.rank :: info.world_size]
        logits = np.zeros((0, len(config.streams), 2), dtype=np.float32)
        if mine:
            teacher = teacher or load()
            logits = _run(teacher, [todo[k] for k in mine], config, batch_size, num_workers, result)
        for keys, part in all_gather_objects(info, (mine, logits)):
            cache.put(keys, config.stream_names, part)
            result.computed += len(keys)
        if info.is_main:
            cache.flush()
        else:
            cache.drop_pending()  # rank 0 writes; the others keep the entries in memory only
        if bar is not None:
            bar.update(min(FLUSH_EVERY, len(missing) - begin))
    if bar is not None:
        bar.close()
    if teacher is not None:
        del teacher
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the student trains without the teacher's memory
    result.seconds = time.perf_counter() - start
    return result


class _TeacherViews(Dataset):
    """The views the teacher has to see: ``(position, the rendered image, its cached face or None)``."""

    def __init__(self, entries: Sequence[tuple[StreamDataset, int, View]]) -> None:
        self.entries = tuple(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, position: int) -> tuple[int, np.ndarray, FaceResult | None]:
        dataset, index, view = self.entries[position]
        return position, dataset.render(index, view=view), dataset.face(index, view)


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


def _run(teacher: Detector, entries: list[tuple[StreamDataset, int, View]], config: ModelConfig,
         batch_size: int, num_workers: int, result: TeacherPass) -> np.ndarray:
    """Each entry's raw logits per stream: the views as work items (known faces, no search)."""
    loader = DataLoader(
        _TeacherViews(entries), batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_as_list,
        worker_init_fn=worker_init if num_workers else None, multiprocessing_context="spawn" if num_workers else None,
    )
    items = ((position, WorkItem(image, face=face)) for batch in loader for position, image, face in batch)
    out = np.zeros((len(entries), len(config.streams), 2), dtype=np.float32)
    for position, report in teacher.run(items, batch_size=batch_size, workers=1):
        if isinstance(report, Exception):
            raise report
        out[position] = [report.streams[s].logits for s in config.stream_names]
    result.forward_calls += math.ceil(len(entries) / batch_size)
    return out


# --------------------------------------------------------------------------------- a run's targets
class TeacherTargets:
    """The teacher's outputs a run needs, by (image, view): computed once into the cache, then read as tables.

    Targets are the teacher's calibrated logits (divided by its temperatures): what its users see as P(fake).
    With ``distill.targets=clean`` the teacher sees each training image's clean original, once per image.
    """

    def __init__(self, cfg: DistillConfig, teacher: TeacherSource, streams: tuple[str, ...], cache: TeacherCache, info: DistInfo) -> None:
        self.cfg, self.teacher, self.streams, self.cache, self.info = cfg, teacher, streams, cache, info
        self.device = teacher_device(cfg.distill, info)
        self.dtype = str(resolve_dtype(None if cfg.distill.teacher_dtype == "auto" else cfg.distill.teacher_dtype, self.device))
        self.clean = cfg.distill.targets == "clean"
        self.temperatures = torch.tensor([teacher.config.stream(s).temperature for s in streams])[:, None]

    def key(self, dataset: StreamDataset, index: int, view: View) -> bytes:
        """The cache key: the teacher, its dtype, the file, the view and the face rule it is analysed with."""
        on_view = dataset.view_plan.face_view(index, view, pseudo=False) is not None
        return entry_key(teacher=self.teacher.fingerprint, dtype=self.dtype, file=file_key(dataset.samples[index].path),
                         view=f"{view.key}|faces-on-{'view' if on_view else 'clean'}")

    def _views(self, dataset: StreamDataset) -> list[tuple[View, ...]]:
        return [(View(),) if self.clean else tuple(dataset.view_plan.views(i)) for i in range(len(dataset))]

    def fill(self, train_set: StreamDataset, val_sets: Mapping[str, StreamDataset]) -> TeacherPass:
        """Runs the teacher where the cache lacks an output this run needs (before the first epoch)."""
        entries = [(self.key(train_set, i, v), train_set, i, v) for i, views in enumerate(self._views(train_set)) for v in views]
        entries += [(self.key(ds, i, ds.view(i)), ds, i, ds.view(i)) for ds in val_sets.values() for i in range(len(ds))]
        done = fill_cache(
            self.cache, entries, config=self.teacher.config, info=self.info, batch_size=self.cfg.distill.teacher_batch_size,
            num_workers=self.cfg.data.num_workers, progress=self.cfg.progress,
            load=lambda: load_teacher(self.teacher, device=self.device, dtype=self.cfg.distill.teacher_dtype),
        )
        log.info("teacher outputs: %d needed, %d computed now (%d batches, %.1f s), cache %s",
                 done.needed, done.computed, done.forward_calls, done.seconds, self.cache.folder)
        return done

    def training(self, dataset: StreamDataset) -> torch.Tensor:
        """(N, views, S, 2) targets of the training views ((N, 1, S, 2) with clean targets)."""
        views = self._views(dataset)
        table = torch.zeros((len(dataset), max(len(v) for v in views), len(self.streams), 2))
        for i, row in enumerate(views):
            table[i, : len(row)] = self.cache.table([self.key(dataset, i, v) for v in row], self.streams) / self.temperatures
        return table

    def held_out(self, dataset: StreamDataset) -> torch.Tensor:
        """(N, S, 2) targets of a held-out set."""
        return self.cache.table([self.key(dataset, i, dataset.view(i)) for i in range(len(dataset))], self.streams) / self.temperatures
