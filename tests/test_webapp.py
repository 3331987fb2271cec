"""The app's helpers without a server: slider values -> spec, SSIM, Report -> text and pictures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

from forensic.degrade import DEGRADATION_PRESETS as PRESETS, degrade, parse_spec  # noqa: E402
from webapp import render  # noqa: E402
from webapp.lab import NEUTRAL, LabSettings, preset_choices, preview  # noqa: E402


def test_neutral_settings_give_no_spec_and_an_identical_image(astronaut):
    assert NEUTRAL.spec() is None
    result = preview(astronaut, NEUTRAL)
    assert result.spec is None and result.applied == () and math.isinf(result.psnr) and result.ssim == 1.0
    assert np.array_equal(result.image, astronaut)


def test_settings_from_the_controls_as_gradio_passes_them():
    import inspect

    # the controls' order is that of from_controls' parameters (the API's parameter names)
    assert tuple(inspect.signature(LabSettings.from_controls).parameters) == LabSettings.CONTROLS
    s = LabSettings.from_controls(None, 40.0, 1.5, 9.0, 30, 10, 0.5, 0.3, None)
    assert s == LabSettings(preset="none", jpeg_quality=40, gblur_sigma=1.5, motion_length=9, motion_angle=30.0,
                            gnoise_sigma=10.0, resize_scale=0.5, compound=0.3, seed=0)
    assert isinstance(s.jpeg_quality, int) and isinstance(s.motion_length, int)
    assert LabSettings.from_controls("ffpp-c40", 100, 0, 1, 0, 0, 1, 0, 7).spec() == "ffpp-c40"


def test_spec_skips_neutral_ops_orders_jpeg_last_and_parses():
    s = LabSettings(preset="ffpp-c40", compound=0.3, gblur_sigma=1.5, motion_length=9, motion_angle=30,
                    gnoise_sigma=10, resize_scale=0.5, jpeg_quality=20, seed=7)
    spec = s.spec()
    assert spec == ("ffpp-c40;compound:strength=0.3;gblur:sigma=1.5;motion-blur:length=9,angle=30;"
                    "gnoise:sigma=10;resize:scale=0.5,interp=area;jpeg:quality=20")
    assert [c.name for c in parse_spec(spec).calls] == [
        "h264", "compound", "gblur", "motion-blur", "gnoise", "resize", "jpeg"
    ]
    assert LabSettings(jpeg_quality=100, motion_length=1, resize_scale=1.0).spec() is None
    assert LabSettings(motion_length=3, motion_angle=0).spec() == "motion-blur:length=3,angle=0"


def test_preview_matches_the_library_and_the_seed(astronaut):
    s = LabSettings(compound=0.7, jpeg_quality=40, seed=11)
    a, b = preview(astronaut, s), preview(astronaut, s)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.image, degrade(astronaut, a.spec, seed=11))  # the CLI would give the same bytes
    assert not np.array_equal(a.image, preview(astronaut, LabSettings(compound=0.7, jpeg_quality=40, seed=12)).image)
    assert a.applied[-1]["name"] == "jpeg" and a.to_dict()["seed"] == 11
    # what the app returns as JSON: strict (no NaN), and it reads back as the same record
    record = json.loads(json.dumps(render.jsonable(a.to_dict()), allow_nan=False))
    assert record["seed"] == 11 and record["spec"] == a.spec and [op["name"] for op in record["applied"]] == [
        op["name"] for op in a.applied]
    assert record["psnr"] == pytest.approx(a.psnr, abs=1e-3) and record["ssim"] == pytest.approx(a.ssim, abs=1e-5)


def test_preset_choices_cover_the_named_levels():
    values = [v for _, v in preset_choices()]
    assert values[0] == "none"
    for name in ("ffpp-c23", "ffpp-c40", "df-blur-3", "df-compress-5", "jpeg-q20", "gnoise-sigma30", "compound-0.5"):
        assert name in values
    assert all(PRESETS[v] for v in values[1:])  # no "no-op" aliases


@pytest.fixture(scope="module")
def tiny():
    from forensic.pipeline import Detector

    return Detector.from_preset("tiny-random", device="cpu")


def test_verdict_text_shows_the_face_fallback_and_the_untrained_warning(tiny, astronaut):
    from forensic import viz as figures
    from webapp.vote import vote_html

    report = tiny.analyze(astronaut, degradation="jpeg:quality=50", explain="none")
    text = render.details_html(report)
    assert "fell back (small-face)" in text and "jpeg:quality=50" in text
    for name in render.STREAMS:
        assert f"{report.streams[name].vote_prob:.1f} × " in text
    vote = vote_html(report)
    assert f"<b>{report.prob_fake:.1f}</b>" in vote and "UNTRAINED" in vote and "No verdict" in vote
    assert render.subject(report) == "the degraded upload (`jpeg:quality=50`, seed 0)"
    regions = figures.regions_picture(report)
    assert regions.shape == astronaut.shape and not np.array_equal(regions, astronaut)
    fig = figures.stability_figure(report)
    assert [round(b.get_height(), 6) for b in fig.axes[0].patches] == [round(report.streams[n].stability, 6) for n in render.STREAMS]


def test_no_face_photo_says_so(tiny, landscape):
    from forensic.faces import FaceDetector
    from forensic.pipeline import Detector
    from forensic import viz as figures

    # real MTCNN without the retry chain on enhanced copies (seconds on a no-face photo; tested in test_faces)
    detector = Detector(tiny.model, face_detector=FaceDetector(retries=False))
    report = detector.analyze(landscape, explain="none")
    text = render.details_html(report)
    assert report.face.mode == "no-face" and "No face found" in text
    fig = figures.stability_figure(report)  # nothing degraded: a hint instead of bars
    assert not fig.axes[0].patches and "Nothing was degraded" in fig.axes[0].texts[0].get_text()


def test_header_marks_untrained_and_unavailable():
    assert "UNTRAINED WEIGHTS" in render.header_markdown("preset tiny-random on cpu", untrained=True, error=None)
    text = render.header_markdown(None, untrained=False, error="Weights unavailable: x. Ways out: y")
    assert "NO DETECTOR" in text and "Ways out: y" in text
    assert "UNTRAINED" not in render.header_markdown("preset paper on cuda", untrained=False, error=None)


def test_jsonable_handles_numpy_and_nan():
    out = render.jsonable({"a": np.float32(0.5), "b": (1, 2), "c": float("nan"), "d": np.arange(2)})
    assert out == {"a": 0.5, "b": [1, 2], "c": None, "d": [0, 1]}


def test_release_free_memory_is_safe_to_call():
    from webapp.runtime import on_model_thread, release_free_memory

    release_free_memory()
    import threading

    names = {on_model_thread(lambda: threading.current_thread().name) for _ in range(3)}
    assert len(names) == 1 and next(iter(names)).startswith("forensic-model")


def test_face_detector_is_installed_without_dependencies_only_on_a_space(monkeypatch):
    import importlib.util
    import subprocess

    import app

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.delenv("SPACE_ID", raising=False)
    app.ensure_face_detector()
    assert calls == []  # locally the Makefile installs it
    monkeypatch.setenv("SPACE_ID", "me/forensics")
    app.ensure_face_detector()
    assert calls and calls[0][-3:] == ["install", "--no-deps", "facenet-pytorch==2.6.0"]


def test_explanations_start_off_only_for_a_large_model_on_a_cpu():
    """The app does not start a minutes-long Score-CAM by default (paper on a CPU); small explains in seconds."""
    from types import SimpleNamespace

    import torch

    from forensic.model import ForensicModel
    from forensic.presets import get_preset
    from webapp.runtime import default_explain

    def detector(preset: str, device: str):
        model = ForensicModel(get_preset(preset).config, device="meta")  # the structure, no weights
        return SimpleNamespace(device=torch.device(device), model=model)

    assert default_explain(None) == "fast"
    assert default_explain(detector("tiny-random", "cpu")) == "fast"
    assert default_explain(detector("small", "cpu")) == "fast"
    assert default_explain(detector("paper", "cpu")) == "none"
    assert default_explain(detector("paper", "cuda")) == "fast"


def test_a_big_upload_is_previewed_and_measured_on_a_bounded_copy():
    """One 64 MP upload made /degrade add 5 GB to the server; now the lab works on <= 4.2 MP."""
    import tracemalloc

    from forensic.degrade import psnr, ssim
    from webapp.lab import LAB_MAX_PIXELS, working_copy

    big = np.full((2600, 2600, 3), 200, np.uint8)
    big[800:1800, 600:2000] = (30, 90, 160)
    settings = LabSettings(gblur_sigma=2, jpeg_quality=50)
    tracemalloc.start()
    try:
        result = preview(big, settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 * 2**20, f"{peak / 2**20:.0f} MB"  # 530 MB at full size
    w, h = result.computed_size
    assert w * h <= LAB_MAX_PIXELS and (w, h) == (2048, 2048) and result.image.shape == (h, w, 3)
    assert result.input_size == (2600, 2600) and result.downscaled
    info = result.to_dict()
    assert info["computed_size"] == [2048, 2048] and info["downscaled"] is True
    # the numbers are those of the copy and of the preview shown
    copy = working_copy(big)
    assert np.array_equal(result.image, degrade(copy, result.spec, seed=0))
    assert result.psnr == pytest.approx(psnr(copy, result.image)) and result.ssim == pytest.approx(ssim(copy, result.image))
    assert "computed on a 2048x2048 copy of the 2600x2600 image" in render.lab_markdown(result)


def test_a_small_image_is_previewed_at_its_own_size(astronaut):
    result = preview(astronaut, LabSettings(jpeg_quality=30))
    assert result.computed_size == result.input_size == (512, 512) and not result.downscaled
    assert result.to_dict()["computed_size"] == [512, 512] and "copy" not in render.lab_markdown(result)
