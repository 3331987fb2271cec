"""Attention entropy and cosine similarity against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from forensic.explain.attention import attention_entropy, map_entropy, shannon_entropy
from forensic.explain.similarity import cosine, cosine_matrix, map_similarity


def test_uniform_attention_has_maximal_entropy():
    att = torch.full((24, 324), 1 / 324)
    result = attention_entropy(att)
    assert result.nats == pytest.approx(math.log(324)) and result.max_nats == pytest.approx(5.7807, abs=1e-4)
    assert result.normalized == pytest.approx(1.0)


def test_attention_entropy_equals_a_hand_computation():
    # two heads over four patches; the head average is (0.45, 0.35, 0.1, 0.1)
    att = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1]], dtype=torch.float64)
    mean = [0.45, 0.35, 0.1, 0.1]
    expected = -sum(p * math.log(p) for p in mean)
    result = attention_entropy(att)
    assert result.nats == pytest.approx(expected, abs=1e-12)
    assert result.normalized == pytest.approx(expected / math.log(4), abs=1e-12)
    assert result.per_head[0] == pytest.approx(-(0.7 * math.log(0.7) + 3 * 0.1 * math.log(0.1)), abs=1e-12)


def test_one_hot_attention_has_zero_entropy():
    att = torch.zeros(3, 10)
    att[:, 4] = 1
    assert attention_entropy(att).nats == pytest.approx(0.0, abs=1e-12)


def test_map_entropy_treats_the_map_as_a_distribution():
    flat = np.ones((18, 18))
    assert map_entropy(flat).nats == pytest.approx(math.log(324))
    peaked = np.zeros((18, 18))
    peaked[3, 4] = 5.0
    assert map_entropy(peaked).nats == pytest.approx(0.0, abs=1e-12)
    two = np.zeros((2, 2))
    two[0, 0], two[1, 1] = 1.0, 3.0
    assert map_entropy(two).nats == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    assert map_entropy(np.zeros((4, 4))).normalized == 1.0  # no attention at all: reported as uniform
    assert float(shannon_entropy(np.array([0.5, 0.5, 0.0]))) == pytest.approx(math.log(2))


def test_cosine_and_matrices():
    assert cosine([1, 0], [0, 1]) == 0.0
    assert cosine([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert cosine([1, 2], [-1, -2]) == pytest.approx(-1.0)
    assert cosine([0, 0], [1, 1]) == 0.0
    m = cosine_matrix({"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.0, 1.0])})
    assert m.values.shape == (3, 3) and np.allclose(np.diag(m.values), 1) and np.allclose(m.values, m.values.T)
    assert m.get("a", "b") == pytest.approx(1 / math.sqrt(2))
    assert m.to_dict()["names"] == ["a", "b", "c"]


def test_map_similarity_compares_maps_at_a_common_size():
    h, w = 600, 400
    a = np.zeros((h, w), np.float32)
    a[:300] = 1
    b = a.copy()
    c = 1 - a
    sim = map_similarity({"a": a, "b": b, "c": c})
    assert sim.get("a", "b") == pytest.approx(1.0, abs=1e-6)
    assert sim.get("a", "c") == pytest.approx(0.0, abs=1e-2)
    with pytest.raises(ValueError, match="shape"):
        map_similarity({"a": a, "b": np.zeros((10, 10))})


# ------------------------------------------------------------------------------ faithfulness (deletion / insertion)
def _box_model(h: int = 64):
    """A checkerboard input and a score that is the mean squared value of the top-left quarter: the
    map that puts that quarter first is the perfect map (deletion AUC 0.125, insertion 0.875 at 16 steps)."""
    yy, xx = np.mgrid[:h, :h]
    x = torch.zeros(3, h, h)
    x[0] = torch.as_tensor(np.where((yy + xx) % 2 == 0, 1.0, -1.0))
    calls = []

    def score(batch):
        calls.append(batch.shape[0])
        return batch[:, 0, : h // 2, : h // 2].pow(2).mean(dim=(1, 2))

    perfect = np.zeros((h, h), np.float32)
    perfect[: h // 2, : h // 2] = 1.0
    return x, score, perfect, calls


def test_deletion_and_insertion_areas_of_a_perfect_map_and_of_chance():
    from forensic.explain.faithfulness import deletion_insertion, map_faithfulness

    x, score, perfect, calls = _box_model()
    best, worst = deletion_insertion(score, x, [perfect, 1.0 - perfect], steps=16)
    assert best.deletion_auc == pytest.approx(0.125, abs=1e-3) and best.insertion_auc == pytest.approx(0.875, abs=1e-3)
    assert best.deletion[0] == pytest.approx(1.0) and best.deletion[-1] == 0.0 and best.insertion[0] < 1e-3  # blurred canvas
    assert worst.deletion_auc == pytest.approx(0.875, abs=1e-3) and worst.insertion_auc == pytest.approx(0.125, abs=1e-3)
    assert sum(calls) == 3 + 2 * 2 * 15  # shared end points, then 15 inner steps per curve and map
    result = map_faithfulness(score, x, perfect, grid=(8, 8), steps=16, random_maps=4, seed=1)
    assert result.map.deletion_auc == pytest.approx(0.125, abs=1e-3)
    assert 0.3 < result.random.deletion_auc < 0.7 and 0.3 < result.random.insertion_auc < 0.7  # chance: about 0.5
    assert set(result.to_dict()) == {"deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "steps"}
    with pytest.raises(ValueError, match="does not fit"):
        deletion_insertion(score, x, [np.zeros((8, 8))])


def test_random_maps_are_smooth_like_score_cam_maps():
    from forensic.explain.faithfulness import random_map

    m = random_map((252, 252), (18, 18), np.random.default_rng(0))
    assert m.shape == (252, 252) and 0.0 <= m.min() and m.max() <= 1.0
    assert np.abs(np.diff(m, axis=1)).max() < 0.1  # bilinear from an 18x18 grid: no pixel noise
    assert not np.array_equal(m, random_map((252, 252), (18, 18), np.random.default_rng(1)))


# ------------------------------------------------------------------------------ a fast map's fidelity estimate
def test_fidelity_estimate_follows_the_observed_errors():
    from forensic.explain.types import CamFidelity
    from forensic.explain.fast import map_fidelity

    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(64, 100, generator=gen)
    scores = torch.randn(64, generator=gen)
    level = (tokens.mean(1) - tokens.mean()) / tokens.mean(1).std()
    known = torch.zeros(64, dtype=torch.bool)
    known[:8] = True
    tiny_errors, big_errors = torch.full((8,), 1e-4), torch.randn(8, generator=gen) * 5
    assert map_fidelity(scores, tokens, torch.ones(64, dtype=torch.bool), None, None, level) == (1.0, 1.0)  # all exact
    assert all(np.isnan(map_fidelity(scores, tokens, known, None, None, level)))  # no evidence: unknown
    good = map_fidelity(scores, tokens, known, tiny_errors, level[:8], level)
    bad = map_fidelity(scores, tokens, known, big_errors, level[:8], level)
    assert good[0] > 0.99 and bad[0] < 0.9 and bad[1] <= bad[0]
    f = CamFidelity(expected_pearson=0.9, low_pearson=0.7, agreement=0.99, checked=12, channels=192, rounds=4)
    assert f.level == "fair" and f.to_dict()["expected_pearson"] == 0.9 and "12 of 192 channels checked" in f.summary()
    assert CamFidelity(float("nan"), float("nan"), 1.0, 0, 192, 0).to_dict()["level"] == "unknown"
    finished = CamFidelity(1.0, 1.0, 0.99, 192, 192, 2, fast_estimate=0.71)
    assert finished.level == "exact" and finished.to_dict()["fast_estimate"] == 0.71
    assert finished.summary() == ("fidelity exact: all 192 channels scored, the exact Score-CAM map "
                                  "(the fast estimate, expected r 0.71, was not high)")
    assert CamFidelity(1.0, 1.0, 1.0, 192, 192, 0).why_exact == "" and f.why_exact == ""  # exact from the start; not finished


# ------------------------------------------------------------------------------ analysis: cam-drift's faithfulness table
def test_cam_faithfulness_table_summarises_areas_gains_and_fidelity(tmp_path):
    from analysis.cam_drift import FAITHFULNESS_COLUMNS, cam_faithfulness_table
    from analysis.conditions import Condition
    from analysis.data import AnalysisSample
    from analysis.runner import CAM_KEY, cam_key, cam_store

    store = cam_store(tmp_path)
    samples = [AnalysisSample(tmp_path / f"{i}.png", f"{i}.png", i % 2) for i in range(2)]
    clean = Condition("compound", "0", 0.0, "none")
    rows = []
    for i, s in enumerate(samples):
        row = dict(zip(CAM_KEY, cam_key(s, "none", 0, "fast", None)), label=s.label, error=None)
        row["streams"] = {"texture": {
            "deletion_auc": 0.2 + 0.1 * i, "insertion_auc": 0.8, "random_deletion_auc": 0.5, "random_insertion_auc": 0.5,
            "cam_fidelity": 0.9 + 0.05 * i, "cam_fidelity_low": 0.8,
        }}
        rows.append(row)
    store.append(rows)
    (row,) = cam_faithfulness_table(store, samples, [clean], seed=0, method="fast", box=None, streams=["texture"])
    assert tuple(row) == FAITHFULNESS_COLUMNS and row["n"] == 2 and row["n_fidelity"] == 2
    assert row["deletion_auc_mean"] == pytest.approx(0.25) and row["deletion_gain_mean"] == pytest.approx(0.25)
    assert row["insertion_gain_mean"] == pytest.approx(0.3) and row["fidelity_min"] == pytest.approx(0.9)
