"""forensic.pipeline.staged_map (the overlap of the stages): order, error isolation, bounded look-ahead, overlap."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from forensic.pipeline import staged_map


def _identity_batch(values):
    return list(values)


def test_results_come_back_in_input_order_whatever_the_load_times():
    def load(i):
        time.sleep(0.02 * ((7 * i) % 5))  # later items often finish first
        return i * 10

    out = list(staged_map(range(23), load=load, locate=_identity_batch, finish=_identity_batch, batch_size=4, workers=3))
    assert [s for s, _ in out] == list(range(23))
    assert [r for _, r in out] == [10 * i for i in range(23)]


def test_a_failing_item_stays_attached_to_itself():
    def load(i):
        if i == 3:
            raise OSError("unreadable")
        return i

    def finish(values):
        if 5 in values:  # a whole-batch failure caused by one item
            raise RuntimeError("item 5 breaks the batch")
        return [v + 0.5 for v in values]

    out = dict(staged_map(range(8), load=load, locate=_identity_batch, finish=finish, batch_size=4))
    assert isinstance(out[3], OSError) and isinstance(out[5], RuntimeError)
    assert {k: v for k, v in out.items() if k not in (3, 5)} == {0: 0.5, 1: 1.5, 2: 2.5, 4: 4.5, 6: 6.5, 7: 7.5}


def test_a_locate_failure_for_one_item_spares_the_others():
    def locate(values):
        if any(v == 2 for v in values):
            raise ValueError("no faces for 2")
        return values

    out = dict(staged_map(range(6), load=lambda i: i, locate=locate, finish=_identity_batch, batch_size=3))
    assert isinstance(out[2], ValueError)
    assert [out[i] for i in (0, 1, 3, 4, 5)] == [0, 1, 3, 4, 5]


def test_memory_is_bounded_by_the_look_ahead_not_the_input():
    started = []
    lock = threading.Lock()

    def load(i):
        with lock:
            started.append(i)
        return i

    results = staged_map(itertools.count(), load=load, locate=_identity_batch, finish=_identity_batch, batch_size=4, lookahead=8)
    first = [next(results) for _ in range(4)]
    time.sleep(0.2)
    assert [s for s, _ in first] == [0, 1, 2, 3]
    # the batch being finished, two located batches and the look-ahead: a fixed bound
    assert len(started) <= 4 + 2 * 4 + 8
    results.close()


def test_cpu_stages_overlap_the_device_stage():
    """While the caller's thread finishes batch 0, the helper locates batch 1 and the pool loads
    batch 2 at the same time. Each side waits to see the other start (events, not wall-clock
    timings, which a busy CI machine would break); run one after another, the waits would time out."""
    batch, patience = 4, 30.0
    finishing, locating, loading = threading.Event(), threading.Event(), threading.Event()
    waits = {}

    def load(i):
        if i == 2 * batch:  # the first item of the batch after the two located ahead
            loading.set()
            waits["load saw finish"] = finishing.wait(patience)
        return i

    def locate(values):
        if values[0] == batch:
            locating.set()
            waits["locate saw finish"] = finishing.wait(patience)
        return values

    def finish(values):
        if values[0] == 0:
            finishing.set()
            waits["finish saw locate"] = locating.wait(patience)
            waits["finish saw load"] = loading.wait(patience)
        return values

    n = 4 * batch
    out = list(staged_map(range(n), load=load, locate=locate, finish=finish, batch_size=batch, workers=2))
    assert out == [(i, i) for i in range(n)]
    assert waits == dict.fromkeys(["load saw finish", "locate saw finish", "finish saw locate", "finish saw load"], True)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        list(staged_map([1], load=lambda i: i, locate=_identity_batch, finish=_identity_batch, batch_size=0))
    with pytest.raises(ValueError, match="workers"):
        list(staged_map([1], load=lambda i: i, locate=_identity_batch, finish=_identity_batch, workers=0))
