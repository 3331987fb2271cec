# Order and thread checks (opt-in): `pytest --shuffle-seed N` shuffles modules and tests within them; `--torch-threads N` sets torch's thread count.
"""Shared fixtures: real photos, small generated images and a toy model trained once per session."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest


# ------------------------------------------------------------------------------ order and threads
def pytest_addoption(parser) -> None:
    group = parser.getgroup("forensic", "order and thread checks")
    group.addoption("--shuffle-seed", type=int, default=None, metavar="N",
                    help="run the test modules, and the tests within each, in an order shuffled with seed N")
    group.addoption("--torch-threads", type=int, default=None, metavar="N",
                    help="torch.set_num_threads(N) at session start (results must not depend on it)")


def pytest_report_header(config) -> list[str]:
    seed, threads = config.getoption("shuffle_seed"), config.getoption("torch_threads")
    return [f"shuffle seed: {seed}, torch threads: {threads}"] if seed is not None or threads is not None else []


def pytest_sessionstart(session) -> None:
    threads = session.config.getoption("torch_threads")
    if threads is not None:
        if threads < 1:
            raise pytest.UsageError(f"--torch-threads must be at least 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items) -> None:
    """``--shuffle-seed N``: modules in a shuffled order, and each module's tests shuffled; a module's
    tests stay together, so its module-scoped fixtures are still set up once."""
    seed = config.getoption("shuffle_seed")
    if seed is None:
        return
    rng = random.Random(seed)
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    groups = list(modules.values())
    rng.shuffle(groups)
    for group in groups:
        rng.shuffle(group)
    items[:] = [item for group in groups for item in group]


@pytest.fixture(autouse=True, scope="module")
def _torch_threads_kept():
    """Each module gives back the torch thread count it found (a training run sets its own
    ``threads``): no module runs with a count left by whichever module ran before it."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


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
    """A toy real/fake folder (forensic/toy.py) with the checkerboard over the central region."""
    from forensic.toy import write_toy_folder

    return write_toy_folder(folder, n, seed=seed, box=CENTRAL_BOX)


@pytest.fixture(scope="session")
def planted_artifact_data(tmp_path_factory):
    """64 generated 256x256 images (32 real, 32 fake with a planted checkerboard) in real/ and fake/."""
    return write_planted_artifact_set(tmp_path_factory.mktemp("planted_artifact_data"))


@pytest.fixture(scope="session")
def make_planted_artifact_set():
    """The generator behind ``planted_artifact_data``: ``make(folder, n=..., seed=...) -> folder``."""
    return write_planted_artifact_set


# ------------------------------------------------------------------------------ a trained toy model
@dataclass(frozen=True)
class ToyRecipe:
    """How a toy model is trained (forensic/toy.py): ``tiny-random`` with one stream trained on the
    planted-artifact set. Equal recipes give equal models, so the recipe is the cache key."""

    n: int = 48  #: training images, real and fake interleaved
    amplitude: float = 40.0  #: of the planted +-checkerboard
    steps: int = 40
    stream: str = "texture"
    data_seed: int = 0
    model_seed: int = 0


#: the toy model whose Score-CAMs are checked against the planted box (test_cam.py)
TOY = ToyRecipe()
#: a fainter artifact (+-16) that JPEG keeps down to quality 40 and removes from 20 on (test_analysis_trained.py).
#: The Score-CAM checks need TOY: on this model fast and exact maps disagree on some fakes (Pearson 0.37).
FAINT_TOY = ToyRecipe(n=96, amplitude=16.0)


@dataclass
class TrainedToy:
    """A trained toy model (a private copy: a test may change it) and its training losses."""

    recipe: ToyRecipe
    model: object  # ForensicModel, in eval mode
    losses: list[float]


@pytest.fixture(scope="session")
def trained_toy() -> Callable[..., TrainedToy]:
    """``trained_toy(recipe=TOY) -> TrainedToy``: each recipe is trained once per session (~10-70 s
    on 2 cores), whichever test file asks first; every call gets its own copy of the model."""
    import torch

    from forensic.model import ForensicModel
    from forensic.presets import get_preset
    from forensic.toy import toy_set, train_stream

    trained: dict[ToyRecipe, tuple[ForensicModel, list[float]]] = {}

    def get(recipe: ToyRecipe = TOY) -> TrainedToy:
        if recipe not in trained:
            model = ForensicModel.random(get_preset("tiny-random").config, seed=recipe.model_seed)
            images, labels = toy_set(recipe.n, seed=recipe.data_seed, amplitude=recipe.amplitude)
            losses = train_stream(model, recipe.stream, images, labels, steps=recipe.steps)
            trained[recipe] = (model.eval(), losses)
        model, losses = trained[recipe]
        return TrainedToy(recipe, model.cast_copy(torch.float32), list(losses))  # ForensicModel cannot be deep-copied

    return get


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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests and its module fixtures (use with ``pytest.mark.usefixtures``):
    two torch threads on a busy two-core machine run ~100x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def count_forward(monkeypatch) -> Callable:
    """``count_forward(detector)`` -> the number of images each of ``detector``'s forward passes
    sees from then on, in order (a spy on the detector's own forward callable; undone after the test)."""

    def spy_on(detector) -> list[int]:
        sizes: list[int] = []
        run = detector._forward

        def spy(tensors, **kwargs):
            sizes.append(next(iter(tensors.values())).shape[0])
            return run(tensors, **kwargs)

        monkeypatch.setattr(detector, "_forward", spy)
        return sizes

    return spy_on
