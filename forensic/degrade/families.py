"""The robustness protocol's families and levels as plain data: operation parameters, not specs.

:mod:`forensic.degrade.protocol` turns them into specs (its docstring has the strength table) and
:mod:`forensic.degrade.spec` names them as presets (``jpeg-q20``, ``gblur-0.4``). They live here,
below both, so that neither of those two modules imports the other.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FAMILIES",
    "GNOISE_SIGMAS",
    "PARAMETER_LABELS",
    "JPEG_QUALITIES",
    "PAPER_FAMILIES",
    "PROTOCOL_STRENGTHS",
    "SWEEP_STRENGTHS",
    "check_family",
    "level_params",
    "parameter_at",
    "strength_params",
]

FAMILIES: tuple[str, ...] = ("jpeg", "gnoise", "gblur", "motion-blur", "resize", "compound")
"""The degradation families with a strength scale; each is also the name of its operation."""
PAPER_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f != "resize")
"""The paper's inference sweep: every family but ``resize``, which we add."""
JPEG_QUALITIES: tuple[int, ...] = (100, 80, 60, 40, 20, 10, 5)
GNOISE_SIGMAS: tuple[int, ...] = (0, 10, 20, 30, 40, 50, 60)
PROTOCOL_STRENGTHS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SWEEP_STRENGTHS: tuple[float, ...] = tuple(i / 10 for i in range(11))
"""The sweeps' strengths (the analyses' stability and Score-CAM drift, the UI's sweep): 0.0, 0.1, ..., 1.0."""


def check_family(family: str) -> None:
    """Raises ValueError (listing the valid families) unless ``family`` is one of :data:`FAMILIES`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown degradation family {family!r}; valid families: {', '.join(FAMILIES)}")


def strength_params(family: str, s: float) -> dict[str, Any]:
    """The parameters of ``family``'s operation at strength ``s`` in (0, 1] (see the protocol table)."""
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


PARAMETER_LABELS: dict[str, tuple[str, str]] = {
    "jpeg": ("quality", "JPEG quality"),
    "gnoise": ("sigma", "noise sigma (0-255 units)"),
    "gblur": ("sigma", "blur sigma (px)"),
    "motion-blur": ("length", "motion-blur length (px)"),
    "resize": ("scale", "resize scale (down and back up)"),
    "compound": ("strength", "compound strength"),
}
"""Per family: the parameter that grows (or shrinks) with strength, and its axis label in words."""


def parameter_at(family: str, s: float) -> dict[str, Any]:
    """``family``'s own parameter at strength ``s`` in [0, 1]: ``{"name", "value", "label"}``
    (e.g. ``{"name": "quality", "value": 40, "label": "JPEG quality"}``); at ``s = 0`` the
    clean image's value (quality 100, sigma 0, scale 1 ...).

    Raises:
        ValueError: unknown family (lists the valid ones).
    """
    check_family(family)
    name, label = PARAMETER_LABELS[family]
    return {"name": name, "value": strength_params(family, float(s))[name], "label": label}


def level_params(family: str) -> list[tuple[str, dict[str, Any] | None]]:
    """The paper's sweep for one family as (label, parameters) pairs, clean level first (``None``).

    Raises:
        ValueError: unknown family (lists the valid ones).
    """
    check_family(family)
    if family == "jpeg":  # quality 100 is a real re-encode, not the clean image
        return [(f"q{q}", {"quality": q}) for q in JPEG_QUALITIES]
    if family == "gnoise":
        return [(f"sigma{s}", {"sigma": s} if s else None) for s in GNOISE_SIGMAS]
    return [(f"{s:.1f}", strength_params(family, s) if s else None) for s in PROTOCOL_STRENGTHS]
