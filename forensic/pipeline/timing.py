"""Per-stage timing of one item: seconds added to a report's ``timings``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["timed"]


@contextmanager
def timed(timings: dict[str, float], stage: str, share: int = 1) -> Iterator[None]:
    """Adds the seconds spent in the block (divided by ``share`` images) to ``timings[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) / share
