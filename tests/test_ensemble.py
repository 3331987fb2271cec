"""The discretized weighted vote: hand-computed cases, half-to-even ties, policies, errors."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest

from forensic.config import VoteConfig
from forensic.ensemble import VoteResult, possible_outputs, round_half_even, vote

PAPER = VoteConfig()
ABSTAIN = VoteConfig(face_fallback="abstain")


def _streams(texture: float, face: float, fusion: float) -> dict[str, float]:
    return {"texture": texture, "face": face, "fusion": fusion}


# ---------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0.25, 0.2), (0.35, 0.4), (0.45, 0.4), (0.15, 0.2), (0.05, 0.0), (0.95, 1.0), (0.65, 0.6), (0.75, 0.8)],
)
def test_round_half_even_on_decimal_value(x: float, expected: float) -> None:
    assert round_half_even(x) == expected


def test_round_half_even_differs_from_builtin_round_where_binary_floats_mislead() -> None:
    # The float nearest 0.35 is slightly below it, so round() goes down; a reader expects 0.4.
    assert round(0.35, 1) == 0.3
    assert round_half_even(0.35) == 0.4
    assert round_half_even(np.float64(0.35)) == 0.4  # numpy scalars print differently in numpy 2
    assert round_half_even(np.float32(0.25)) == 0.2  # float32 0.25 is exact
    assert round_half_even(0.34999) == 0.3
    assert round_half_even(0.125, 2) == 0.12
    assert round_half_even(0.135, 2) == 0.14
    assert round_half_even(2.5, 0) == 2.0
    assert round_half_even(1, 1) == 1.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_round_half_even_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_half_even(bad)


def test_round_half_even_rejects_negative_decimals() -> None:
    with pytest.raises(ValueError, match="decimals"):
        round_half_even(0.3, -1)


# ---------------------------------------------------------------- the paper's vote


def test_hand_computed_vote() -> None:
    result = vote(_streams(0.9, 0.1, 0.8))
    # (2 * 0.9 + 1 * 0.1 + 2 * 0.8) / 5 = 3.5 / 5 = 0.70
    assert result.prob_fake == 0.7
    assert result.label == "fake"
    assert result.mean == pytest.approx(0.7, abs=1e-15)
    assert dict(result.stream_probs) == _streams(0.9, 0.1, 0.8)
    assert dict(result.weights) == _streams(2.0, 1.0, 2.0)
    assert result.abstained == ()


def test_streams_are_rounded_before_the_mean() -> None:
    # rounded first: (2 * 0.4 + 1.0 + 2 * 0.4) / 5 = 0.52 -> 0.5;
    # averaging the raw values would give (2 * 0.44 + 1.0 + 2 * 0.44) / 5 = 0.552 -> 0.6.
    result = vote(_streams(0.44, 1.0, 0.44))
    assert dict(result.stream_probs) == _streams(0.4, 1.0, 0.4)
    assert result.mean == pytest.approx(0.52, abs=1e-15)
    assert result.prob_fake == 0.5


@pytest.mark.parametrize(
    ("p", "grid"), [(0.25, 0.2), (0.35, 0.4), (0.45, 0.4), (0.05, 0.0), (0.95, 1.0), (0.15, 0.2)]
)
def test_each_stream_rounds_half_to_even(p: float, grid: float) -> None:
    result = vote(_streams(p, p, p))
    assert dict(result.stream_probs) == _streams(grid, grid, grid)
    assert result.prob_fake == grid


def test_exhaustive_grid_with_paper_weights_has_no_ties_and_matches_exact_arithmetic() -> None:
    outputs = set(possible_outputs(PAPER))
    for a, b, c in itertools.product(range(11), repeat=3):
        result = vote(_streams(a / 10, b / 10, c / 10))
        exact = Fraction(2 * a + b + 2 * c, 50)  # the weighted mean of grid values, exactly
        # A multiple of 0.02 is never an odd multiple of 0.05, so no x.x5 tie can occur ...
        assert (exact * 50).denominator == 1
        assert (exact * 20).denominator != 1 or (exact * 20).numerator % 2 == 0
        # ... and the result is the exact mean rounded (Fraction's round is half-to-even too).
        assert result.prob_fake == float(Fraction(round(exact * 10), 10))
        assert result.prob_fake in outputs
        assert result.mean == pytest.approx(float(exact), abs=1e-15)
        assert result.label == ("fake" if result.prob_fake >= 0.5 else "real")


def test_random_probabilities_match_exact_decimal_arithmetic(rng: np.random.Generator) -> None:
    for p in rng.random((300, 3)):
        grid = [Fraction(round(Fraction(repr(float(x))) * 10), 10) for x in p]
        exact = (2 * grid[0] + grid[1] + 2 * grid[2]) / 5
        assert vote(_streams(*p)).prob_fake == float(Fraction(round(exact * 10), 10))


def test_threshold_at_exactly_one_half_is_fake() -> None:
    assert vote(_streams(0.5, 0.5, 0.5)).label == "fake"
    # (2 * 0.7 + 0.1 + 2 * 0.4) / 5 = 0.46 -> 0.5 -> fake
    result = vote(_streams(0.7, 0.1, 0.4))
    assert (result.prob_fake, result.label) == (0.5, "fake")
    # (2 * 0.6 + 0.2 + 2 * 0.4) / 5 = 0.44 -> 0.4 -> real
    result = vote(_streams(0.6, 0.2, 0.4))
    assert (result.prob_fake, result.label) == (0.4, "real")
    strict = VoteConfig(threshold=0.7)
    assert vote(_streams(0.9, 0.1, 0.8), strict).label == "fake"  # 0.7 >= 0.7
    assert vote(_streams(0.9, 0.1, 0.6), strict).label == "real"  # 0.62 -> 0.6


# ---------------------------------------------------------------- face fallback policies


def test_abstain_policy_renormalises_over_texture_and_fusion() -> None:
    probs = _streams(0.9, 0.0, 0.6)
    abstain = vote(probs, ABSTAIN, face_fallback=True)
    # (2 * 0.9 + 2 * 0.6) / 4 = 0.75: a true tie, half to even -> 0.8
    assert abstain.mean == pytest.approx(0.75, abs=1e-15)
    assert abstain.prob_fake == 0.8
    assert abstain.abstained == ("face",)
    assert dict(abstain.weights) == _streams(2.0, 0.0, 2.0)
    assert abstain.stream_probs["face"] == 0.0  # still reported
    # the paper's policy: the face stream votes on the whole image
    paper = vote(probs, PAPER, face_fallback=True)
    assert (paper.prob_fake, paper.abstained) == (0.6, ())  # (1.8 + 0 + 1.2) / 5
    # with a usable face crop, "abstain" changes nothing
    assert vote(probs, ABSTAIN, face_fallback=False).prob_fake == 0.6


def test_abstain_ties_round_to_even_in_exact_arithmetic() -> None:
    # In floats (2 * 0.8 + 2 * 0.9) / 4 is 0.8500000000000001, which would round up to 0.9;
    # the decimal mean is the tie 0.85, which rounds to the even 0.8.
    assert (2 * 0.8 + 2 * 0.9) / 4 > 0.85
    assert vote(_streams(0.8, 1.0, 0.9), ABSTAIN, face_fallback=True).prob_fake == 0.8
    assert vote(_streams(0.7, 1.0, 0.4), ABSTAIN, face_fallback=True).prob_fake == 0.6  # 0.55 -> 0.6
    assert vote(_streams(0.3, 1.0, 0.2), ABSTAIN, face_fallback=True).prob_fake == 0.2  # 0.25 -> 0.2


# ---------------------------------------------------------------- models with fewer streams


def test_one_stream_model() -> None:
    result = vote({"fusion": 0.34})
    assert (result.prob_fake, result.label) == (0.3, "real")
    assert dict(result.weights) == {"fusion": 2.0}


def test_two_stream_model_renormalises() -> None:
    result = vote({"texture": 0.8, "fusion": 0.3})
    # (2 * 0.8 + 2 * 0.3) / 4 = 0.55 -> 0.6 (6 is even)
    assert (result.prob_fake, result.label) == (0.6, "fake")
    result = vote({"texture": 0.9, "face": 0.2})
    # (2 * 0.9 + 0.2) / 3 = 0.666... -> 0.7
    assert result.prob_fake == 0.7
    # face_fallback on a model without a face stream has nothing to drop
    assert vote({"texture": 0.9}, ABSTAIN, face_fallback=True).abstained == ()


def test_custom_weights_and_decimals() -> None:
    config = VoteConfig(weights={"texture": 1.0, "face": 1.0, "fusion": 1.0}, decimals=2)
    result = vote(_streams(0.125, 0.5, 0.25), config)
    assert dict(result.stream_probs) == _streams(0.12, 0.5, 0.25)
    assert result.prob_fake == 0.29  # 0.87 / 3 = 0.29
    assert len(possible_outputs(config)) == 101


def test_possible_outputs_is_the_grid() -> None:
    assert possible_outputs(PAPER) == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert possible_outputs(VoteConfig(decimals=0)) == (0.0, 1.0)


def test_vote_result_to_dict_is_json() -> None:
    result = vote(_streams(0.9, 0.0, 0.6), ABSTAIN, face_fallback=True)
    data = json.loads(json.dumps(result.to_dict()))
    assert data == {
        "prob_fake": 0.8,
        "label": "fake",
        "stream_probs": {"texture": 0.9, "face": 0.0, "fusion": 0.6},
        "weights": {"texture": 2.0, "face": 0.0, "fusion": 2.0},
        "abstained": ["face"],
        "mean": 0.75,
        "threshold": 0.5,
    }
    assert isinstance(result, VoteResult)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1, 1.1])
def test_invalid_probability_raises(bad: float) -> None:
    with pytest.raises(ValueError, match="texture"):
        vote(_streams(bad, 0.5, 0.5))


def test_stream_without_weight_raises() -> None:
    with pytest.raises(ValueError, match="audio"):
        vote({"texture": 0.5, "audio": 0.5})


def test_all_zero_weights_raise() -> None:
    with pytest.raises(ValueError, match="zero"):
        vote({"texture": 0.5, "face": 0.5}, VoteConfig(weights={"texture": 0.0, "face": 0.0}))
    # a face-only model whose face stream abstains has nothing left to vote with
    with pytest.raises(ValueError, match="zero"):
        vote({"face": 0.5}, ABSTAIN, face_fallback=True)


def test_other_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        vote({})
    with pytest.raises(ValueError, match=">= 0"):
        vote({"texture": 0.5}, VoteConfig(weights={"texture": -1.0}))
    with pytest.raises(ValueError, match="decimals"):
        vote({"texture": 0.5}, VoteConfig(decimals=-1))
    with pytest.raises(ValueError, match="face_fallback"):
        vote({"face": 0.5}, VoteConfig(face_fallback="skip"), face_fallback=True)  # type: ignore[arg-type]
