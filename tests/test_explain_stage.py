"""The explanation stage: a new report with each stream's Score-CAM and, for a fast map, its fidelity."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from forensic.explain import StreamInputs, explain_report, explain_streams, plan_for
from forensic.pipeline import Detector
from forensic.runtime import RuntimeConfig
from forensic.streams import to_tensor


@pytest.fixture(scope="module")
def detector():
    return Detector.from_preset("tiny-random", device="cpu")


def _forwarded(detector, report):
    """What the verdict pass hands the stage: each stream's input tensor and last ``norm1`` output."""
    tensors, outputs = {}, {}
    for name, s in report.streams.items():
        x = to_tensor(s.input.pixels, detector.config.stream(name))
        with torch.no_grad():
            outputs[name] = detector.model.forward_stream(name, x, return_norm1=True)
        tensors[name] = x
    return SimpleNamespace(tensors=tensors, outputs=outputs)


@pytest.mark.slow
def test_the_stage_returns_a_new_report_with_fidelity(detector, astronaut):
    verdict = detector.analyze(astronaut, stability=False)
    forwarded = _forwarded(detector, verdict)
    seen = []
    float32 = RuntimeConfig(cam_bf16=False)  # the comparison below holds to float32 rounding
    report = explain_report(detector.model, verdict, forwarded, method="fast", runtime=float32, progress=lambda stage, f: seen.append((stage, f)))
    assert verdict.explain == "none" and all(s.cam is None and s.cam_image is None for s in verdict.streams.values())
    assert report.explain == "fast" and report.prob_fake == verdict.prob_fake and "explain_fast" in report.timings
    assert seen and all(0.2 <= f <= 0.9 + 1e-9 for _, f in seen) and seen[-1][1] == pytest.approx(0.9)
    for name, s in report.streams.items():
        cam = s.to_dict()["cam"]
        assert cam["method"] == "fast" and cam["backward_passes"] == 12 and cam["forward_passes"] <= 192 // 8
        fidelity = cam["fidelity"]
        assert fidelity["level"] in ("high", "fair", "low") and fidelity["channels"] == 192
        assert fidelity["checked"] == cam["forward_passes"] - 12 and fidelity["rounds"] >= 1
        assert -1.0 <= fidelity["low_pearson"] <= fidelity["expected_pearson"] <= 1.0
        assert "fidelity" in s.cam.fidelity.summary() and "channels checked" in s.cam.fidelity.summary()
    json.dumps(report.to_dict())  # JSON-able
    # the stage's map is the map of the same input explained alone (the stage on a merged copy, this one on the model itself)
    x, norm1 = forwarded.tensors["texture"], forwarded.outputs["texture"].last_norm1
    itself = plan_for(detector.model, runtime=float32, prefer="shared")
    alone = explain_streams(detector.model, {"texture": StreamInputs(x, norm1)}, method="fast", plan=itself)["texture"]
    assert np.abs(alone.input_map - report.streams["texture"].cam.input_map).max() < 1e-4


@pytest.mark.slow
def test_exact_maps_carry_no_fidelity_estimate(detector):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    report = detector.analyze(image, stability=False)
    forwarded = _forwarded(detector, report)
    streams = {"fusion": report.streams["fusion"]}
    small = explain_report(detector.model, dataclasses.replace(report, streams=streams), forwarded, method="exact")
    cam = small.streams["fusion"].to_dict()["cam"]
    assert cam["fidelity"] is None and cam["forward_passes"] == 192 and cam["backward_passes"] == 0
