"""Reading one field of an untrusted ``config.json``: :class:`ConfigError` and the typed checks.

Each check returns the value, or raises :class:`ConfigError` naming the field (``where``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

__all__ = [
    "ConfigError",
    "as_bool",
    "as_choice",
    "as_int",
    "as_list",
    "as_number",
    "as_object",
    "as_optional_str",
    "as_str",
    "check_bounded",
    "check_inside",
    "only_known",
    "required",
]


class ConfigError(ValueError):
    """A ``config.json`` that cannot be used: the message names the field and what is wrong with it.

    Attributes:
        field: the field's path, e.g. ``streams[0].temperature`` ("" for the file as a whole).
        problem: what is wrong, e.g. ``must be a number > 0, got -1.0``.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"config.json field {field} {problem}" if field else f"config.json {problem}")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"must be a JSON object, not {_kind(value)}")
    return value


def as_list(value: Any, where: str, low: int, high: int) -> list:
    if not isinstance(value, list):
        raise ConfigError(where, f"must be a list, not {_kind(value)}")
    if not low <= len(value) <= high:
        count = f"{low}" if low == high else f"{low} to {high}"
        raise ConfigError(where, f"must hold {count} items, got {len(value)}")
    return value


def required(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}.{key}" if where else key, "is missing (it is required)")
    return data[key]


def only_known(data: Mapping[str, Any], allowed: set[str] | Mapping, where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        field = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(field, f"is not a known field (known: {', '.join(sorted(allowed))})")


def as_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, f"must be a string, not {_kind(value)}")
    return value


def as_optional_str(value: Any, where: str) -> str | None:
    return None if value is None else as_str(value, where)


def as_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(where, f"must be true or false, not {_show(value)}")
    return value


def as_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(where, f"must be one of {', '.join(choices)}; got {_show(value)}")
    return value


def as_int(value: Any, where: str, low: int | None, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, f"must be an integer, not {_show(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise ConfigError(where, f"must be an integer {bound}, got {value}")
    return value


def as_number(
    value: Any, where: str, low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(where, f"must be a finite number, not {_show(value)}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        if high is None:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(where, f"must be a number {bound}, got {value:g}")
    return float(value)


def check_bounded(data: Mapping[str, Any], bounds: Mapping[str, tuple[type, float, float]], where: str) -> None:
    only_known(data, bounds, where)
    for key, value in data.items():
        kind, low, high = bounds[key]
        if kind is int:
            as_int(value, f"{where}.{key}", int(low), int(high))
        else:
            as_number(value, f"{where}.{key}", low, high)


def check_inside(path: str, where: str) -> None:
    """A file name from the config must stay inside its folder: relative, no ``..``, no drive."""
    posix, windows = PurePosixPath(path), PureWindowsPath(path)
    if not path or posix.is_absolute() or windows.is_absolute() or windows.drive or path.startswith(("/", "\\")):
        raise ConfigError(where, f"must be a file name inside the weights folder, not the absolute path {path!r}")
    if ".." in posix.parts or ".." in windows.parts or "\\" in path or "\x00" in path:
        raise ConfigError(where, f"must be a file name inside the weights folder, not {path!r}")
