"""The paper's robustness protocol as data, and a strength -> spec map per degradation family.

The authors' inference sweep: JPEG quality 100, 80, 60, 40, 20, 10, 5; Gaussian noise sigma
0, 10, ..., 60; Gaussian blur, motion blur and the random mix (compound engine) at strength
0, 0.2, ..., 1.0. We add ``resize`` (down-and-back-up) as a sixth family.

:func:`at_strength` maps one strength in [0, 1] onto every family so that sweeps (the UI's
robustness panel, the analysis package's stability curves at 0, 0.1, ..., 1.0) share one axis:

=============  ==========================================================
family         strength s -> spec (s = 0 -> ``None``: the clean image)
=============  ==========================================================
jpeg           ``jpeg:quality=round(100 - 95 s)``          (100 .. 5)
gnoise         ``gnoise:sigma=60 s``  (0..255 units)        (0 .. 60)
gblur          ``gblur:sigma=4 s``  (px)                    (0 .. 4)
motion-blur    ``motion-blur:length=1 + 2 round(12 s)``     (1 .. 25, random angle)
resize         ``resize:scale=1 / (1 + 3 s),interp=area``   (1 .. 0.25, back up bicubic)
compound       ``compound:strength=s``                      (see forensic.degrade.compound)
=============  ==========================================================
"""

from __future__ import annotations

from typing import Any, NamedTuple

from forensic.degrade.spec import ALL_OPS, DegradationSpec, OpCall

__all__ = [
    "FAMILIES",
    "GNOISE_SIGMAS",
    "JPEG_QUALITIES",
    "PROTOCOL_STRENGTHS",
    "SWEEP_STRENGTHS",
    "ProtocolLevel",
    "at_strength",
    "protocol_levels",
]

FAMILIES: tuple[str, ...] = ("jpeg", "gnoise", "gblur", "motion-blur", "resize", "compound")
JPEG_QUALITIES: tuple[int, ...] = (100, 80, 60, 40, 20, 10, 5)
GNOISE_SIGMAS: tuple[int, ...] = (0, 10, 20, 30, 40, 50, 60)
PROTOCOL_STRENGTHS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SWEEP_STRENGTHS: tuple[float, ...] = tuple(i / 10 for i in range(11))
"""The analyses' sweep (cosine stability, Score-CAM drift): 0.0, 0.1, ..., 1.0."""


class ProtocolLevel(NamedTuple):
    """One level of a family: a short label (``q20``, ``sigma30``, ``0.4``) and its spec."""

    label: str
    spec: DegradationSpec


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown degradation family {family!r}; valid families: {', '.join(FAMILIES)}")


def _params(family: str, s: float) -> dict[str, Any]:
    # rounding keeps the spec text short (4 * 0.3 would print as 1.2000000000000002)
    if family == "jpeg":
        return {"quality": int(round(100 - 95 * s))}
    if family == "gnoise":
        return {"sigma": round(60.0 * s, 6)}
    if family == "gblur":
        return {"sigma": round(4.0 * s, 6)}
    if family == "motion-blur":
        return {"length": 1 + 2 * int(round(12 * s))}
    if family == "resize":
        return {"scale": round(1.0 / (1.0 + 3.0 * s), 6), "interp": "area"}
    return {"strength": round(s, 6)}


def at_strength(family: str, strength: float) -> DegradationSpec | None:
    """The spec for ``family`` at ``strength`` in [0, 1] (see the module table).

    Returns:
        ``None`` at strength 0 (the clean reference), else a one-step spec whose severity
        grows monotonically with strength.

    Raises:
        ValueError: unknown family (lists the valid ones) or strength outside [0, 1].
    """
    _check_family(family)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    if strength == 0.0:
        return None
    return _one_step(family, _params(family, float(strength)))


def _one_step(op: str, params: dict[str, Any]) -> DegradationSpec:
    return DegradationSpec((OpCall(op, ALL_OPS[op].validate(params)),))


def protocol_levels(family: str) -> list[ProtocolLevel]:
    """The paper's sweep for one family, clean level first (its spec is empty)."""
    _check_family(family)
    if family == "jpeg":  # quality 100 is a real re-encode, not the clean image
        return [ProtocolLevel(f"q{q}", _one_step("jpeg", {"quality": q})) for q in JPEG_QUALITIES]
    if family == "gnoise":
        return [
            ProtocolLevel(f"sigma{s}", _one_step("gnoise", {"sigma": s}) if s else DegradationSpec())
            for s in GNOISE_SIGMAS
        ]
    return [
        ProtocolLevel(f"{s:.1f}", at_strength(family, s) or DegradationSpec()) for s in PROTOCOL_STRENGTHS
    ]
