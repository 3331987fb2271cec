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


def write_planted_artifact_set(folder, *, n: int = 64, seed: int = 0, size: int = 256):
    """A toy real/fake folder: real = smooth random colour fields (varied scale and colours, mild
    noise); fake = the same kind of image with a +-40 one-pixel checkerboard planted over the
    central region (32..224). Lossless PNG, so the artifact survives decoding. Returns the folder."""
    import cv2
    from pathlib import Path

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    for sub in ("real", "fake"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    lo, hi = size // 8, size - size // 8
    for i in range(n):
        k = int(rng.integers(3, 9))
        img = cv2.resize(rng.uniform(30, 225, (k, k, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0, 4, img.shape).astype(np.float32)
        fake = i % 2 == 1
        if fake:
            yy, xx = np.mgrid[lo:hi, lo:hi]
            img[lo:hi, lo:hi] += (40.0 * np.where((yy + xx) % 2 == 0, 1.0, -1.0))[..., None]
        rgb = np.clip(img, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / ("fake" if fake else "real") / f"img_{i:03d}.png"), np.ascontiguousarray(rgb[..., ::-1]))
    return folder


@pytest.fixture(scope="session")
def planted_artifact_data(tmp_path_factory):
    """64 generated 256x256 images (32 real, 32 fake with a planted checkerboard) in real/ and fake/."""
    return write_planted_artifact_set(tmp_path_factory.mktemp("planted_artifact_data"))


@pytest.fixture(scope="session")
def make_planted_artifact_set():
    """The generator behind ``planted_artifact_data``: ``make(folder, n=..., seed=...) -> folder``."""
    return write_planted_artifact_set
