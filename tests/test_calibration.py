"""Temperature scaling and expected calibration error."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from scipy.special import expit, logit, softmax
from sklearn.metrics import roc_auc_score

from forensic.calibration import (
    MIN_CALIBRATION_SAMPLES,
    TEMPERATURE_RANGE,
    CalibrationResult,
    apply_temperature,
    bounded_temperature,
    calibrate,
    calibration_skip_reason,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_diagram,
)


def _margin_logits(margin: np.ndarray) -> np.ndarray:
    """(N, 2) logits whose fake-minus-real margin is ``margin`` (and not centred: shift-invariance)."""
    return np.stack([0.3 - margin / 2, 0.3 + margin / 2], axis=1)


@pytest.fixture()
def overconfident(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """True margin z ~ N(+-1, 1), labels ~ Bernoulli(sigmoid(z)), reported logits 4 * z."""
    n = 20_000
    z = rng.choice([-1.0, 1.0], size=n) + rng.standard_normal(n)
    labels = (rng.random(n) < expit(z)).astype(int)
    return _margin_logits(4.0 * z), labels


# ---------------------------------------------------------------- temperature scaling


def test_overconfident_logits_recover_temperature_four(overconfident: tuple[np.ndarray, np.ndarray]) -> None:
    logits, labels = overconfident
    result = calibrate(logits, labels)
    assert result.temperature == pytest.approx(4.0, rel=0.15)
    assert result.ece_before > 0.1  # badly over-confident
    assert result.ece_after < 0.02
    assert result.ece_after < result.ece_before / 5
    assert result.nll_after < result.nll_before - 0.2
    # the fitted T is the NLL minimum: nudging it either way is worse
    for t in (result.temperature * 0.97, result.temperature * 1.03):
        assert negative_log_likelihood(logits, labels, temperature=t) > result.nll_after
    # temperature never changes the ranking
    auc_before = roc_auc_score(labels, apply_temperature(logits, 1.0))
    auc_after = roc_auc_score(labels, apply_temperature(logits, result.temperature))
    assert auc_after == pytest.approx(auc_before, abs=1e-12)
    assert json.loads(json.dumps(result.to_dict()))["temperature"] == result.temperature


def test_fit_is_deterministic(overconfident: tuple[np.ndarray, np.ndarray]) -> None:
    logits, labels = overconfident
    assert fit_temperature(logits, labels) == fit_temperature(logits.copy(), labels.copy())


def test_calibrated_logits_give_temperature_near_one(rng: np.random.Generator) -> None:
    p = rng.uniform(0.02, 0.98, 20_000)
    labels = (rng.random(p.size) < p).astype(int)
    assert fit_temperature(_margin_logits(logit(p)), labels) == pytest.approx(1.0, rel=0.05)


def test_temperature_one_leaves_probabilities_unchanged(rng: np.random.Generator) -> None:
    logits = rng.normal(0, 3, (100, 2))
    np.testing.assert_allclose(apply_temperature(logits, 1.0), softmax(logits, axis=1)[:, 1], rtol=0, atol=1e-15)
    # and T scales the margin: softmax(logits / T)
    np.testing.assert_allclose(apply_temperature(logits, 2.5), softmax(logits / 2.5, axis=1)[:, 1], atol=1e-15)


def test_nll_matches_hand_computation() -> None:
    logits = np.array([[0.0, 2.0], [1.0, 0.0]])
    labels = np.array([1, 1])
    expected = (-math.log(expit(2.0)) - math.log(expit(-1.0))) / 2
    assert negative_log_likelihood(logits, labels) == pytest.approx(expected, rel=1e-12)
    expected_t2 = (-math.log(expit(1.0)) - math.log(expit(-0.5))) / 2
    assert negative_log_likelihood(logits, labels, temperature=2.0) == pytest.approx(expected_t2, rel=1e-12)


def test_separable_data_warns_and_stops_at_the_lower_bound(caplog: pytest.LogCaptureFixture) -> None:
    logits = _margin_logits(np.array([-2.0, -1.0, 1.0, 3.0]))
    with caplog.at_level(logging.WARNING, logger="forensic.calibration"):
        t = fit_temperature(logits, [0, 0, 1, 1])
    assert t == pytest.approx(TEMPERATURE_RANGE[0])
    assert "ill-posed" in caplog.text


def test_calibrate_keeps_t_one_when_the_model_makes_no_errors(caplog: pytest.LogCaptureFixture) -> None:
    # issue 14.5: an easy validation set gave T = 0.001 and every P(fake) exactly 0 or 1
    margin = np.concatenate([-np.linspace(0.5, 4, 20), np.linspace(0.3, 5, 20)])
    labels = np.array([0] * 20 + [1] * 20)
    with caplog.at_level(logging.WARNING, logger="forensic.calibration"):
        result = calibrate(_margin_logits(margin), labels)
    assert result.temperature == 1.0 and not result.fitted
    assert "no errors" in result.note and "no errors" in caplog.text
    assert result.ece_after == result.ece_before and result.n == 40
    p = apply_temperature(_margin_logits(margin), result.temperature)
    assert 0.5 < p.max() < 0.999 and 0.001 < p.min() < 0.5  # nothing collapsed to 0 or 1
    assert json.loads(json.dumps(result.to_dict()))["note"] == result.note


@pytest.mark.parametrize(("n_real", "n_fake"), [(8, 8), (30, 3), (1, 1)])
def test_calibrate_keeps_t_one_on_a_small_set(rng: np.random.Generator, n_real: int, n_fake: int) -> None:
    labels = np.array([0] * n_real + [1] * n_fake)
    logits = _margin_logits(4.0 * (labels * 2 - 1) + rng.normal(0, 4, labels.size))  # with errors
    result = calibrate(logits, labels)
    assert result.temperature == 1.0 and not result.fitted and "too small" in result.note
    assert calibration_skip_reason(logits, labels) == result.note


def test_calibrate_empty_set_keeps_t_one() -> None:
    result = calibrate(np.zeros((0, 2)), np.zeros(0, dtype=int))
    assert result.temperature == 1.0 and not result.fitted and result.n == 0 and math.isnan(result.ece_before)


def test_fitted_temperature_is_bounded(rng: np.random.Generator) -> None:
    # calibrated scores (T ~ 1) shrunk 1000x: the likelihood wants T ~ 0.001, far outside the sane range
    p = rng.uniform(0.02, 0.98, 400)
    labels = (rng.random(p.size) < p).astype(int)
    assert calibration_skip_reason(_margin_logits(logit(p)), labels) is None
    result = calibrate(_margin_logits(logit(p) / 1000), labels)
    assert result.fitted and result.temperature == pytest.approx(TEMPERATURE_RANGE[0])
    assert "bound" in result.note
    big = calibrate(_margin_logits(logit(p) * 1000), labels)
    assert big.temperature == pytest.approx(TEMPERATURE_RANGE[1]) and "bound" in big.note
    assert MIN_CALIBRATION_SAMPLES <= 400


def test_bounded_temperature_clips_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    lo, hi = TEMPERATURE_RANGE
    assert bounded_temperature(1.7) == 1.7
    with caplog.at_level(logging.WARNING, logger="forensic.calibration"):
        assert bounded_temperature(0.001) == lo and bounded_temperature(1e6) == hi
    assert "outside" in caplog.text
    with pytest.raises(ValueError, match="temperature"):
        bounded_temperature(0.0)


def test_zero_margins_return_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="forensic.calibration"):
        assert fit_temperature(np.zeros((4, 2)), [0, 1, 0, 1]) == 1.0
    assert "zero" in caplog.text


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.zeros((4, 3)), [0, 1, 0, 1], r"\(N, 2\)"),
        (np.zeros(4), [0, 1, 0, 1], r"\(N, 2\)"),
        (np.zeros((4, 2)), [0, 1, 0], "match"),
        (np.zeros((4, 2)), [0, 1, 2, 1], "0 \\(real\\) or 1"),
        (np.zeros((4, 2)), [[0, 1, 0, 1]], "1-D"),
        (np.ones((4, 2)), [1, 1, 1, 1], "both real"),
        (np.ones((1, 2)), [1], "at least 2"),
        (np.array([[0.0, math.nan], [0.0, 1.0]]), [0, 1], "NaN"),
        (np.zeros((2, 2)), ["a", "b"], "dtype"),
    ],
)
def test_fit_temperature_validates_inputs(logits: np.ndarray, labels: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_temperature(logits, labels)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_apply_temperature_rejects_bad_temperature(bad: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(np.zeros((2, 2)), bad)


# ---------------------------------------------------------------- ECE and reliability diagrams

# Six predictions; with 4 bins (edges 0, .25, .5, .75, 1), none on an edge.
P = np.array([0.9, 0.8, 0.3, 0.65, 0.4, 0.1])
Y = np.array([1, 0, 0, 1, 1, 0])


def test_top_label_ece_by_hand() -> None:
    # confidence = max(p, 1-p) = [.9, .8, .7, .65, .6, .9]; predicted fake if p >= .5 -> [1, 1, 0, 1, 0, 0]
    # correct = [1, 0, 1, 1, 0, 1]
    # bin (.75, 1]: conf .9, .8, .9 -> mean 2.6/3; accuracy 2/3; gap 0.2
    # bin (.5, .75]: conf .7, .65, .6 -> mean .65; accuracy 2/3; gap 1/60
    # ECE = 3/6 * 0.2 + 3/6 * 1/60 = 13/120
    assert expected_calibration_error(P, Y, n_bins=4) == pytest.approx(13 / 120, abs=1e-12)
    diagram = reliability_diagram(P, Y, n_bins=4)
    np.testing.assert_array_equal(diagram.count, [0, 0, 3, 3])
    np.testing.assert_allclose(diagram.confidence[2:], [0.65, 2.6 / 3])
    np.testing.assert_allclose(diagram.accuracy[2:], [2 / 3, 2 / 3])
    assert np.isnan(diagram.confidence[:2]).all() and np.isnan(diagram.accuracy[:2]).all()
    np.testing.assert_allclose(diagram.bin_edges, [0, 0.25, 0.5, 0.75, 1.0])
    data = json.loads(json.dumps(diagram.to_dict()))
    assert data["confidence"][:2] == [None, None]
    assert data["count"] == [0, 0, 3, 3]
    assert data["ece"] == pytest.approx(13 / 120)


def test_fake_ece_by_hand() -> None:
    # bin [0, .25]: p .1, label 0 -> gap .1 (n 1)
    # bin (.25, .5]: p .3, .4 -> .35; fakes 1/2 -> gap .15 (n 2)
    # bin (.5, .75]: p .65, fake -> gap .35 (n 1)
    # bin (.75, 1]: p .9, .8 -> .85; fakes 1/2 -> gap .35 (n 2)
    # ECE = (0.1 + 2 * 0.15 + 0.35 + 2 * 0.35) / 6 = 1.45 / 6 = 29/120
    assert expected_calibration_error(P, Y, n_bins=4, kind="fake") == pytest.approx(29 / 120, abs=1e-12)
    np.testing.assert_array_equal(reliability_diagram(P, Y, n_bins=4, kind="fake").count, [1, 2, 1, 2])


def test_bins_are_right_closed_and_zero_goes_in_the_first() -> None:
    diagram = reliability_diagram([0.0, 0.5, 1.0], [0, 1, 1], n_bins=2, kind="fake")
    np.testing.assert_array_equal(diagram.count, [2, 1])  # [0, .5] and (.5, 1]


def test_perfectly_calibrated_data_has_small_ece(rng: np.random.Generator) -> None:
    p = rng.random(50_000)
    labels = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(p, labels, kind="fake") < 0.015
    assert expected_calibration_error(p, labels, kind="top-label") < 0.015
    # and an over-confident version of the same scores is far off
    sharp = expit(4 * logit(np.clip(p, 1e-6, 1 - 1e-6)))
    assert expected_calibration_error(sharp, labels) > 0.1


def test_perfect_confident_predictions_have_zero_ece() -> None:
    assert expected_calibration_error([0.0, 1.0, 1.0], [0, 1, 1]) == 0.0


@pytest.mark.parametrize(
    ("prob", "labels", "kwargs", "match"),
    [
        ([0.2, 1.2], [0, 1], {}, r"\[0, 1\]"),
        ([0.2, math.nan], [0, 1], {}, "NaN"),
        ([], [], {}, "empty"),
        ([0.2, 0.3], [0, 1, 1], {}, "match"),
        ([[0.2, 0.3]], [0, 1], {}, "1-D"),
        ([0.2, 0.3], [0, 0.5], {}, "0 \\(real\\) or 1"),
        ([0.2, 0.3], [0, 1], {"kind": "real"}, "kind"),
        ([0.2, 0.3], [0, 1], {"n_bins": 0}, "n_bins"),
    ],
)
def test_ece_validates_inputs(prob: list, labels: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(prob, labels, **kwargs)


def test_boolean_labels_are_accepted() -> None:
    assert expected_calibration_error(P, Y.astype(bool), n_bins=4) == pytest.approx(13 / 120)
    assert isinstance(calibrate(_margin_logits(np.array([-1.0, 2.0, 0.5, -3.0])), [0, 1, 0, 1]), CalibrationResult)


# ---------------------------------------------------------------- soft targets (distillation)


def test_fit_temperature_recovers_the_temperature_of_soft_targets(rng: np.random.Generator) -> None:
    # soft targets made at a known temperature: a teacher 2.5x less confident than the student's logits
    margin = rng.normal(0, 3, 200)
    targets = expit(margin / 2.5)
    t = fit_temperature(_margin_logits(margin), targets)
    assert t == pytest.approx(2.5, rel=1e-4)
    at = {s: negative_log_likelihood(_margin_logits(margin), targets, temperature=s) for s in (1.0, t, t * 0.97, t * 1.03)}
    assert at[t] < at[1.0] and at[t] < at[t * 0.97] and at[t] < at[t * 1.03]  # the cross-entropy's minimum
    np.testing.assert_allclose(apply_temperature(_margin_logits(margin), t), targets, rtol=1e-4, atol=1e-6)


def test_hard_labels_are_soft_targets_of_zero_and_one(overconfident: tuple[np.ndarray, np.ndarray]) -> None:
    logits, labels = overconfident
    assert fit_temperature(logits, labels.astype(np.float64)) == fit_temperature(logits, labels)
    assert negative_log_likelihood(logits, labels.astype(bool)) == negative_log_likelihood(logits, labels)


def test_soft_cross_entropy_matches_hand_computation() -> None:
    logits = np.array([[0.0, 2.0], [1.0, 0.0]])
    q = np.array([0.8, 0.25])
    expected = -(0.8 * math.log(expit(2.0)) + 0.2 * math.log(expit(-2.0)) + 0.25 * math.log(expit(-1.0)) + 0.75 * math.log(expit(1.0))) / 2
    assert negative_log_likelihood(logits, q) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("targets", [[0.2, 1.5, 0.1], [0.2, -0.1, 0.4], [0.2, math.nan, 0.4]])
def test_soft_targets_outside_zero_one_are_refused(targets: list) -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fit_temperature(np.zeros((3, 2)), targets)
