"""The registry of explanation methods: a name -> a :class:`~forensic.explain.cam.ScoreCAM` subclass.

Registration is explicit (one entry per method below, no import-time discovery). Every caller
(pipeline, CLI, app, analysis) validates a method name here and nowhere else.
"""

from __future__ import annotations

from .adaptive import AdaptiveScoreCAM
from .cam import ExactScoreCAM, ScoreCAM
from .fast import FastScoreCAM

__all__ = ["METHODS", "get_method", "check_method", "method_names", "method_labels", "method_options"]

#: name -> class; ``fast`` is the default of every interface
METHODS: dict[str, type[ScoreCAM]] = {cls.name: cls for cls in (FastScoreCAM, AdaptiveScoreCAM, ExactScoreCAM)}


def method_names(*, allow_none: bool = False) -> tuple[str, ...]:
    """The valid names, ``fast`` first; with ``none`` (no explanation) when allowed."""
    return (*METHODS, *(("none",) if allow_none else ()))


def method_labels(*, allow_none: bool = False) -> tuple[tuple[str, str], ...]:
    """(label, name) of each method, in :func:`method_names`' order, for a UI's choices."""
    labels = tuple((METHODS[name].label or name, name) for name in METHODS)
    return (*labels, *((("none", "none"),) if allow_none else ()))


def check_method(name: object, *, allow_none: bool = False) -> str:
    """``name`` if it names a method (or ``none`` when allowed), else a one-line ValueError listing the valid names."""
    valid = method_names(allow_none=allow_none)
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"unknown explanation method {name!r}; use one of: {', '.join(valid)}")
    return name


def get_method(name: str) -> type[ScoreCAM]:
    """The class registered as ``name`` (see :func:`check_method` for the error)."""
    return METHODS[check_method(name)]


def method_options(cls: type[ScoreCAM], options: dict) -> dict:
    """The ``options`` that ``cls`` takes, None values dropped (``n_groups`` means nothing to exact Score-CAM)."""
    return {k: v for k, v in options.items() if k in cls.options and v is not None}
