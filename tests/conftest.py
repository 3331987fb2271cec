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


#: the central box the training tests plant their checkerboard in (the texture crop sees all of it)
CENTRAL_BOX = (32, 32, 224, 224)


def write_planted_artifact_set(folder, *, n: int = 64, seed: int = 0):
    """A toy real/fake folder (tests/toy.py) with the checkerboard over the central region."""
    from tests.toy import write_toy_folder

    return write_toy_folder(folder, n, seed=seed, box=CENTRAL_BOX)


@pytest.fixture(scope="session")
def planted_artifact_data(tmp_path_factory):
    """64 generated 256x256 images (32 real, 32 fake with a planted checkerboard) in real/ and fake/."""
    return write_planted_artifact_set(tmp_path_factory.mktemp("planted_artifact_data"))


@pytest.fixture(scope="session")
def make_planted_artifact_set():
    """The generator behind ``planted_artifact_data``: ``make(folder, n=..., seed=...) -> folder``."""
    return write_planted_artifact_set


# ------------------------------------------------------------------------------ real browser
#: flags for Debian's Chromium in this sandbox: no first-run UI, no background network traffic
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _skip_browser(reason: str) -> None:
    print(f"SKIP browser test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium driven by Playwright (never a downloaded browser); skips with the reason."""
    import shutil
    from pathlib import Path

    executable = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if executable is None:
        _skip_browser("no Chromium at /usr/bin/chromium or on PATH (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_browser("playwright is not importable (pip install playwright; the system Chromium is used)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()
