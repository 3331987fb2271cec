"""Small helpers for the studies' tables: summaries of a column of numbers, and CSV writing."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Summary", "summarize", "write_csv", "read_csv", "finite"]


def finite(values: Iterable[Any]) -> np.ndarray:
    """The finite numbers among ``values`` (None and NaN dropped) as float64."""
    out = [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v))]
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class Summary:
    """Mean and spread of a column (NaN when empty); ``n`` counts the finite values."""

    n: int
    mean: float
    std: float
    median: float
    q25: float
    q75: float
    min: float
    max: float


def summarize(values: Iterable[Any]) -> Summary:
    """Mean, population standard deviation, quartiles and range of the finite values."""
    v = finite(values)
    if v.size == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan, nan)
    q25, median, q75 = np.percentile(v, [25, 50, 75])
    return Summary(int(v.size), float(v.mean()), float(v.std()), float(median), float(q25), float(q75), float(v.min()), float(v.max()))


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return "" if value is None else value


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """Writes ``rows`` with exactly ``columns`` (missing cells and NaN are empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV written by :func:`write_csv`, as strings."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))
