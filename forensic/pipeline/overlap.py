"""Run a three-stage pipeline over many items with the stages overlapping, in input order.

::

    per item, in a pool of threads      load(source)          -> value   (decode, degrade)
    per batch, in one helper thread     locate(values)        -> values  (face detection)
    per batch, in the caller's thread   finish(values)        -> results (device pass, reports)

While the caller's thread runs batch *k* on the device, the helper thread locates faces in batch
*k + 1* and the pool loads the images after it. Memory is bounded: at most ``lookahead`` items are
loaded ahead and at most two located batches wait, whatever the input's length. A failure stays
attached to its own item: a stage that raises for a whole batch is retried one item at a time, so
only the culprit fails and nothing already computed is lost.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["staged_map", "Outcome"]

log = logging.getLogger(__name__)

S = TypeVar("S")
#: a value, or the exception that replaced it
Outcome = Any

_LOCATED_AHEAD = 2


def staged_map(
    sources: Iterable[S],
    *,
    load: Callable[[S], Any],
    locate: Callable[[list[Any]], Sequence[Any]],
    finish: Callable[[list[Any]], Sequence[Any]],
    batch_size: int = 8,
    workers: int = 2,
    lookahead: int | None = None,
) -> Iterator[tuple[S, Outcome]]:
    """Yields ``(source, result or exception)`` for every source, in input order.

    Args:
        sources: the items (an iterator is consumed lazily).
        load: per item, in the pool.
        locate: per batch of loaded values, in one helper thread; returns one value per input
            (an exception instance marks a failure of that item).
        finish: per batch of located values, in the caller's thread; one result per input.
        batch_size: items per batch.
        workers: threads of the load pool.
        lookahead: items loaded ahead of the batch being finished (default ``2 * batch_size``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    lookahead = max(batch_size, lookahead if lookahead is not None else 2 * batch_size)
    items = iter(sources)
    loading: deque[tuple[S, Future]] = deque()
    located: deque[Future] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="forensic-load")
    helper = ThreadPoolExecutor(1, thread_name_prefix="forensic-locate")

    def top_up() -> None:
        while len(loading) < lookahead:
            try:
                source = next(items)
            except StopIteration:
                return
            loading.append((source, pool.submit(_guarded, load, source)))

    def next_batch() -> list[tuple[S, Outcome]]:
        top_up()
        batch = []
        while loading and len(batch) < batch_size:
            source, future = loading.popleft()
            batch.append((source, future.result()))
            top_up()
        return batch

    try:
        while True:
            while len(located) < _LOCATED_AHEAD:
                batch = next_batch()
                if not batch:
                    break
                located.append(helper.submit(_run_batch, locate, batch))
            if not located:
                return
            batch = located.popleft().result()
            yield from _run_batch(finish, batch)
    finally:
        for _, future in loading:
            future.cancel()
        for future in located:
            future.cancel()
        # a finished map joins its threads, so the next call's threads never run beside them (each thread
        # that allocates beside others takes a malloc arena of its own); one stopped early does not wait
        # for a load still running
        running = any(not f.done() for _, f in loading) or any(not f.done() for f in located)
        pool.shutdown(wait=not running, cancel_futures=True)
        helper.shutdown(wait=not running, cancel_futures=True)


def _guarded(fn: Callable[[Any], Any], arg: Any) -> Outcome:
    try:
        return fn(arg)
    except Exception as exc:  # one bad item must never stop the others
        log.debug("item failed: %s", exc, exc_info=True)
        return exc


def _run_batch(stage: Callable[[list[Any]], Sequence[Any]], batch: list[tuple[S, Outcome]]) -> list[tuple[S, Outcome]]:
    """``stage`` over the batch's good values; a batch-wide failure is retried per item."""
    good = [i for i, (_, value) in enumerate(batch) if not isinstance(value, BaseException)]
    out = list(batch)
    if not good:
        return out
    try:
        results = list(stage([batch[i][1] for i in good]))
        if len(results) != len(good):
            raise RuntimeError(f"a stage returned {len(results)} results for {len(good)} items")
    except Exception as exc:
        if len(good) == 1:
            results = [exc]
        else:
            log.warning("a batch of %d failed (%s); retrying its items one at a time", len(good), exc)
            results = [_run_batch(stage, [batch[i]])[0][1] for i in good]
    for i, result in zip(good, results):
        out[i] = (batch[i][0], result)
    return out
