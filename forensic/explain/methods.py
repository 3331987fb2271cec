"""The registry of explanation methods: a name -> a :class:`~forensic.explain.types.CamMethod` subclass.

Registration is explicit (one entry per method below, no import-time discovery). Every caller
(pipeline, CLI, app, analysis) validates a method name here and nowhere else.
"""

from __future__ import annotations

from .adaptive import AdaptiveScoreCAM
from .exact import ExactScoreCAM
from .fast import FastScoreCAM
from .types import CamMethod

__all__ = ["METHODS", "get_method", "check_method", "method_names", "method_labels", "method_options", "make_method"]

#: name -> class; ``fast`` is the default of every interface
METHODS: dict[str, type[CamMethod]] = {cls.name: cls for cls in (FastScoreCAM, AdaptiveScoreCAM, ExactScoreCAM)}


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


def get_method(name: str) -> type[CamMethod]:
    """The class registered as ``name`` (see :func:`check_method` for the error)."""
    return METHODS[check_method(name)]


def method_options(cls: type[CamMethod], options: dict) -> dict:
    """The ``options`` that ``cls`` takes, None values dropped (``n_groups`` means nothing to exact Score-CAM)."""
    return {k: v for k, v in options.items() if k in cls.options and v is not None}


def make_method(name: str, **options) -> CamMethod:
    """The method registered as ``name``, built with the ``options`` it takes (the others are dropped)."""
    cls = get_method(name)
    return cls(**method_options(cls, options))
