"""The app starts from a damaged weights folder (or any failure to load) and says why in the header.

On a Space with ``FORENSIC_WEIGHTS`` set, a crash at start is a crash loop; the app must serve
instead, with the one-line reason where the offline message goes.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.request

import pytest

pytest.importorskip("gradio")

import app  # noqa: E402
from tests import awkward  # noqa: E402


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return awkward.good_weights_folder(tmp_path_factory.mktemp("good") / "weights")


# (generator in tests/awkward.py, the file the header must name, a piece of the reason)
DAMAGED = {
    "truncated safetensors": (awkward.truncated_safetensors, "texture.safetensors", "truncated"),
    "wrong shapes": (awkward.wrong_shapes, "face.safetensors", "shape mismatch"),
    "config as a list": (awkward.config_as_list, "config.json", "must be a JSON object, not a list"),
    "negative temperature": (awkward.negative_temperature, "config.json", "streams[0].temperature"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_load_detector_returns_the_reason_for_a_damaged_folder(good, tmp_path, case):
    make, name, piece = DAMAGED[case]
    folder = make(good, tmp_path / "w")
    detector, error = app.load_detector("tiny-random", weights=str(folder), device="cpu")
    assert detector is None
    assert error.startswith("Invalid weights: ") and str(folder / name) in error and piece in error
    assert "\n" not in error and "tiny-random" in error


def test_an_unforeseen_failure_still_leaves_the_app_serving(monkeypatch, caplog):
    """Not a weights error at all (a bug, out of memory...): one line in the header, the traceback in the log."""
    from forensic.pipeline import Detector

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported")

    monkeypatch.setattr(Detector, "from_preset", broken)
    with caplog.at_level(logging.WARNING, logger="app"):
        detector, error = app.load_detector("paper", device="cpu")
    assert detector is None and "\n" not in error
    assert error.startswith("The detector could not be loaded (RuntimeError: CUDA error: out of memory CUDA kernel")
    assert "--preset tiny-random" in error
    assert any(r.exc_info for r in caplog.records)  # the traceback is logged for the Space's logs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_main_serves_from_a_damaged_folder_with_the_reason_in_the_header(good, tmp_path, monkeypatch):
    """``FORENSIC_WEIGHTS=<damaged folder> python app.py``: no crash, the lab is served, the header says why."""
    import gradio as gr

    folder = awkward.truncated_safetensors(good, tmp_path / "w", "fusion.safetensors")
    monkeypatch.setenv("FORENSIC_WEIGHTS", str(folder))
    launched = []
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: launched.append(self))
    port = _free_port()
    assert app.main(["--preset", "tiny-random", "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)]) == 0
    try:
        config = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10).read())
        header = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "header")["props"]["value"]
        assert "NO DETECTOR" in header and "Invalid weights: " in header
        assert str(folder / "fusion.safetensors") in header and "truncated" in header
    finally:
        for demo in launched:
            demo.close()
