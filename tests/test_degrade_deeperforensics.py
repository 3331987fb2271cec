"""The df-* operations against DeeperForensics-1.0's published formulas and level tables.

Reference: ``perturbation/distortions.py`` and ``add_distortion_to_video.py`` of DeeperForensics-1.0
(Jiang et al., CVPR 2020). The expected values below are worked out from those formulas, not
taken from our outputs:

- colour space: OpenCV's YCrCb of float pixels in 0..255 (Y = .299 R + .587 G + .114 B,
  Cr = .713 (R - Y) + 0.5, Cb = .564 (B - Y) + 0.5; back: R = Y + 1.403 (Cr - 0.5),
  G = Y - .714 (Cr - 0.5) - .344 (Cb - 0.5), B = Y + 1.773 (Cb - 0.5)), moved to studio range
  Y' = (219 Y + 16) / 255, C' = (224 C + 16) / 255;
- saturation: C' -> 0.5 + (C' - 0.5) p, so back in C: C -> p C + 111.5 (1 - p) / 224, a chroma
  offset of -0.0022 (1 - p) that the final ``astype(np.uint8)`` (truncation) can see;
- contrast: ``(img * p).astype(np.uint8)``;
- noise: sqrt(v) N(0, 1) added to Y'/255 and C'/255, so sqrt(v) 255 255/219 grey levels on Y and
  sqrt(v) 255 255/224 on each chroma channel, then clipped to 0..255 and truncated;
- block-wise: ``min(H, W) // 256 * N`` grey (128) 8x8 blocks at ``randint(0, side - 1 - 8)``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from forensic.degrade.ops import DF_LEVELS, OPS, as_float

# the reference's get_distortion_parameter table, in its order: CS, CC, BW, GNC, GB, JPEG, VC
PUBLISHED_LEVELS = {
    "saturation": (0.4, 0.3, 0.2, 0.1, 0.0),
    "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),
    "block": (16, 32, 48, 64, 80),
    "noise": (0.001, 0.002, 0.005, 0.01, 0.05),
    "blur": (7, 9, 13, 17, 21),
    "pixelate": (2, 3, 4, 5, 6),
    "compress": (30, 32, 35, 38, 40),
}


def _df(kind: str, img: np.ndarray, level: int, seed: int = 0) -> np.ndarray:
    """Run ``df-<kind>`` on a uint8 image; the result in grey levels (float, exact multiples of 1/255)."""
    out = OPS[f"df-{kind}"](as_float(img), rng=np.random.default_rng(seed), level=level)
    return np.rint(out * 255.0).astype(np.int64)


def _pixels(*rgb: tuple[int, int, int]) -> np.ndarray:
    return np.asarray([rgb], dtype=np.uint8)  # 1 x len(rgb) x 3


def test_the_level_tables_are_the_published_ones() -> None:
    assert dict(DF_LEVELS) == PUBLISHED_LEVELS


def test_saturation_truncates_and_keeps_the_references_chroma_offset() -> None:
    # grey 128: Y = 128, the chroma offset -0.0022 (1 - p) moves R by -1.403 * 0.0022 (1 - p) and B
    # by -1.773 * 0.0022 (1 - p) below 128, G by +1.058 * 0.0022 (1 - p) above: truncated, 127 128 127
    for level in range(1, 6):
        assert _df("saturation", _pixels((128, 128, 128)), level).tolist() == [[[127, 128, 127]]]
    # (103, 200, 50): Y = 153.897; at p = 0 every channel is Y minus a few thousandths -> 153 (rounding: 154)
    assert _df("saturation", _pixels((103, 200, 50)), 5).tolist() == [[[153, 153, 153]]]
    # at p = 0.4: R = Y + 1.403 * .713 * 0.4 (R - Y) = 133.53, G = Y - 0.4 (.509 (R - Y) + .194 (B - Y))
    # = 172.33, B = Y + 1.773 * .564 * 0.4 (B - Y) = 112.34 -> truncated 133 172 112 (rounding: 134)
    assert _df("saturation", _pixels((103, 200, 50)), 1).tolist() == [[[133, 172, 112]]]


def test_contrast_truncates_like_astype_uint8() -> None:
    img = _pixels((255, 101, 1), (3, 201, 37))
    expected = {  # floor(value * p); rounding would give 217, 86, 1 | 3, 171, 31 at level 1
        1: [[216, 85, 0], [2, 170, 31]],  # 216.75, 85.85, 0.85 | 2.55, 170.85, 31.45
        2: [[184, 73, 0], [2, 145, 26]],  # 184.875, 73.225, 0.725 | 2.175, 145.725, 26.825
        5: [[89, 35, 0], [1, 70, 12]],  # 89.25, 35.35, 0.35 | 1.05, 70.35, 12.95
    }
    for level, want in expected.items():
        assert _df("contrast", img, level).tolist() == [want]


def _censored_floor_moments(mean: float, sigma: float) -> tuple[float, float]:
    """Mean and std of floor(clip(N(mean, sigma), 0, 255)), the reference's clip + astype(uint8)."""
    cdf = [0.5 * (1.0 + math.erf((k - mean) / (sigma * math.sqrt(2.0)))) for k in range(1, 256)]
    probs = np.diff([0.0, *cdf, 1.0])  # P(value = k) for k = 0..255
    levels = np.arange(256.0)
    m = float((probs * levels).sum())
    return m, float(math.sqrt((probs * (levels - m) ** 2).sum()))


@pytest.mark.parametrize("level", range(1, 6))
def test_noise_std_per_level_is_the_published_formulas(level: int) -> None:
    v = PUBLISHED_LEVELS["noise"][level - 1]
    s_y, s_c = math.sqrt(v) * 255 * 255 / 219, math.sqrt(v) * 255 * 255 / 224  # grey levels, Y and chroma
    channel_sigma = {  # R, G, B of the inverse conversion, independent Y, Cr, Cb noise
        0: math.hypot(s_y, 1.403 * s_c),
        1: math.sqrt(s_y**2 + (0.714 * s_c) ** 2 + (0.344 * s_c) ** 2),
        2: math.hypot(s_y, 1.773 * s_c),
    }
    out = _df("noise", np.full((384, 384, 3), 128, dtype=np.uint8), level, seed=level).reshape(-1, 3)
    for c, sigma in channel_sigma.items():
        want_mean, want_std = _censored_floor_moments(128.0, sigma)
        assert out[:, c].std() == pytest.approx(want_std, rel=0.02), (c, sigma)
        assert out[:, c].mean() == pytest.approx(want_mean, abs=0.02 * want_std)


def test_noise_is_independent_in_y_cr_cb() -> None:
    out = _df("noise", np.full((256, 256, 3), 128, dtype=np.uint8), 2).reshape(-1, 3).astype(np.float64)
    ycc = cv2.cvtColor(out.reshape(-1, 1, 3).astype(np.float32), cv2.COLOR_RGB2YCrCb).reshape(-1, 3)
    corr = np.corrcoef(ycc.T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.03


def test_block_count_follows_the_short_side_in_whole_256s() -> None:
    for shape, blocks in (((255, 400), 0), ((256, 300), 16), ((700, 512), 32)):
        black = np.zeros((*shape, 3), dtype=np.uint8)
        grey = (_df("block", black, 1)[..., 0] == 128).sum()
        if blocks == 0:
            assert grey == 0, shape  # the reference adds none under 256 px
        else:
            assert 64 < grey <= blocks * 64, (shape, grey)  # overlapping blocks share pixels


def test_block_positions_stop_one_pixel_before_the_edge() -> None:
    black = np.zeros((256, 256, 3), dtype=np.uint8)
    hit = np.zeros((256, 256), dtype=bool)
    for seed in range(20):
        hit |= _df("block", black, 5, seed)[..., 0] == 128
    # randint(0, 256 - 1 - 8) reaches 247, so a block covers at most up to row/column 254
    assert not hit[255].any() and not hit[:, 255].any()
    assert hit[254].any() and hit[:, 254].any() and hit[0].any() and hit[:, 0].any()


def test_blur_and_pixelate_are_opencvs_uint8_results(astronaut: np.ndarray) -> None:
    img = np.ascontiguousarray(astronaut[:101:, :77])
    for level in (1, 5):
        k, f = PUBLISHED_LEVELS["blur"][level - 1], PUBLISHED_LEVELS["pixelate"][level - 1]
        assert np.array_equal(_df("blur", img, level), cv2.GaussianBlur(img, (k, k), k / 6))
        small = cv2.resize(img, (77 // f, 101 // f))
        assert np.array_equal(_df("pixelate", img, level), cv2.resize(small, (77, 101)))


def test_compress_is_libx264_at_the_levels_crf(astronaut: np.ndarray) -> None:
    x = as_float(astronaut[::4, ::4])
    for level, crf in ((1, 30), (5, 40)):
        out, resolved = OPS["df-compress"].apply(x, rng=np.random.default_rng(0), params={"level": level})
        assert resolved["crf"] == crf
        assert np.array_equal(out, OPS["h264"](x, rng=np.random.default_rng(0), crf=crf))
