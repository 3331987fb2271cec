"""The paper's compound engine: determinism, the strength mapping, and its statistics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensic.degrade import PAPER_OPS, CompoundConfig, compound_degrade, psnr


@pytest.fixture(scope="module")
def img(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(astronaut, (96, 80), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def tiny(astronaut: np.ndarray) -> np.ndarray:
    """32x32: enough for statistics over hundreds of seeds in well under a second each."""
    return np.ascontiguousarray(cv2.resize(astronaut, (32, 32), interpolation=cv2.INTER_AREA))


def _run(img: np.ndarray, strength: float, seed: int, config: CompoundConfig = CompoundConfig()):
    return compound_degrade(img, strength=strength, rng=np.random.default_rng(seed), config=config)


def test_default_config_is_the_papers_training_setting() -> None:
    c = CompoundConfig()
    assert (c.op_p, c.effective_prelude_p, c.strength_cap, c.beta) == (0.3, 0.3, 0.8, (1.2, 1.2))
    assert (c.distractor_p, c.max_prelude_cycles, c.jpeg_quality, c.fixed_strength) == (0.15, 5, 10, None)


def test_strength_zero_returns_identical_bytes(img: np.ndarray) -> None:
    result = _run(img, 0.0, seed=1)
    assert result.image is not img and np.array_equal(result.image, img) and result.applied == ()


def test_same_seed_same_bytes_different_seed_different_image(img: np.ndarray) -> None:
    a, b = _run(img, 0.8, seed=7), _run(img, 0.8, seed=7)
    assert np.array_equal(a.image, b.image) and a.applied == b.applied
    outputs = [_run(img, 1.0, seed=s).image for s in range(5)]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not np.array_equal(outputs[i], outputs[j]), (i, j)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_keeps_shape_and_dtype(img: np.ndarray, dtype: type) -> None:
    x = img if dtype is np.uint8 else (img / 255.0).astype(dtype)
    for strength, seed in [(0.0, 0), (0.01, 0)] + [(1.0, s) for s in range(8)]:  # untouched, and resizes undone
        out = _run(x, strength, seed).image
        assert out.shape == img.shape
        assert out.dtype == (np.uint8 if dtype is np.uint8 else np.float32)


def test_invalid_arguments_are_rejected(img: np.ndarray) -> None:
    with pytest.raises(ValueError, match="strength"):
        _run(img, 1.5, 0)
    with pytest.raises(ValueError, match="op_p"):
        CompoundConfig(op_p=2.0)
    with pytest.raises(ValueError, match="RGB"):
        compound_degrade(img[..., 0], strength=0.5, rng=np.random.default_rng(0))


def test_paper_config_applies_each_op_with_probability_op_p(tiny: np.ndarray) -> None:
    n = 400
    op_hits = {name: 0 for name in PAPER_OPS}
    preludes = 0
    strengths: list[float] = []
    for seed in range(n):
        result = _run(tiny, 1.0, seed)
        preludes += any(a.stage == "prelude" for a in result.applied)
        for a in result.applied:
            if a.stage == "op":
                op_hits[a.name] += 1
                if "strength" in a.params:
                    strengths.append(a.params["strength"])
    regular = [op_hits[name] / n for name in PAPER_OPS if name != "distractor"]
    assert np.mean(regular) == pytest.approx(0.3, abs=0.025)  # 14 ops x 400 draws: std of the mean 0.006
    assert all(0.2 < f < 0.4 for f in regular), regular
    assert op_hits["distractor"] / n == pytest.approx(0.15, abs=0.06)
    assert preludes / n == pytest.approx(0.3, abs=0.07)
    # per-op strengths: Beta(1.2, 1.2) capped at 0.8, so about 17% sit exactly on the cap
    strengths_arr = np.asarray(strengths)
    assert strengths_arr.max() == pytest.approx(0.8) and strengths_arr.min() >= 0.0
    assert 0.08 < np.mean(strengths_arr == 0.8) < 0.28


def test_prelude_alternates_jpeg_and_resize_for_1_to_5_cycles(tiny: np.ndarray) -> None:
    config = CompoundConfig(op_p=0.0, prelude_p=1.0, distractor_p=0.0)
    cycles_seen, starts = set(), set()
    for seed in range(60):
        (prelude,) = [a for a in _run(tiny, 1.0, seed, config).applied if a.stage == "prelude"]
        steps = [_parse_step(step) for step in prelude.params["steps"]]
        names = [name for name, _ in steps]
        assert len(names) == 2 * prelude.params["cycles"] and all(x != y for x, y in zip(names, names[1:]))
        assert names[0] == prelude.params["start"]
        cycles_seen.add(prelude.params["cycles"])
        starts.add(names[0])
        for name, params in steps:
            if name == "jpeg":
                assert 10 <= int(params["quality"]) <= 95
            else:
                assert params["interp"] in {"nearest", "linear", "cubic", "area"}
                assert 0.25 <= float(params["scale"]) <= 1
    assert cycles_seen == {1, 2, 3, 4, 5} and starts == {"jpeg", "resize"}


def _parse_step(step: str) -> tuple[str, dict[str, str]]:
    name, _, rest = step.partition(":")
    return name, dict(item.split("=") for item in rest.split(",") if item)


def test_op_order_is_random(tiny: np.ndarray) -> None:
    config = CompoundConfig(op_p=1.0, prelude_p=0.0, distractor_p=1.0)
    orders = {tuple(a.name for a in _run(tiny, 1.0, seed, config).applied if a.stage == "op") for seed in range(5)}
    assert len(orders) == 5 and all(sorted(o) == sorted(PAPER_OPS) for o in orders)


def test_fixed_strength_scaled_by_the_user_strength(tiny: np.ndarray) -> None:
    config = CompoundConfig(op_p=1.0, fixed_strength=0.6)
    applied = _run(tiny, 0.5, seed=3, config=config).applied
    strengths = [a.params["strength"] for a in applied if "strength" in a.params]
    assert len(strengths) >= 3 and strengths == pytest.approx([0.3] * len(strengths))


def test_user_strength_scales_probabilities_and_jpeg_range(tiny: np.ndarray) -> None:
    n = 300
    counts = {s: 0 for s in (0.25, 1.0)}
    for s in counts:
        for seed in range(n):
            applied = _run(tiny, s, seed).applied
            counts[s] += sum(a.stage == "op" and a.name != "distractor" for a in applied)
            for a in applied:
                if a.name == "jpeg":
                    assert a.params["quality"] >= round(95 - 85 * s)
    # expected ops per image: 14 * 0.3 * s
    assert counts[0.25] / n == pytest.approx(14 * 0.3 * 0.25, rel=0.15)
    assert counts[1.0] / n == pytest.approx(14 * 0.3, rel=0.1)


def test_degradation_grows_with_strength(img: np.ndarray) -> None:
    curve = []
    for s in (0.2, 0.5, 1.0):
        values = [psnr(img, _run(img, s, seed).image) for seed in range(30)]
        curve.append(np.mean(np.minimum(values, 60.0)))  # untouched images count as 60 dB, not inf
    assert curve[0] > curve[1] > curve[2], curve

