"""The operation record (:class:`OpInfo`), the :class:`Params` its function reads, what it reports, the registry :data:`OPS`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from forensic.degrade.ops.params import RANDOM_WORDS, ParamInfo, SpecError

__all__ = ["OPS", "AppliedOp", "DegradeResult", "OpInfo", "Params", "make_op", "register", "strength_param"]


@dataclass(frozen=True)
class AppliedOp:
    """One operation as it was actually applied, with every auto parameter resolved.

    Attributes:
        name: Operation name (a key of :data:`OPS`).
        params: Resolved parameter values (what the user would write to reproduce it), plus a
            few informative derived values (the ``crf`` of a DeeperForensics-1.0 compression
            level, the prelude's ``steps``).
        stage: ``"op"`` for a normal step; the compound engine also uses ``"prelude"`` and
            ``"final"`` (the resize back to the input size).
    """

    name: str
    params: Mapping[str, Any]
    stage: str = "op"

    def __str__(self) -> str:
        if not self.params:
            return self.name
        # rounded for display; ``params`` keeps the exact values
        inner = ",".join(f"{k}={_display(v)}" for k, v in self.params.items())
        return f"{self.name}:{inner}"


def _display(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):  # e.g. the prelude's steps
        return "(" + " > ".join(map(str, value)) + ")"
    return str(value)


@dataclass(frozen=True)
class DegradeResult:
    """A degraded image and the list of operations applied to it, in order."""

    image: np.ndarray
    applied: tuple[AppliedOp, ...] = ()


@dataclass(frozen=True)
class OpInfo:
    """A registered operation: its name, parameters and implementation.

    Call it like a function: ``OPS["jpeg"](img, rng=rng, quality=20)``.
    """

    name: str
    description: str
    params: tuple[ParamInfo, ...]
    fn: Callable[[np.ndarray, Params], np.ndarray] = field(repr=False, compare=False)
    group: str = "misc"
    paper_index: int | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def has_strength(self) -> bool:
        return "strength" in self.param_names

    def param(self, name: str) -> ParamInfo:
        for info in self.params:
            if info.name == name:
                return info
        raise SpecError(self._unknown_param_message(name))

    def _unknown_param_message(self, name: str) -> str:
        if not self.params:
            return f"{self.name}: takes no parameters, got {name!r}"
        valid = "; ".join(f"{p.name} ({p.range_text()})" for p in self.params)
        return f"{self.name}: unknown parameter {name!r}; valid parameters: {valid}"

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check names, types and ranges; return explicit values in declaration order.

        Auto values (``None``, ``auto``, ``random``) are dropped: absent means auto.

        Raises:
            SpecError: unknown parameter (message lists the valid ones) or a bad value.
        """
        for name in params:
            self.param(name)  # raises on unknown names
        out: dict[str, Any] = {}
        for info in self.params:
            if info.name in params:
                value = info.coerce(params[info.name], op=self.name)
                is_auto_word = bool(info.choices) and value == info.default and info.is_auto_default
                if value is not None and not is_auto_word:
                    out[info.name] = value
        return out

    def apply(
        self, img: np.ndarray, *, rng: np.random.Generator, params: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Apply the operation and report the parameters it actually used.

        Args:
            img: float32 RGB image in [0, 1], HxWx3.
            rng: The only source of randomness.
            params: Explicit parameter values; missing ones are auto.

        Returns:
            The float32 image clipped to [0, 1] (same shape except for ``resize``) and the
            resolved parameters.
        """
        _check_float_image(img, self.name)
        resolver = Params(self, self.validate(params or {}), rng)
        out = np.asarray(self.fn(img, resolver), dtype=np.float32)
        np.clip(out, 0.0, 1.0, out=out)
        # declared parameters first, in declaration order, then informative extras
        order = {name: i for i, name in enumerate(self.param_names)}
        resolved = dict(sorted(resolver.resolved.items(), key=lambda kv: order.get(kv[0], len(order))))
        return out, resolved

    def __call__(self, img: np.ndarray, *, rng: np.random.Generator, **params: Any) -> np.ndarray:
        return self.apply(img, rng=rng, params=params)[0]

    def describe(self) -> str:
        """Multi-line help: name, description, one line per parameter."""
        tag = f" [paper op {self.paper_index}]" if self.paper_index is not None else ""
        lines = [f"{self.name}{tag}: {self.description}"]
        lines += [f"    {p.describe()}" for p in self.params]
        return "\n".join(lines)


class Params:
    """The ``p`` an operation's function receives: resolves auto parameters lazily, records every value used.

    Attributes:
        op: The operation being applied.
        rng: The only source of randomness.
        resolved: Every value the operation read or set, by name (what :class:`AppliedOp` reports).
    """

    def __init__(self, op: OpInfo, values: Mapping[str, Any], rng: np.random.Generator) -> None:
        self.op = op
        self.rng = rng
        self._values = values
        self.resolved: dict[str, Any] = {}

    def given(self, name: str) -> bool:
        """Whether the caller set ``name`` explicitly."""
        return name in self._values

    def get(self, name: str, auto: Callable[[], Any] | None = None) -> Any:
        """The explicit value, else the declared default, else ``auto()``."""
        if name in self.resolved:
            return self.resolved[name]
        info = self.op.param(name)
        value = self._values.get(name)
        if value is None:
            if not info.is_auto_default:
                value = info.default
            elif auto is None:  # pragma: no cover - a bug in an op definition
                raise RuntimeError(f"{self.op.name}: no auto rule for {name!r}")
            else:
                value = auto()
        if isinstance(value, np.generic):
            value = value.item()
        if info.type is int and not info.choices:
            value = int(value)
        elif info.type is float:
            value = float(value)
        self.resolved[name] = value
        return value

    def choice(self, name: str, weights: Mapping[str, float] | None = None) -> str:
        """A choice parameter; ``random``/``auto`` draws from ``weights`` (default: uniform)."""
        info = self.op.param(name)
        value = self._values.get(name, info.default)
        if value in RANDOM_WORDS:
            options = weights or {c: 1.0 for c in info.choices if c not in RANDOM_WORDS}
            keys = list(options)
            probs = np.asarray([options[k] for k in keys], dtype=np.float64)
            value = keys[int(self.rng.choice(len(keys), p=probs / probs.sum()))]
        self.resolved[name] = value
        return value

    def set(self, name: str, value: Any) -> Any:
        """Record a value decided by the operation itself (e.g. a mode implied by other params)."""
        self.resolved[name] = value
        return value

    @property
    def strength(self) -> float:
        return self.get("strength")


def _check_float_image(img: np.ndarray, op: str) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.float32 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{getattr(img, 'dtype', type(img).__name__)} {getattr(img, 'shape', '')}"
        raise TypeError(f"{op}: expects a float32 HxWx3 image in [0, 1] (use as_float), got {got}")


_REGISTRY: dict[str, OpInfo] = {}
OPS: Mapping[str, OpInfo] = MappingProxyType(_REGISTRY)
"""Every registered operation by name (read-only; the family modules fill it as they are imported)."""


def make_op(
    name: str,
    description: str,
    params: Sequence[ParamInfo] = (),
    *,
    group: str = "misc",
    paper_index: int | None = None,
) -> Callable[[Callable[[np.ndarray, Params], np.ndarray]], OpInfo]:
    """Decorator turning ``fn(img, p) -> img`` into an :class:`OpInfo` (not registered)."""

    def wrap(fn: Callable[[np.ndarray, Params], np.ndarray]) -> OpInfo:
        return OpInfo(name, description, tuple(params), fn, group=group, paper_index=paper_index)

    return wrap


def register(
    name: str,
    description: str,
    params: Sequence[ParamInfo] = (),
    *,
    group: str = "misc",
    paper_index: int | None = None,
) -> Callable[[Callable[[np.ndarray, Params], np.ndarray]], OpInfo]:
    """Like :func:`make_op`, and adds the operation to :data:`OPS`."""

    def wrap(fn: Callable[[np.ndarray, Params], np.ndarray]) -> OpInfo:
        info = make_op(name, description, params, group=group, paper_index=paper_index)(fn)
        if name in _REGISTRY:  # pragma: no cover - a duplicate is a bug in the ops package
            raise RuntimeError(f"operation {name!r} registered twice")
        _REGISTRY[name] = info
        return info

    return wrap


def strength_param(help_text: str = "severity; used only for the parameters left on auto") -> ParamInfo:
    """The ``strength`` parameter most operations declare (severity in [0, 1], default 0.5)."""
    return ParamInfo("strength", float, 0.5, 0.0, 1.0, help_text)
