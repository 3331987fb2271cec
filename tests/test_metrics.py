"""Binary detection metrics: AUC, AP, accuracy, EER, and the combined dict."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from forensic.calibration import expected_calibration_error
from forensic.degrade import degrade, ssim
from forensic.metrics import accuracy, average_precision, binary_metrics, equal_error_rate, pearson, roc_auc

TINY_P = [0.1, 0.4, 0.35, 0.8]
TINY_Y = [0, 0, 1, 1]


def test_tiny_case_by_hand() -> None:
    # fake/real pairs ranked correctly: 0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4 (not 0.35 > 0.4) -> 3/4
    assert roc_auc(TINY_P, TINY_Y) == 0.75
    # ranked: 0.8 F (precision 1, recall 1/2), 0.4 R, 0.35 F (precision 2/3, recall 1)
    assert average_precision(TINY_P, TINY_Y) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3, abs=1e-15)
    # ROC points (FPR, FNR): (0, 1), (0, .5), (.5, .5), ... -> a ROC point with FPR == FNR = 0.5
    assert equal_error_rate(TINY_P, TINY_Y) == 0.5
    # predictions at 0.5: [R, R, R, F] -> correct [1, 1, 0, 1]
    assert accuracy(TINY_P, TINY_Y) == 0.75


def test_auc_and_ap_match_sklearn(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 2, 500)
    p = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
    assert roc_auc(p, labels) == roc_auc_score(labels, p)
    assert average_precision(p, labels) == average_precision_score(labels, p)


def test_eer_perfect_separation_is_zero() -> None:
    assert equal_error_rate([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1]) == 0.0
    # perfectly wrong: every error rate is 1 at the crossing
    assert equal_error_rate([0.9, 0.7, 0.2, 0.1], [0, 0, 1, 1]) == 1.0


def test_eer_interpolates_on_a_tie_segment() -> None:
    # reals 0.1, 0.6; fakes 0.6, 0.9. ROC: (FPR, TPR) = (0, 0), (0, .5), (.5, 1), (1, 1).
    # On the tie segment from (0, .5) to (.5, 1): FPR = s/2, FNR = 1/2 - s/2, equal at s = 1/2:
    # EER = 0.25, which no hard threshold reaches (at 0.6: FPR .5, FNR 0; above: FPR 0, FNR .5).
    assert equal_error_rate([0.1, 0.6, 0.6, 0.9], [0, 0, 1, 1]) == pytest.approx(0.25, abs=1e-15)


def test_eer_interpolates_on_a_vertical_segment() -> None:
    # reals 0.1, 0.3, 0.7; fakes 0.5, 0.8. Sorted: .8 F, .7 R, .5 F, .3 R, .1 R
    # (FPR, FNR): (0, 1), (0, .5), (1/3, .5), (1/3, 0), ... FNR - FPR goes 1/6 -> -1/3 on the
    # segment at FPR = 1/3 where FNR falls from .5 to 0: it crosses FNR = 1/3 there -> EER = 1/3.
    assert equal_error_rate([0.1, 0.3, 0.7, 0.5, 0.8], [0, 0, 0, 1, 1]) == pytest.approx(1 / 3, abs=1e-15)


def test_eer_of_two_gaussians(rng: np.random.Generator) -> None:
    # scores N(0, 1) for reals and N(2, 1) for fakes (squashed monotonically into [0, 1]):
    # the threshold at 1 gives FPR = FNR = Phi(-1) = 0.1587
    n = 20_000
    labels = np.repeat([0, 1], n)
    scores = rng.standard_normal(2 * n) + 2.0 * labels
    assert equal_error_rate(norm.cdf(scores - 1.0), labels) == pytest.approx(norm.cdf(-1.0), abs=0.01)


def test_accuracy_at_threshold() -> None:
    p, y = [0.5, 0.49, 0.7, 0.2], [1, 0, 0, 0]
    assert accuracy(p, y) == 0.75  # 0.5 >= 0.5 is fake
    assert accuracy(p, y, threshold=0.6) == 0.5  # predictions [R, R, F, R]
    assert accuracy(p, y, threshold=0.0) == 0.25  # all fake
    assert accuracy(p, y, threshold=1.01) == 0.75  # all real


def test_one_class_gives_nan_ranking_metrics_but_accuracy(caplog: pytest.LogCaptureFixture) -> None:
    p, y = [0.2, 0.7, 0.9], [1, 1, 1]
    with caplog.at_level(logging.WARNING, logger="forensic.metrics"):
        assert math.isnan(roc_auc(p, y))
        assert math.isnan(equal_error_rate(p, y))
        assert math.isnan(average_precision(p, y))
    assert "only one class" in caplog.text
    assert accuracy(p, y) == pytest.approx(2 / 3)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="forensic.metrics"):
        metrics = binary_metrics(p, [0, 0, 0])
    assert len(caplog.records) == 1  # one warning, not one per metric
    assert math.isnan(metrics["auc"]) and math.isnan(metrics["ap"]) and math.isnan(metrics["eer"])
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert (metrics["n"], metrics["n_fake"], metrics["n_real"]) == (3, 0, 3)


def test_binary_metrics_agrees_with_the_parts_and_ranges(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 2, 300)
    p = np.clip(rng.normal(0.35 + 0.3 * labels, 0.25), 0, 1)
    metrics = binary_metrics(p, labels, threshold=0.45, n_bins=10)
    assert set(metrics) == {"auc", "ap", "accuracy", "eer", "ece", "n", "n_fake", "n_real"}
    assert metrics["auc"] == roc_auc(p, labels)
    assert metrics["ap"] == average_precision(p, labels)
    assert metrics["accuracy"] == accuracy(p, labels, threshold=0.45)
    assert metrics["eer"] == equal_error_rate(p, labels)
    assert metrics["ece"] == expected_calibration_error(p, labels, n_bins=10)
    assert (metrics["n"], metrics["n_fake"], metrics["n_real"]) == (300, labels.sum(), 300 - labels.sum())
    for key in ("auc", "ap", "accuracy", "eer", "ece"):
        assert 0.0 <= metrics[key] <= 1.0
    assert 0.7 < metrics["auc"] < 1.0  # informative but imperfect scores
    assert metrics["eer"] < 0.5


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        roc_auc([0.2, 1.5], [0, 1])
    with pytest.raises(ValueError, match="match"):
        binary_metrics([0.2, 0.5], [0, 1, 1])
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        accuracy([0.2, 0.5], [0, 2])


def test_pearson_of_values_and_of_maps(rng: np.random.Generator) -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    x, y = rng.normal(size=200), rng.normal(size=200)
    assert pearson(x, 0.5 * x + y) == pytest.approx(np.corrcoef(x, 0.5 * x + y)[0, 1], rel=1e-12)
    m = rng.random((32, 48)).astype(np.float32)  # maps: every cell counts, flattened
    assert pearson(m, 1 - m) == pytest.approx(-1.0)
    assert pearson(m, m**2) == pytest.approx(np.corrcoef(m.ravel(), (m**2).ravel())[0, 1], rel=1e-6)


def test_pearson_is_nan_when_undefined_and_refuses_unequal_shapes() -> None:
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))  # a constant side
    assert math.isnan(pearson([0.3], [0.7]))  # one value
    assert math.isnan(pearson(np.ones((4, 4)), np.eye(4)))
    with pytest.raises(ValueError, match="equal shapes"):
        pearson(np.zeros((4, 4)), np.zeros(16))


def _luma(x: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64)


@pytest.mark.parametrize("spec", ["jpeg:quality=10", "gnoise:sigma=30", "gblur:sigma=3"])
def test_ssim_matches_scikit_image(astronaut: np.ndarray, spec: str) -> None:
    from skimage.metrics import structural_similarity

    out = degrade(astronaut, spec, seed=0)
    ref = structural_similarity(_luma(astronaut), _luma(out), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255)
    assert ssim(astronaut, out) == pytest.approx(ref, abs=1e-9)
    assert ssim(astronaut, astronaut) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(1100, 1500), (12, 40), (40, 9)])
def test_ssim_in_bands_matches_the_whole_image(shape: tuple[int, int]) -> None:
    """Bands of ~1 MP (two here for 1100x1500) give scikit-image's value; tiny images average the whole map."""
    from scipy.ndimage import gaussian_filter
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    a = np.ascontiguousarray(np.kron(rng.integers(0, 256, (shape[0] // 4 + 1, shape[1] // 4 + 1, 3)), np.ones((4, 4, 1)))
                             [: shape[0], : shape[1]].astype(np.uint8))
    b = np.clip(a.astype(np.int16) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    x, y = _luma(a), _luma(b)
    if min(shape) > 10:
        ref = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    else:  # scikit-image refuses an image smaller than its window: the SSIM map written out (11x11 window, reflected edges)
        def blur(z: np.ndarray) -> np.ndarray:
            return gaussian_filter(z, 1.5, truncate=3.5, mode="reflect")

        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        ref = float(np.mean(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))))
    assert ssim(a, b) == pytest.approx(ref, abs=1e-9)


def test_ssim_refuses_images_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        ssim(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
