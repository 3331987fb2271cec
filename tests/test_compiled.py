"""forensic.compiled: the opt-in torch.compile of the streams and its eager fallback."""

from __future__ import annotations

import logging

import pytest
import torch

from forensic.compiled import StreamsForward, compile_requested
from forensic.model import ForensicModel
from forensic.presets import get_preset


@pytest.fixture(scope="module")
def model() -> ForensicModel:
    return ForensicModel.random(get_preset("tiny-random").config, seed=0).eval()


def _inputs(model: ForensicModel) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {s.name: torch.randn(2, 3, s.size, s.size, generator=g) for s in model.config.streams}


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("on", True), ("0", False), ("", False), ("no", False)])
def test_the_environment_switch(monkeypatch, value, expected):
    monkeypatch.setenv("FORENSIC_COMPILE", value)
    assert compile_requested() is expected
    assert compile_requested(False) is False and compile_requested(True) is True


def test_off_and_on_a_cpu_the_streams_run_eagerly(model, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("compiled on a CPU"))
    for flag in (False, True):
        run = StreamsForward(model, compile=flag)
        assert not run.compiled
        with torch.inference_mode():
            out = run(_inputs(model), return_attention=True)
            ref = model.forward_streams(_inputs(model), return_attention=True)
        for name in ref:
            assert torch.equal(out[name].logits, ref[name].logits)


def test_a_failing_compiled_graph_falls_back_to_eager_for_good(model, monkeypatch, caplog):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("inductor: no compiler\nlong trace")

    run = StreamsForward(model)
    run._compiled = broken  # what a CUDA device would have got from torch.compile
    with caplog.at_level(logging.WARNING), torch.inference_mode():
        first = run(_inputs(model), return_attention=True)
        second = run(_inputs(model), return_attention=True)
        ref = model.forward_streams(_inputs(model), return_attention=True)
    assert calls == [1] and not run.compiled
    assert "running them eagerly" in caplog.text and "long trace" not in caplog.text
    for name in ref:
        assert torch.equal(first[name].prob_fake, ref[name].prob_fake) and torch.equal(second[name].logits, ref[name].logits)


def test_compiled_outputs_are_copies_not_graph_buffers(model):
    """CUDA graphs overwrite their outputs on the next replay: the wrapper hands out copies."""
    buffers = model.forward_streams(_inputs(model), return_attention=True)
    run = StreamsForward(model)
    run._compiled = lambda tensors, **kw: buffers
    out = run(_inputs(model), return_attention=True)
    for name, o in out.items():
        assert torch.equal(o.logits, buffers[name].logits) and o.logits.data_ptr() != buffers[name].logits.data_ptr()


def test_detector_takes_the_switch():
    from forensic.pipeline import Detector

    detector = Detector.from_preset("tiny-random", device="cpu", compile=True)
    assert not detector._forward.compiled  # a CPU: eager, as documented
