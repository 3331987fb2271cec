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
