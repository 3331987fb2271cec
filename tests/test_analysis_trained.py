"""The studies on a small model trained on the planted-artifact toy set.

The fakes carry a +-16 one-pixel checkerboard: JPEG keeps it down to quality 40 and removes it from
quality 20 on (its DCT coefficient falls under half a quantisation step), so a texture stream that
learned it must lose its AUC as the quality falls.
"""

from __future__ import annotations

import pytest

from analysis import Analysis, AnalysisOptions
from analysis.tables import read_csv
from forensic.pipeline import Detector
from tests.analysis_helpers import NoFaces, write_toy_folder
from tests.conftest import FAINT_TOY

AMPLITUDE = FAINT_TOY.amplitude  # +-16: the toy model's recipe (tests/conftest.py), also used for the test images
LEVELS = ("q100", "q40", "q20", "q5")

pytestmark = pytest.mark.slow  # the toy model trains in ~10-15 s (70 s on a busy machine); the study ~3-30 s


@pytest.fixture(scope="module")
def trained_detector(trained_toy):
    toy = trained_toy(FAINT_TOY)  # trained once per session, shared with any other file that asks
    assert sum(toy.losses[-5:]) / 5 < 0.2, toy.losses[-5:]
    return Detector(toy.model, face_detector=NoFaces())


def test_trained_texture_auc_falls_as_jpeg_quality_falls(trained_detector, tmp_path):
    data = write_toy_folder(tmp_path / "data", 16, seed=1, amplitude=AMPLITUDE)
    options = AnalysisOptions(data=data, out=tmp_path / "out", families=("jpeg",), levels=LEVELS, batch_size=8)
    result = Analysis(trained_detector, options).robustness()
    rows = read_csv(result.csv)
    auc = {r["level"]: float(r["auc"]) for r in rows if r["stream"] == "texture"}
    assert list(auc) == list(LEVELS)
    assert auc["q100"] >= 0.9, auc
    assert auc["q5"] <= 0.75, auc
    assert auc["q100"] - auc["q5"] >= 0.25, auc
    values = [auc[level] for level in LEVELS]
    assert all(b <= a + 0.1 for a, b in zip(values, values[1:])), auc  # falls (up to small-sample noise)
    strengths = [float(r["strength"]) for r in rows if r["stream"] == "texture"]
    assert strengths == sorted(strengths) and strengths[0] == 0.0 and strengths[-1] == 1.0
    acc = {r["level"]: float(r["accuracy"]) for r in rows if r["stream"] == "texture"}
    assert acc["q100"] > acc["q5"]
