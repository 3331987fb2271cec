"""Items in, complete reports out: the stages run over a stream of work items, in input order.

Each :class:`~forensic.pipeline.WorkItem` becomes one *job*; a degraded item that wants stability
or its clean report also needs its source's clean original, its *twin*. The planner (in the
caller's thread, as items are consumed) books each twin once per source: the first item of a
source that needs one gets a twin job just before it (an undegraded item of that source is itself
the twin), and later items of the same source reuse it. Twin jobs go through the same stages as the
others, so the clean pass shares batches with the degraded ones; their results are kept in a
bounded book, not yielded.

::

    plan (caller's thread)       items -> jobs, twins booked once per source
    load (pool)                  job -> Loaded                          (loading)
    locate (helper thread)       [Loaded] -> [Prepared]                 (locating, preparing)
    finish (caller's thread)     [Prepared] -> [Report]                 (forwarding, assembling, explaining)
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import ModelConfig
from ..faces import FaceDetector
from ..images import DecodedImage, decode_image
from ..model import ForensicModel
from ..provenance import Provenance, read_provenance
from ..report import Report
from ..runtime import RuntimeConfig
from .assembling import assemble
from .explaining import explain
from .forwarding import Forwarded, HostOutput, forward
from .items import WorkItem, twin_identity
from .loading import Loaded, load
from .locating import locate
from .overlap import staged_map
from .preparing import Prepared, prepare
from .timing import timed

__all__ = ["Stages", "run_items", "REPORT_WINDOW", "FEATURE_WINDOW", "OBJECT_WINDOW"]

#: how many jobs later a clean twin's whole report (pixels included) can still be paired
REPORT_WINDOW = 64
#: how many jobs later a clean twin's features can still serve stability (keyed or path sources)
FEATURE_WINDOW = 4096
#: the same for a source identified by the object itself (the book holds it alive meanwhile)
OBJECT_WINDOW = 16


@dataclass(frozen=True)
class Stages:
    """What the stages need of a detector: its model, faces, forward pass and settings."""

    model: ForensicModel
    config: ModelConfig
    faces: Callable[[], FaceDetector]
    run: Callable[..., Any]
    weights: str | None
    device: str
    runtime: RuntimeConfig | None = None


@dataclass
class _Job:
    position: int
    item: WorkItem
    given: Any = None  # what the caller submitted (yielded back with the result)
    output: bool = True  # yielded to the caller (twin jobs are not)
    provides: tuple | None = None  # the twin identity its clean result serves
    needs: tuple | None = None  # the twin identity whose clean result it uses
    replay: bool = False  # an undegraded item whose twin was already analysed: that report is reused


@dataclass
class _Twin:
    position: int
    source: Any
    explains: set[str]
    host: dict[str, HostOutput] | None = None
    report: Report | None = None
    error: BaseException | None = None


@dataclass
class _Book:
    """The clean twins, booked by the planner and filled by the load and finish stages (thread-safe)."""

    entries: OrderedDict[tuple, _Twin] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def usable(self, ident: tuple, source: Any, position: int, *, explain: str, report: bool) -> bool:
        with self.lock:
            twin = self.entries.get(ident)
            if twin is None or explain not in twin.explains or (ident[0] == "object" and twin.source is not source):
                return False
            return position - twin.position <= _window(ident, report=report)

    def book(self, ident: tuple, source: Any, position: int, explain: str) -> None:
        with self.lock:
            self.entries.pop(ident, None)
            self.entries[ident] = _Twin(position, source if ident[0] == "object" else None, {"none", explain})
            self._prune(position)

    def fail(self, ident: tuple, exc: BaseException) -> None:
        with self.lock:
            if ident in self.entries:
                self.entries[ident].error = exc

    def fill(self, ident: tuple, host: dict[str, HostOutput], report: Report) -> None:
        with self.lock:
            if ident in self.entries:
                self.entries[ident].host, self.entries[ident].report = host, report

    def get(self, ident: tuple) -> _Twin | None:
        with self.lock:
            return self.entries.get(ident)

    def _prune(self, position: int) -> None:
        for ident in list(self.entries):
            twin = self.entries[ident]
            if position - twin.position > _window(ident, report=False):
                del self.entries[ident]
            elif position - twin.position > REPORT_WINDOW:
                twin.report = None  # the pixels go; the features stay for stability


class _Decoded:
    """The last few sources decoded, so that the items of one file (or key) decode it once: the
    first pool thread to ask decodes, the others wait for its result (a failure included)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple, _Decoding] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, item: WorkItem) -> tuple[Any, Provenance | None]:
        """``item``'s source decoded and its provenance hints (a path or keyed source, each read
        once; other sources as they are, with no hints yet).

        Raises:
            forensic.images.ImageError: the source is not a usable image.
        """
        ident = twin_identity(item)
        if ident[0] == "object":
            return item.source, None
        with self.lock:
            entry = self.entries.get(ident)
            first = entry is None
            if first:
                entry = self.entries[ident] = _Decoding()
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
        if first:
            try:
                entry.value = decode_image(item.source, fit=item.max_pixels)
                entry.hints = read_provenance(item.source)
            except Exception as exc:
                entry.value = exc
            finally:
                entry.done.set()
        entry.done.wait()
        if isinstance(entry.value, Exception):
            raise entry.value
        return entry.value, entry.hints


@dataclass
class _Decoding:
    done: threading.Event = field(default_factory=threading.Event)
    value: DecodedImage | Exception | None = None
    hints: Provenance | None = None


def _path_name(source: Any) -> str | None:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else None


def _window(ident: tuple, *, report: bool) -> int:
    if ident[0] == "object":
        return OBJECT_WINDOW
    return REPORT_WINDOW if report else FEATURE_WINDOW


def _plan(items: Iterable[WorkItem | tuple[Any, WorkItem]], book: _Book) -> Iterator[_Job]:
    position = 0
    for entry in items:
        given, item = entry if isinstance(entry, tuple) else (entry, entry)
        ident = twin_identity(item)
        if not item.degraded:
            if book.usable(ident, item.source, position, explain=item.explain, report=True):
                yield _Job(position, item, given, needs=ident, replay=True)
            else:
                book.book(ident, item.source, position, item.explain)
                yield _Job(position, item, given, provides=ident)
        elif item.needs_twin:
            twin = item.twin()
            if not book.usable(ident, item.source, position, explain=twin.explain, report=item.pair):
                book.book(ident, item.source, position, twin.explain)
                yield _Job(position, twin, None, output=False, provides=ident)
                position += 1
            yield _Job(position, item, given, needs=ident)
        else:
            yield _Job(position, item, given)
        position += 1


@dataclass
class _Loaded:
    job: _Job
    loaded: Loaded | None  # None for a replayed report


@dataclass
class _Located:
    job: _Job
    prepared: Prepared | None


def run_items(
    stages: Stages,
    items: Iterable[WorkItem | tuple[Any, WorkItem]],
    *,
    batch_size: int = 8,
    workers: int = 2,
    progress: Callable[[str, float], None] | None = None,
) -> Iterator[tuple[Any, Report | Exception]]:
    """``(what was submitted, report or exception)`` per item, in input order.

    ``items`` are work items, or ``(anything, item)`` pairs whose first element is yielded back. A
    failure (an unreadable file, a bad spec, a failed explanation) is yielded as the exception and
    stays attached to its own item; an item whose clean twin failed gets that failure.
    ``progress`` is passed to the explain stage (for one-image runs).
    """
    book = _Book()
    decoded = _Decoded(2 * batch_size + workers)

    def load_job(job: _Job) -> _Loaded:
        if job.replay:
            return _Loaded(job, None)
        item = job.item
        try:
            start = time.perf_counter()
            source, hints = decoded.get(item)
            seconds = time.perf_counter() - start
            name = item.name if item.name is not None or source is item.source else _path_name(item.source)
            loaded = load(source, degradation=item.degradation, compound=item.compound, seed=item.seed,
                          source=name, max_pixels=item.max_pixels, origin=item.source, provenance=hints)
            loaded.timings["decode"] += seconds
        except Exception as exc:
            if job.provides is not None:
                book.fail(job.provides, exc)
            raise
        return _Loaded(job, loaded)

    def locate_batch(batch: list[_Loaded]) -> list[_Located]:
        todo = [b for b in batch if b.loaded is not None and b.job.item.face is None]  # a known face is not searched
        start = time.perf_counter()
        faces = iter(locate([b.loaded.image for b in todo], stages.config, stages.faces))
        share = (time.perf_counter() - start) / max(1, len(todo))
        out = []
        for b in batch:
            if b.loaded is None:
                out.append(_Located(b.job, None))
                continue
            known = b.job.item.face
            b.loaded.timings["faces"] = b.loaded.timings.get("faces", 0.0) + (share if known is None else 0.0)
            with timed(b.loaded.timings, "prepare"):
                out.append(_Located(b.job, prepare(b.loaded, next(faces) if known is None else known, stages.config)))
        return out

    def finish_batch(batch: list[_Located]) -> list[Report | Exception]:
        todo = [b for b in batch if b.prepared is not None]
        forwarded, host = None, iter(())
        if todo:
            start = time.perf_counter()
            forwarded = forward(stages.model, [b.prepared.inputs for b in todo], run=stages.run,
                                return_norm1=any(b.job.item.explain != "none" for b in todo))
            host = iter(enumerate(forwarded.host()))
            share = (time.perf_counter() - start) / len(todo)
            for b in todo:
                b.prepared.loaded.timings["streams"] = share
        results: list[Report | Exception] = []
        for b in batch:
            try:
                results.append(_finish_one(stages, book, b, None if b.prepared is None else next(host), forwarded, progress))
            except Exception as exc:  # one item's failure (its twin's, its explanation) stays with it
                if b.job.provides is not None:
                    book.fail(b.job.provides, exc)
                results.append(exc)
        return results

    for job, outcome in staged_map(_plan(items, book), load=load_job, locate=locate_batch, finish=finish_batch,
                                   batch_size=batch_size, workers=workers):
        if not job.output:
            continue
        yield job.given, outcome


def _finish_one(
    stages: Stages,
    book: _Book,
    located: _Located,
    host: tuple[int, dict[str, HostOutput]] | None,
    forwarded: Forwarded | None,
    progress: Callable[[str, float], None] | None,
) -> Report:
    job = located.job
    item = job.item
    twin = book.get(job.needs) if job.needs is not None else None
    if job.needs is not None and (twin is None or twin.host is None or (job.replay or item.pair) and twin.report is None):
        reason = twin.error if twin is not None and twin.error is not None else "it was not kept"
        raise RuntimeError(f"the clean original could not be analysed: {reason}")
    if job.replay:
        return replace(twin.report, source=item.name if item.name is not None else twin.report.source)
    index, outputs = host
    report = assemble(located.prepared, outputs, config=stages.config, weights=stages.weights, device=stages.device,
                      clean=twin.host if twin is not None and item.stability else None)
    if item.explain != "none":
        report = explain(stages.model, report, forwarded.item(index), method=item.explain, runtime=stages.runtime,
                         progress=progress, cam_groups=item.cam_groups)
    if item.pair and twin is not None:
        report = replace(report, twin=twin.report)
    if job.provides is not None:
        book.fill(job.provides, outputs, report)
    return report
