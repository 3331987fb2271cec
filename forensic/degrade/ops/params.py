"""An operation's declared parameters (:class:`ParamInfo`: type, range, default) and :class:`SpecError`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RANDOM_WORDS", "ParamInfo", "SpecError", "format_value"]

#: the words that mean "draw it" for a choice parameter (and "auto" for any parameter)
RANDOM_WORDS = ("random", "auto")
# Spec syntax characters cannot appear in free-text values.
_FORBIDDEN_TEXT = set(";,=:")


class SpecError(ValueError):
    """A degradation spec, or an operation's parameters, are invalid (message says what is valid)."""


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of an operation.

    Attributes:
        name: Parameter name as written in a spec (``quality``).
        type: ``int``, ``float`` or ``str``.
        default: Default value; ``None`` means auto (derived from ``strength`` and/or ``rng``).
            For choice parameters the auto default is spelled ``"random"`` or ``"auto"``.
        min: Inclusive lower bound for numbers.
        max: Inclusive upper bound for numbers.
        help: One line for ``--help``.
        choices: Allowed words for a ``str`` choice parameter (empty: free text).
    """

    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def is_auto_default(self) -> bool:
        return self.default is None or self.default in RANDOM_WORDS

    def range_text(self) -> str:
        """Human-readable type and range, e.g. ``int 1..100`` or ``one of random|gauss|box``."""
        if self.choices:
            return "one of " + "|".join(self.choices)
        if self.type is str:
            return "text"
        kind = self.type.__name__
        return f"{kind} {format_value(self.min)}..{format_value(self.max)}"

    def describe(self) -> str:
        default = "auto" if self.default is None else format_value(self.default)
        return f"{self.name}: {self.range_text()} (default {default}) - {self.help}"

    def coerce(self, value: Any, *, op: str) -> Any:
        """Check and convert one value (a spec string or a Python value).

        Returns ``None`` for an auto value of a numeric parameter, the default word for a
        ``random``/``auto`` choice. Raises :class:`SpecError` with the valid range otherwise.
        """
        where = f"{op}: parameter {self.name!r}"
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in RANDOM_WORDS and self.is_auto_default:
                return None if self.default is None else self.default
        else:
            text = None
            if value is None and self.is_auto_default:
                return None if self.default is None else self.default
        if self.choices:
            word = str(value).strip().lower()
            if word not in self.choices:
                raise SpecError(f"{where} must be {self.range_text()}, got {value!r}")
            return word
        if self.type is str:
            if text is None or not text or len(text) > 64 or _FORBIDDEN_TEXT & set(text):
                raise SpecError(f"{where} must be 1-64 characters without ; , = :, got {value!r}")
            return text
        number = self._to_number(value if text is None else text, where)
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            shown = format_value(number) if abs(number) < 1e15 else f"{float(number):g}"  # never 309 digits
            raise SpecError(f"{where} must be {self.range_text()}, got {shown}")
        return number

    def _to_number(self, value: Any, where: str) -> int | float:
        if isinstance(value, (bool, np.bool_)):
            raise SpecError(f"{where} must be {self.range_text()}, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SpecError(f"{where} must be {self.range_text()}, got {value!r}") from None
        if not math.isfinite(number):
            raise SpecError(f"{where} must be a finite number, got {value!r}")
        if self.type is int:
            if number != int(number):
                raise SpecError(f"{where} must be an integer ({self.range_text()}), got {value!r}")
            return int(number)
        return number


def format_value(value: Any) -> str:
    """Shortest text that parses back to the same number."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, tuple):
        return "x".join(format_value(v) for v in value)
    return str(value)
