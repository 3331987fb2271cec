"""Shared fixtures: real photos and small generated images."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's public-domain NASA portrait (512x512 RGB uint8, one clear face)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def landscape() -> np.ndarray:
    """A real photo with no face: scikit-image's coffee cup (400x600 RGB uint8)."""
    from skimage import data

    return np.ascontiguousarray(data.coffee())


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
