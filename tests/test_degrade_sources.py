"""One source per fact: the degradation families, sweep strengths and DeeperForensics types that
other packages use are the degrade package's own objects, not copies that could drift apart."""

from __future__ import annotations

import inspect

import analysis.conditions as conditions
import forensic.degrade as degrade
import forensic.sweep as sweep
import webapp.views as views
from forensic.degrade import DF_TYPES, FAMILIES, OPS, SWEEP_STRENGTHS
from forensic.degrade.ops import DF_LEVELS
from forensic.degrade.families import PAPER_FAMILIES


def test_deeperforensics_types_are_the_operations_types() -> None:
    assert DF_TYPES == tuple(DF_LEVELS) == ("saturation", "contrast", "block", "noise", "blur", "pixelate", "compress")
    assert [f"df-{t}" for t in DF_TYPES] == [name for name, op in OPS.items() if op.group == "deeperforensics"]
    assert conditions.DF_TYPES is DF_TYPES
    assert conditions.FAMILY_GROUPS["df"] == tuple(f"df-{t}" for t in DF_TYPES)


def test_sweeps_share_one_list_of_strengths() -> None:
    assert SWEEP_STRENGTHS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert sweep.DEFAULT_STRENGTHS is SWEEP_STRENGTHS is conditions.SWEEP_STRENGTHS
    assert inspect.signature(sweep.robustness_sweep).parameters["strengths"].default is SWEEP_STRENGTHS
    assert inspect.signature(conditions.sweep_conditions).parameters["strengths"].default is SWEEP_STRENGTHS


def test_every_family_list_is_built_from_the_protocols() -> None:
    assert degrade.FAMILIES is FAMILIES and PAPER_FAMILIES == ("jpeg", "gnoise", "gblur", "motion-blur", "compound")
    assert conditions.FAMILY_GROUPS["protocol"] is PAPER_FAMILIES
    assert conditions.ROBUSTNESS_FAMILIES[: len(FAMILIES)] == FAMILIES
    # the app's sweep dropdown offers every family, the compound engine first
    assert views.FAMILY_CHOICES[0] == "compound" and sorted(views.FAMILY_CHOICES) == sorted(FAMILIES)
    assert all(family in degrade.ALL_OPS for family in FAMILIES)  # a family is also its operation's name
