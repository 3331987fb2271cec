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

The families and levels themselves are data in :mod:`forensic.degrade.families`.
"""

from __future__ import annotations

from typing import NamedTuple

from forensic.degrade.families import check_family, level_params, strength_params
from forensic.degrade.spec import DegradationSpec, single_step

__all__ = ["ProtocolLevel", "at_strength", "protocol_levels"]


class ProtocolLevel(NamedTuple):
    """One level of a family: a short label (``q20``, ``sigma30``, ``0.4``) and its spec."""

    label: str
    spec: DegradationSpec


def at_strength(family: str, strength: float) -> DegradationSpec | None:
    """The spec for ``family`` at ``strength`` in [0, 1] (see the module table).

    Returns:
        ``None`` at strength 0 (the clean reference), else a one-step spec whose severity
        grows monotonically with strength.

    Raises:
        ValueError: unknown family (lists the valid ones) or strength outside [0, 1].
    """
    check_family(family)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    if strength == 0.0:
        return None
    return single_step(family, strength_params(family, float(strength)))


def protocol_levels(family: str) -> list[ProtocolLevel]:
    """The paper's sweep for one family, clean level first (its spec is empty)."""
    return [
        ProtocolLevel(label, DegradationSpec() if params is None else single_step(family, params))
        for label, params in level_params(family)
    ]
