"""The paper's "calibrated, discretized" vote of the three streams (SEED_FACTS section 4).

Each stream's P(fake) is rounded to ``decimals`` (one decimal: the 0.1 grid), the rounded values
are averaged with fixed weights (texture 2, face 1, fusion 2), and the mean is rounded again, so
the ensemble takes one of only 11 values. Rounding is half-to-even on the *decimal* value a reader
sees (see :func:`round_half_even`), and the weighted mean is computed in exact decimal arithmetic
so that a true tie is seen as a tie and not as a binary-float near miss.

Real calibration (temperature scaling of each stream's logits) lives in
:mod:`forensic.calibration` and happens *before* the vote; this module only combines
probabilities.
"""

from __future__ import annotations

import decimal
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .config import VoteConfig

__all__ = ["VoteResult", "possible_outputs", "round_half_even", "vote"]

logger = logging.getLogger(__name__)

# Enough digits that a weighted mean of short decimals is exact whenever it is a finite decimal
# (28, Python's default, would do; we do not rely on the caller's global context).
_PRECISION = 50


def _to_decimal(x: float, what: str) -> Decimal:
    """The decimal a reader sees when the float is printed (``repr`` is the shortest round-trip)."""
    value = float(x)  # numpy scalars: repr(np.float64(0.35)) is "np.float64(0.35)" in numpy 2
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return Decimal(repr(value))


def _quantum(decimals: int) -> Decimal:
    if not isinstance(decimals, int) or isinstance(decimals, bool) or decimals < 0:
        raise ValueError(f"decimals must be a non-negative integer, got {decimals!r}")
    return Decimal(1).scaleb(-decimals)


def _round_decimal(value: Decimal, decimals: int) -> Decimal:
    with decimal.localcontext() as ctx:
        ctx.prec = _PRECISION
        return value.quantize(_quantum(decimals), rounding=decimal.ROUND_HALF_EVEN)


def round_half_even(x: float, decimals: int = 1) -> float:
    """Rounds ``x`` half to even at ``decimals`` decimals, on the decimal value of the float.

    Python's ``round(0.35, 1)`` gives 0.3, because the float nearest 0.35 is
    0.34999999999999997779...; a reader of "round half to even at one decimal" expects 0.4 (the
    even neighbour of the tie 0.35). We therefore round the *shortest decimal that prints as this
    float* (``repr``), with :data:`decimal.ROUND_HALF_EVEN`: 0.25 -> 0.2, 0.35 -> 0.4, 0.45 -> 0.4,
    0.15 -> 0.2, 0.05 -> 0.0, 0.95 -> 1.0.

    Args:
        x: a finite number (Python or numpy float or int).
        decimals: number of decimals to keep (>= 0).

    Returns:
        The rounded value as a float.

    Raises:
        ValueError: ``x`` is NaN or infinite, or ``decimals`` is negative.
    """
    return float(_round_decimal(_to_decimal(x, "the value to round"), decimals))


def possible_outputs(config: VoteConfig = VoteConfig()) -> tuple[float, ...]:
    """The grid of values the vote can return: (0.0, 0.1, ..., 1.0) for ``decimals=1``."""
    _quantum(config.decimals)  # validates decimals
    steps = 10**config.decimals
    return tuple(float(Decimal(k).scaleb(-config.decimals)) for k in range(steps + 1))


@dataclass(frozen=True)
class VoteResult:
    """The outcome of :func:`vote`.

    Attributes:
        prob_fake: the ensemble P(fake), on the grid of :func:`possible_outputs`.
        label: ``"fake"`` if ``prob_fake >= threshold`` else ``"real"``.
        stream_probs: each stream's P(fake) rounded to the grid (abstaining streams included).
        weights: the weights actually used (the config weight, 0 for an abstaining stream).
        abstained: streams whose vote was dropped (the face stream under the ``abstain`` policy
            when it had no usable face crop).
        mean: the weighted mean of the rounded stream values, before the final rounding.
        threshold: the threshold of the rule (see :func:`forensic.verdict.rule_text`).
    """

    prob_fake: float
    label: str
    stream_probs: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    abstained: tuple[str, ...] = ()
    mean: float = math.nan
    threshold: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "prob_fake": self.prob_fake,
            "label": self.label,
            "stream_probs": dict(self.stream_probs),
            "weights": dict(self.weights),
            "abstained": list(self.abstained),
            "mean": self.mean,
            "threshold": self.threshold,
        }


def vote(
    probs: Mapping[str, float],
    config: VoteConfig = VoteConfig(),
    *,
    face_fallback: bool = False,
) -> VoteResult:
    """The discretized weighted vote of the streams' P(fake).

    Each stream present in ``probs`` is rounded half-to-even to ``config.decimals``; the rounded
    values are averaged with ``config.weights``, renormalised over the streams present (a model may
    have only one or two streams; weights of absent streams are ignored); the mean is rounded again
    and labelled ``fake`` at ``>= config.threshold``.

    Args:
        probs: stream name -> P(fake) in [0, 1] (already temperature-calibrated if the model is).
        config: weights, decimals, threshold and the face fallback policy.
        face_fallback: True when the face stream saw the whole image because there was no usable
            face crop. With ``config.face_fallback == "abstain"`` the face stream then gets weight
            0 (listed in ``abstained``); with ``"vote"`` it votes as in the paper.

    Returns:
        A :class:`VoteResult`.

    Raises:
        ValueError: no stream given; a probability is NaN, infinite or outside [0, 1]; a stream has
            no weight in ``config``; a weight is negative or not finite; all weights used are zero.
    """
    if not probs:
        raise ValueError("vote() needs at least one stream probability; got none")
    missing = sorted(set(probs) - set(config.weights))
    if missing:
        raise ValueError(
            f"no vote weight for stream(s) {missing}; VoteConfig.weights has {sorted(config.weights)}: "
            "add a weight for every stream the model has"
        )

    abstained: tuple[str, ...] = ()
    if face_fallback and "face" in probs:
        if config.face_fallback == "abstain":
            abstained = ("face",)
        elif config.face_fallback != "vote":
            raise ValueError(f"VoteConfig.face_fallback must be 'vote' or 'abstain', got {config.face_fallback!r}")

    rounded: dict[str, Decimal] = {}
    weights: dict[str, Decimal] = {}
    for name, p in probs.items():
        d = _to_decimal(p, f"P(fake) of stream {name!r}")
        if not Decimal(0) <= d <= Decimal(1):
            raise ValueError(f"P(fake) of stream {name!r} must lie in [0, 1], got {float(p)!r}")
        w = _to_decimal(config.weights[name], f"vote weight of stream {name!r}")
        if w < 0:
            raise ValueError(f"vote weight of stream {name!r} must be >= 0, got {float(w)}")
        rounded[name] = _round_decimal(d, config.decimals)
        weights[name] = Decimal(0) if name in abstained else w

    with decimal.localcontext() as ctx:
        ctx.prec = _PRECISION
        total = sum(weights.values(), Decimal(0))
        if total == 0:
            raise ValueError(f"all vote weights are zero for streams {sorted(probs)} (abstained: {list(abstained)})")
        # Exact decimal arithmetic. With the paper's 2:1:2 weights the mean of 0.1-grid values is a
        # multiple of 0.02, never a tie, so floats would do; but renormalised weights (the abstain
        # policy's 2:2, a 2-stream model) give true ties, and in floats (2*0.8 + 2*0.9) / 4 is
        # 0.8500000000000001, which would round up instead of to the even 0.8.
        mean = sum((weights[n] * rounded[n] for n in probs), Decimal(0)) / total
    prob_fake = float(_round_decimal(mean, config.decimals))
    label = "fake" if prob_fake >= config.threshold else "real"
    if abstained:
        logger.debug("face stream abstained (no usable face crop); vote over %s", sorted(set(probs) - set(abstained)))
    return VoteResult(
        prob_fake=prob_fake,
        label=label,
        stream_probs={n: float(v) for n, v in rounded.items()},
        weights={n: float(w) for n, w in weights.items()},
        abstained=abstained,
        mean=float(mean),
        threshold=float(config.threshold),
    )
