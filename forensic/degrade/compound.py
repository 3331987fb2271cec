"""The paper's compound degradation engine (its training augmentation), driven by one seeded rng.

Order of events, all drawn from the ``rng`` passed in:

1. With probability ``prelude_p``: the ``prelude`` op, 1..``max_prelude_cycles`` cycles alternating
   a JPEG round trip (quality uniform in 10..95) and a resize relative to the *original* size (down
   as far as ``0.25 / s``, interpolation nearest/linear/cubic/area), starting with either.
2. The 15 operations of :data:`~forensic.degrade.ops.PAPER_OPS` in a random order, each applied
   with probability ``op_p`` (the distractor with ``distractor_p``), each with its own strength
   ``s = min(Beta(1.2, 1.2), strength_cap)`` (or ``fixed_strength``).
3. A resize back to the input size with a random interpolation, if the size changed.

The user-facing ``strength`` in [0, 1] (the app's slider) scales the engine linearly:
``op_p``, ``prelude_p`` and ``distractor_p`` are multiplied by ``strength``, every per-op
strength is multiplied by ``strength``, and the JPEG quality range becomes
``[95 - 85 * strength, 95]``. So ``strength=0`` returns the input untouched (same bytes) and
``strength=1`` with the default :class:`CompoundConfig` is exactly the paper's training setting
(``op_p=0.3``, Beta(1.2, 1.2) strengths capped at 0.8, JPEG 10..95). For harsher settings than the
paper trained on, pass a config (e.g. ``CompoundConfig(op_p=0.5, strength_cap=1.0)``). The paper
degrades only half of its training images (``global_p=0.5``); that coin belongs to the trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from forensic.degrade.ops import (
    INTERPOLATIONS,
    OPS,
    PAPER_OPS,
    AppliedOp,
    DegradeResult,
    ParamInfo,
    Params,
    as_float,
    as_uint8,
    make_op,
    resize_to,
    untouched,
)

__all__ = ["COMPOUND_OP", "CompoundConfig", "CompoundResult", "compound_degrade"]

logger = logging.getLogger(__name__)

CompoundResult = DegradeResult
"""The degraded image and the ordered tuple of :class:`AppliedOp` (stages prelude/op/final)."""

_INTERPS = tuple(INTERPOLATIONS)  # the final resize back draws one of these
_MAX_QUALITY = 95  # the paper draws JPEG qualities in jpeg_quality..95


@dataclass(frozen=True)
class CompoundConfig:
    """Settings of the compound engine at ``strength=1`` (see the module docstring).

    Attributes:
        op_p: Probability of applying each of the 15 operations.
        prelude_p: Probability of the JPEG/resize prelude (``None``: same as ``op_p``).
        distractor_p: Probability of operation 14 (distractor), which replaces ``op_p`` for it.
        strength_cap: Per-op strengths drawn from Beta are capped at this value.
        beta: Shape parameters (a, b) of the Beta distribution of per-op strengths.
        fixed_strength: If set, every op uses this strength instead of a Beta draw.
        max_prelude_cycles: The prelude runs 1..this many JPEG/resize cycles (at most 10).
        jpeg_quality: Lowest JPEG quality (prelude and op 6) at ``strength=1``; the highest is 95.
    """

    op_p: float = 0.3
    prelude_p: float | None = None
    distractor_p: float = 0.15
    strength_cap: float = 0.8
    beta: tuple[float, float] = (1.2, 1.2)
    fixed_strength: float | None = None
    max_prelude_cycles: int = 5
    jpeg_quality: int = 10

    def __post_init__(self) -> None:
        for name in ("op_p", "distractor_p", "strength_cap"):
            _check_unit(name, getattr(self, name))
        if self.prelude_p is not None:
            _check_unit("prelude_p", self.prelude_p)
        if self.fixed_strength is not None:
            _check_unit("fixed_strength", self.fixed_strength)
        if len(self.beta) != 2 or min(self.beta) <= 0:
            raise ValueError(f"beta must be two positive numbers, got {self.beta!r}")
        if not 1 <= self.max_prelude_cycles <= 10:
            raise ValueError(f"max_prelude_cycles must be in 1..10, got {self.max_prelude_cycles}")
        if not 1 <= self.jpeg_quality <= _MAX_QUALITY:
            raise ValueError(f"jpeg_quality must be in 1..{_MAX_QUALITY}, got {self.jpeg_quality}")

    @property
    def effective_prelude_p(self) -> float:
        return self.op_p if self.prelude_p is None else self.prelude_p


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


@dataclass(frozen=True)
class _Scaled:
    """The config after applying the user-facing strength (see the module docstring)."""

    op_p: float
    prelude_p: float
    distractor_p: float
    strength: float
    quality: tuple[int, int]


def _scale(config: CompoundConfig, strength: float) -> _Scaled:
    low, high = config.jpeg_quality, _MAX_QUALITY
    return _Scaled(
        op_p=config.op_p * strength,
        prelude_p=config.effective_prelude_p * strength,
        distractor_p=config.distractor_p * strength,
        strength=strength,
        quality=(int(round(high - (high - low) * strength)), high),
    )


def _op_strength(rng: np.random.Generator, config: CompoundConfig, scaled: _Scaled) -> float:
    if config.fixed_strength is not None:
        base = config.fixed_strength
    else:
        base = min(float(rng.beta(*config.beta)), config.strength_cap)
    return base * scaled.strength


def compound_degrade(
    img: np.ndarray,
    *,
    strength: float,
    rng: np.random.Generator,
    config: CompoundConfig = CompoundConfig(),
) -> CompoundResult:
    """Degrade an image with the paper's compound engine.

    Args:
        img: RGB image, uint8 (0..255) or float (0..1), HxWx3.
        strength: User-facing strength in [0, 1]: 0 = untouched, 1 = the config as given (with the
            default config, the paper's training setting). See the module docstring.
        rng: The only source of randomness: the same seed gives the same bytes.
        config: Engine settings at ``strength=1``.

    Returns:
        A :class:`CompoundResult` with an image of the input's shape and dtype (uint8 stays
        uint8, float becomes float32) and the operations applied, in order.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {img.shape}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    if strength == 0.0:
        return CompoundResult(untouched(img), ())
    scaled = _scale(config, strength)
    x = as_float(img)
    h, w = x.shape[:2]
    applied: list[AppliedOp] = []
    if rng.random() < scaled.prelude_p:
        params = {
            "strength": _op_strength(rng, config, scaled),
            "cycles": int(rng.integers(1, config.max_prelude_cycles + 1)),
            "min_quality": scaled.quality[0],
        }
        x, resolved = OPS["prelude"].apply(x, rng=rng, params=params)
        applied.append(AppliedOp("prelude", resolved, stage="prelude"))
    for index in rng.permutation(len(PAPER_OPS)):
        name = PAPER_OPS[index]
        p = scaled.distractor_p if name == "distractor" else scaled.op_p
        if rng.random() >= p:
            continue
        op = OPS[name]
        params: dict[str, Any] = {}
        if op.has_strength:
            params["strength"] = _op_strength(rng, config, scaled)
        if name == "jpeg":  # the paper draws the quality, not a strength; the slider narrows its range
            params["quality"] = int(rng.integers(scaled.quality[0], scaled.quality[1] + 1))
        x, resolved = op.apply(x, rng=rng, params=params)
        applied.append(AppliedOp(name, resolved))
    if x.shape[:2] != (h, w):
        interp = _INTERPS[int(rng.integers(len(_INTERPS)))]
        x = resize_to(x, (h, w), interp)
        applied.append(AppliedOp("resize", {"size": f"{w}x{h}", "interp": interp}, stage="final"))
    logger.debug("compound strength %.3g applied %d ops", strength, len(applied))
    if not applied:  # nothing drawn: keep the exact input bytes
        return CompoundResult(untouched(img), ())
    out = as_uint8(x) if img.dtype == np.uint8 else x
    return CompoundResult(out, tuple(applied))


def config_from_params(params: Mapping[str, Any]) -> CompoundConfig:
    """The :class:`CompoundConfig` for a spec's ``compound`` step (``op_p``, ``cap`` overrides)."""
    overrides: dict[str, Any] = {}
    if params.get("op_p") is not None:
        overrides["op_p"] = float(params["op_p"])
    if params.get("cap") is not None:
        overrides["strength_cap"] = float(params["cap"])
    return CompoundConfig(**overrides)


def _compound_step(x: np.ndarray, p: Params) -> np.ndarray:
    config = config_from_params({name: p.get(name) for name in ("op_p", "cap") if p.given(name)})
    return compound_degrade(x, strength=p.strength, rng=p.rng, config=config).image


COMPOUND_OP = make_op(
    "compound",
    "The paper's compound engine (random subset of the 15 paper ops, in random order)",
    [
        ParamInfo("strength", float, 0.5, 0.0, 1.0, "0 = untouched, 1 = the paper's training setting"),
        ParamInfo("op_p", float, None, 0.0, 1.0, "per-op probability at strength 1 (auto: 0.3)"),
        ParamInfo("cap", float, None, 0.0, 1.0, "cap on the Beta per-op strengths (auto: 0.8)"),
    ],
    group="compound",
)(_compound_step)
"""The engine as one spec step, ``compound:strength=0.5`` (not in ``OPS``: it is made of them)."""
