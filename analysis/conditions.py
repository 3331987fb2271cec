"""Degradation conditions of the studies: the paper's protocol, DeeperForensics levels, sweeps.

A :class:`Condition` is one (family, level) point with its spec text and a *strength* in [0, 1]
that puts every family on one x axis:

============== ===================================== ===============================
family         levels (labels)                       strength
============== ===================================== ===============================
jpeg           quality 100, 80, 60, 40, 20, 10, 5     (100 - quality) / 95
gnoise         sigma 0, 10, ..., 60                  sigma / 60
gblur, motion-blur, resize, compound   0.0, 0.2, ..., 1.0    the level itself
df-<type>      0 (clean), 1 .. 5 (DeeperForensics)   level / 5
============== ===================================== ===============================

Sweeps (stability, entropy, Score-CAM drift) use :func:`forensic.degrade.at_strength` at
strengths 0.0, 0.1, ..., 1.0 by default. Two conditions with the same spec (every family's clean
level) share one evaluation: records are keyed by the spec, not the family.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from forensic.degrade import DF_TYPES, FAMILIES, SWEEP_STRENGTHS, at_strength, parse_spec, protocol_levels
from forensic.degrade.families import PAPER_FAMILIES

__all__ = [
    "Condition",
    "CLEAN",
    "DF_TYPES",
    "ROBUSTNESS_FAMILIES",
    "FAMILY_GROUPS",
    "DEFAULT_ROBUSTNESS_FAMILIES",
    "DEFAULT_SWEEP_FAMILIES",
    "SWEEP_STRENGTHS",
    "resolve_families",
    "robustness_conditions",
    "sweep_conditions",
]

#: the spec text of the untouched image
CLEAN = "none"

ROBUSTNESS_FAMILIES: tuple[str, ...] = FAMILIES + tuple(f"df-{t}" for t in DF_TYPES)
#: names that stand for several families on the command line
FAMILY_GROUPS: dict[str, tuple[str, ...]] = {
    "protocol": PAPER_FAMILIES,  # the paper's inference sweep: jpeg, gnoise, gblur, motion-blur, compound
    "df": tuple(f"df-{t}" for t in DF_TYPES),
    "all": ROBUSTNESS_FAMILIES,
}
DEFAULT_ROBUSTNESS_FAMILIES: tuple[str, ...] = FAMILY_GROUPS["protocol"] + FAMILY_GROUPS["df"]
DEFAULT_SWEEP_FAMILIES: tuple[str, ...] = ("compound",)


@dataclass(frozen=True)
class Condition:
    """One degradation level of one family.

    Attributes:
        family: ``jpeg``, ``gnoise``, ..., ``df-blur``.
        level: its label in the family (``q20``, ``sigma30``, ``0.4``, ``3``).
        strength: severity on the common [0, 1] axis (see the module table).
        spec: canonical spec text (``none`` for the clean image).
    """

    family: str
    level: str
    strength: float
    spec: str

    @property
    def clean(self) -> bool:
        return self.spec == CLEAN


def resolve_families(names: Iterable[str], *, allowed: Sequence[str] = ROBUSTNESS_FAMILIES) -> tuple[str, ...]:
    """Expands groups (``protocol``, ``df``, ``all``) and checks names; keeps the first occurrence order.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        members = FAMILY_GROUPS.get(name, (name,))
        members = tuple(m for m in members if m in allowed) if name in FAMILY_GROUPS else members
        for m in members:
            if m not in allowed:
                groups = [g for g in FAMILY_GROUPS if any(x in allowed for x in FAMILY_GROUPS[g])]
                raise ValueError(
                    f"unknown degradation family {m!r} here; valid: {', '.join(allowed)}"
                    + (f" (groups: {', '.join(groups)})" if groups else "")
                )
            if m not in out:
                out.append(m)
    if not out:
        raise ValueError(f"no degradation family given; valid: {', '.join(allowed)}")
    return tuple(out)


def _protocol_strength(family: str, label: str) -> float:
    if family == "jpeg":
        return round((100 - int(label[1:])) / 95.0, 6)
    if family == "gnoise":
        return round(int(label[len("sigma") :]) / 60.0, 6)
    return float(label)


def robustness_conditions(families: Sequence[str], *, levels: Sequence[str] | None = None) -> list[Condition]:
    """The protocol levels of each family (DeeperForensics types: clean + levels 1-5).

    Args:
        families: family names (groups already expanded, see :func:`resolve_families`).
        levels: keep only levels with these labels (e.g. ``q100,q20,q5`` or ``0.0,1.0``).

    Raises:
        ValueError: a family with no level left after ``levels`` (lists its labels).
    """
    wanted = None if levels is None else {str(v).strip() for v in levels}
    out: list[Condition] = []
    for family in families:
        if family.startswith("df-"):
            all_levels = [Condition(family, "0", 0.0, CLEAN)] + [
                Condition(family, str(i), i / 5.0, str(parse_spec(f"{family}-{i}"))) for i in range(1, 6)
            ]
        else:
            all_levels = [
                Condition(family, lv.label, _protocol_strength(family, lv.label), str(lv.spec))
                for lv in protocol_levels(family)
            ]
        kept = [c for c in all_levels if wanted is None or c.level in wanted]
        if not kept:
            raise ValueError(
                f"--levels keeps no level of {family}; its levels are {', '.join(c.level for c in all_levels)}"
            )
        out.extend(kept)
    return out


def sweep_conditions(families: Sequence[str], strengths: Sequence[float] = SWEEP_STRENGTHS) -> list[Condition]:
    """Each family at each strength via :func:`forensic.degrade.at_strength` (strength 0 = clean).

    Raises:
        ValueError: a family without a strength scale (e.g. ``df-*``) or a strength outside [0, 1].
    """
    out = []
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"sweeps need a family with a strength scale: one of {', '.join(FAMILIES)}; got {family!r}")
        for s in sorted({round(float(v), 6) for v in strengths}):
            spec = at_strength(family, s)
            out.append(Condition(family, f"{s:g}", s, CLEAN if spec is None else str(spec)))
    return out
