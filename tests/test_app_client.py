"""The Gradio app driven through ``gradio_client`` against a server launched on a free local port.

One server with the ``tiny-random`` detector serves the whole module (launching costs seconds);
another without a detector checks the offline path. Values are checked, not only shapes.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import struct
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import app  # noqa: E402
from tests.served import free_port, launch

EXAMPLES = ROOT / "examples"
ASTRONAUT = EXAMPLES / "astronaut.jpg"
FACE_CROP = EXAMPLES / "astronaut_face.png"
GRID = {round(0.1 * i, 1) for i in range(11)}
NEUTRAL = {"preset": "none", "jpeg_quality": 100, "gblur_sigma": 0, "motion_length": 1, "motion_angle": 0,
           "gnoise_sigma": 0, "resize_scale": 1, "compound_strength": 0, "seed": 0}
OFFLINE_MESSAGE = "Weights unavailable: test weights. No network here. Ways out: pass --weights DIR; or run with --preset tiny-random."


def _read(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _lab(**changes) -> dict:
    return {**NEUTRAL, **changes}


def _plot_png(plot: dict) -> np.ndarray:
    assert plot["type"] == "matplotlib"
    head, data = plot["plot"].split(",", 1)
    assert head.startswith("data:image/png;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


@pytest.fixture(scope="module")
def server():
    from forensic.pipeline import Detector

    demo = app.build_demo(Detector.from_preset("tiny-random", device="cpu"))
    url = launch(demo)
    client = Client(url, verbose=False)
    yield url, client
    client.close() if hasattr(client, "close") else None
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return server[1]


@pytest.fixture(scope="module")
def astronaut_analysis(client):
    return client.predict(handle_file(str(ASTRONAUT)), **_lab(jpeg_quality=40), explain="fast", api_name="/analyze")


def test_named_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/degrade", "/analyze", "/report", "/compare", "/sweep", "/analyze_batch", "/analyze_video"}
    for api in ("/analyze", "/report", "/compare"):  # the same inputs; a verdict's also whether to vote without a face
        face = ["vote_without_face"] if api != "/compare" else []
        assert [p["parameter_name"] for p in endpoints[api]["parameters"]] == ["image", *NEUTRAL, "explain", *face]
    assert [p["parameter_name"] for p in endpoints["/analyze_batch"]["parameters"]] == ["files"]
    assert [p["parameter_name"] for p in endpoints["/sweep"]["parameters"]] == ["image", "family", "seed"]


def test_degrade_changes_the_image_and_reports_quality(client):
    original = _read(str(ASTRONAUT))
    image, spec, summary, info = client.predict(handle_file(str(ASTRONAUT)), **_lab(jpeg_quality=20, gblur_sigma=1.5), api_name="/degrade")
    out = _read(image)
    assert out.shape == original.shape
    assert np.abs(out.astype(int) - original).mean() > 1.0
    assert spec == "gblur:sigma=1.5;jpeg:quality=20"  # jpeg last, whatever the slider order
    assert [op["name"] for op in info["applied"]] == ["gblur", "jpeg"]
    assert 15 < info["psnr"] < 40 and 0.3 < info["ssim"] < 0.99
    assert "PSNR" in summary and "SSIM" in summary
    # the returned PSNR is the one of the returned pixels (PNG output: lossless)
    mse = np.mean((out.astype(float) - original) ** 2)
    assert info["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-2)


def test_degrade_neutral_is_identity(client):
    image, spec, summary, info = client.predict(handle_file(str(ASTRONAUT)), **NEUTRAL, api_name="/degrade")
    assert spec == "" and info["applied"] == [] and info["ssim"] == pytest.approx(1.0)
    assert np.array_equal(_read(image), _read(str(ASTRONAUT)))


def test_degrade_is_reproducible_by_seed(client):
    src = handle_file(str(FACE_CROP))
    a = client.predict(src, **_lab(compound_strength=0.8, seed=3), api_name="/degrade")
    b = client.predict(src, **_lab(compound_strength=0.8, seed=3), api_name="/degrade")
    c = client.predict(src, **_lab(compound_strength=0.8, seed=4), api_name="/degrade")
    assert a[1] == "compound:strength=0.8"
    assert np.array_equal(_read(a[0]), _read(b[0]))
    assert not np.array_equal(_read(a[0]), _read(c[0]))
    assert a[3]["applied"] == b[3]["applied"] != c[3]["applied"]


def test_degrade_preset_and_bad_preset(client):
    _, spec, _, info = client.predict(handle_file(str(FACE_CROP)), **_lab(preset="ffpp-c40", gnoise_sigma=5), api_name="/degrade")
    assert spec == "ffpp-c40;gnoise:sigma=5"
    assert [op["name"] for op in info["applied"]] == ["h264", "gnoise"]
    with pytest.raises((AppError, ValueError), match="no-such-preset"):  # the dropdown refuses values outside its choices
        client.predict(handle_file(str(FACE_CROP)), **_lab(preset="no-such-preset"), api_name="/degrade")


@pytest.mark.slow  # ~3.5 s: the astronaut_analysis fixture, an analysis with fast Score-CAM
def test_analyze_returns_verdict_overlays_plots_and_report(astronaut_analysis):
    vote, details, regions, *rest = astronaut_analysis
    overlays, plots, report = rest[:3], rest[3:7], rest[7]
    p = report["prob_fake"]
    # the vote's side follows from its threshold; untrained weights: no label, the same verdict word as the page
    assert p in GRID and report["vote"]["label"] == ("fake" if p >= 0.5 else "real")
    assert report["label"] is None and report["verdict"] == "none (untrained)" and "none (untrained)" in vote
    # the vote as the grid it is, never a bare label with confidence bars; untrained: no verdict word
    assert f"P(fake) = <b>{p:.1f}</b>" in vote and vote.count("fv-chosen") == 1
    assert "UNTRAINED" in vote and "No verdict" in vote and "Leans" not in vote
    assert "jpeg:quality=40" in vote and "P(fake)" in details
    assert report["untrained"] is True and report["preset"] == "tiny-random" and report["explain"] == "fast"
    assert set(report["streams"]) == {"texture", "face", "fusion"}
    for name, stream in report["streams"].items():
        assert 0.0 <= stream["prob_fake"] <= 1.0 and stream["vote_prob"] in GRID
        assert 0.0 < stream["attention_entropy"]["normalized"] <= 1.0
        assert stream["cam"]["method"] == "fast"
        assert 0.9 < stream["stability"] <= 1.0 + 1e-6  # JPEG q40 vs clean
    assert report["degradation"]["spec"] == "jpeg:quality=40"
    # the vote: weighted mean of the rounded stream values, rounded to the grid
    weights = report["vote"]["weights"]
    mean = sum(weights[n] * report["streams"][n]["vote_prob"] for n in weights) / sum(weights.values())
    assert abs(mean - p) <= 0.05 + 1e-9
    # the overlays and the regions picture are in the input's coordinates
    for path in (regions, *overlays):
        assert _read(path).shape == (512, 512, 3)
    # three matplotlib figures plus the stability bars, all real PNGs
    for plot in plots:
        assert _plot_png(plot).shape[0] > 200
    # strict JSON for other tools: no NaN or Infinity (Python's json would have read them back silently)
    assert json.loads(json.dumps(report, allow_nan=False)) == report


@pytest.mark.slow  # shares astronaut_analysis (it would pay for it alone in `make test-fast`)
def test_analyze_makes_the_face_fallback_visible(astronaut_analysis):
    _, verdict, _, *rest = astronaut_analysis
    report = rest[7]
    assert report["face"]["mode"] == "small-face" and report["face"]["box"] is not None
    assert report["streams"]["face"]["input"]["kind"] == "face-fallback"
    assert "fell back" in verdict and "4%" in verdict


def test_analyze_face_crop_and_regions(client):
    out = client.predict(handle_file(str(FACE_CROP)), **NEUTRAL, explain="none", api_name="/analyze")
    report, regions = out[-1], _read(out[2])
    assert report["face"]["mode"] == "crop"
    assert report["streams"]["face"]["input"]["kind"] == "face-crop"
    assert report["degradation"] is None and report["streams"]["face"]["stability"] is None
    # the upload's provenance hints ride in the JSON, outside the vote (the page shows them in #provenance)
    assert report["provenance"]["has_file"] is True and report["provenance"]["c2pa"]["present"] is False
    assert "provenance" not in report["vote"]
    assert out[3] is None and out[4] is None and out[5] is None  # no explanations asked for
    # the regions are drawn in the streams' colours (texture orange, face green)
    colours = {tuple(c) for c in regions.reshape(-1, 3)}
    assert (255, 140, 0) in colours and (40, 180, 90) in colours


def test_sweep_rows_and_figure(client):
    plot, rows = client.predict(handle_file(str(FACE_CROP)), family="jpeg", seed=0, api_name="/sweep")
    strengths = [r["strength"] for r in rows["rows"]]
    assert strengths == pytest.approx([i / 10 for i in range(11)])
    assert rows["rows"][0]["spec"] is None and rows["rows"][-1]["spec"] == "jpeg:quality=5"
    assert all(r["prob_fake"] in GRID for r in rows["rows"])
    assert rows["rows"][0]["streams"]["texture"]["stability"] == pytest.approx(1.0, abs=1e-6)
    assert _plot_png(plot).shape[1] > 800
    # it says what it sweeps from: the lab's settings are not applied (issue 15.7)
    assert rows["swept_from"].startswith("the clean upload") and "not applied" in rows["swept_from"]


# ------------------------------------------------------------------------------ issue 15: batch, report, compare
def test_analyze_batch_takes_files_and_returns_a_csv(client, tmp_path):
    bad = _text_as_png(tmp_path)
    out = client.predict([handle_file(str(FACE_CROP)), handle_file(str(bad)), handle_file(str(EXAMPLES / "coffee.jpg"))],
                         api_name="/analyze_batch")
    assert out.endswith(".csv")
    rows = list(csv.DictReader(open(out, newline="")))
    assert list(rows[0]) == ["file", "prob_fake", "label", "verdict", "texture", "face", "fusion", "face_mode", "preset", "untrained", "error"]
    assert [r["file"] for r in rows] == ["astronaut_face.png", "notes.png", "coffee.jpg"]  # upload order, names kept
    assert "not an image" in rows[1]["error"] and rows[1]["prob_fake"] == ""
    assert [r["face_mode"] for r in (rows[0], rows[2])] == ["crop", "no-face"]
    assert all(float(r["prob_fake"]) in GRID and r["error"] == "" and r["preset"] == "tiny-random" for r in (rows[0], rows[2]))
    assert [(r["label"], r["verdict"]) for r in (rows[0], rows[2])] == [("", "none (untrained)")] * 2  # as the page says
    with pytest.raises(AppError, match="Add one or more image files"):
        client.predict([], api_name="/analyze_batch")


def test_report_is_a_self_contained_html_file_of_the_analysis(client):
    path = client.predict(handle_file(str(FACE_CROP)), **_lab(jpeg_quality=40), explain="none", api_name="/report")
    assert path.endswith("astronaut_face_report.html")
    text = Path(path).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*['"](?!data:)""", text)  # nothing outside the file
    record = json.loads(re.search(r"id='report-json'>(.*?)</script>", text, re.S).group(1).replace("<\\/", "</"))
    direct = client.predict(handle_file(str(FACE_CROP)), **_lab(jpeg_quality=40), explain="none", api_name="/analyze")[-1]
    assert record["prob_fake"] == direct["prob_fake"] and record["streams"]["face"]["prob_fake"] == pytest.approx(
        direct["streams"]["face"]["prob_fake"])
    assert record["degradation"]["spec"] == "jpeg:quality=40" and record["untrained"] is True
    for needed in ("UNTRAINED", "preset tiny-random", "jpeg:quality=40", "Feature stability", "Attention entropy"):
        assert needed in text


@pytest.mark.slow  # ~4-6 s: two analyses with fast Score-CAM
def test_compare_gives_clean_and_degraded_overlays_and_the_map_drift(client):
    out = client.predict(handle_file(str(FACE_CROP)), **_lab(gblur_sigma=3), explain="fast", api_name="/compare")
    clean, degraded, plot, data = out[:3], out[3:6], out[6], out[7]
    for a, b in zip(clean, degraded):
        assert _read(a).shape == _read(b).shape == (256, 256, 3) and not np.array_equal(_read(a), _read(b))
    assert data["spec"] == "gblur:sigma=3" and data["method"] == "fast"
    assert all(-1 <= data["streams"][n]["map_cosine"] <= 1 and 0 < data["streams"][n]["feature_cosine"] <= 1 + 1e-6
               for n in ("texture", "face", "fusion"))
    assert _plot_png(plot).shape[0] > 200
    with pytest.raises(AppError, match="Nothing to compare"):
        client.predict(handle_file(str(FACE_CROP)), **NEUTRAL, explain="fast", api_name="/compare")


def _text_as_png(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n" * 20)
    return path


def _truncated_jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "cut.jpg"
    data = ASTRONAUT.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _huge_png(tmp_path: Path) -> Path:
    # a 1x1 PNG whose header claims 100000 x 100000: refused before any pixel is decoded
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    png[16:24] = struct.pack(">II", 100_000, 100_000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(png))
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [(_text_as_png, "text, not an image"), (_truncated_jpeg, "truncated"), (_huge_png, "megapixels")],
)
def test_bad_uploads_give_a_clear_message_and_the_server_keeps_serving(client, tmp_path, make, words):
    bad = handle_file(str(make(tmp_path)))
    # the lab returns the reason (and no image), so the page never keeps a stale preview ...
    image, spec, summary, info = client.predict(bad, **NEUTRAL, api_name="/degrade")
    assert image is None and spec == "" and words in info["error"] and words in summary
    # ... and the detector's endpoint raises it
    with pytest.raises(AppError) as raised:
        client.predict(bad, **NEUTRAL, explain="none", api_name="/analyze")
    assert words in str(raised.value)
    image, *_ = client.predict(handle_file(str(FACE_CROP)), **_lab(jpeg_quality=50), api_name="/degrade")
    assert _read(image).shape == (256, 256, 3)


def test_odd_modes_are_decoded(client, tmp_path):
    grey16 = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(path)
    image, _, _, info = client.predict(handle_file(str(path)), **NEUTRAL, api_name="/degrade")
    out = _read(image)
    assert out.shape == (48, 64, 3) and np.array_equal(out[..., 0], out[..., 2])
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert any("16" in note for note in info["notes"])


@pytest.fixture(scope="module")
def offline_server():
    demo = app.build_demo(None, error=OFFLINE_MESSAGE)
    url = launch(demo)
    yield url, Client(url, verbose=False), demo
    demo.close()


def test_without_detector_the_lab_works_and_the_message_shows(offline_server):
    url, client, _ = offline_server
    config = json.loads(urllib.request.urlopen(url + "config", timeout=10).read())
    header = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "header")
    assert OFFLINE_MESSAGE in header["props"]["value"] and "NO DETECTOR" in header["props"]["value"]
    image, spec, _, _ = client.predict(handle_file(str(ASTRONAUT)), **_lab(gnoise_sigma=20, seed=1), api_name="/degrade")
    assert spec == "gnoise:sigma=20" and _read(image).shape == (512, 512, 3)
    # analyze: no verdict, but the face analysis (no weights needed) and the reason
    out = client.predict(handle_file(str(ASTRONAUT)), **NEUTRAL, explain="fast", api_name="/analyze")
    assert "No verdict" in out[0] and OFFLINE_MESSAGE in out[0] and "Face (small-face)" in out[1]
    assert out[-1]["error"] == OFFLINE_MESSAGE and out[-1]["face"]["mode"] == "small-face"
    with pytest.raises(AppError, match="Weights unavailable"):
        client.predict(handle_file(str(ASTRONAUT)), family="jpeg", seed=0, api_name="/sweep")


def test_offline_the_controls_that_need_the_detector_are_off_with_the_reason(offline_server):
    """Offline, Analyze's explanations, the comparison, the sweep and the batch cannot work: they are
    disabled and say why, next to them (issue 15.5)."""
    from webapp.views import NEEDS_DETECTOR

    url, client, _ = offline_server
    config = json.loads(urllib.request.urlopen(url + "config", timeout=10).read())
    props = {c["props"].get("elem_id"): c["props"] for c in config["components"] if c.get("props", {}).get("elem_id")}
    assert props["explain"]["interactive"] is False and props["explain"]["value"] == "none"
    assert props["explain"]["info"] == NEEDS_DETECTOR
    for button in ("compare", "sweep", "batch"):
        assert props[button]["interactive"] is False
        assert NEEDS_DETECTOR in props[f"{button}-needs"]["value"]
    assert props["analyze"].get("interactive") is not False  # the face detector still works
    with pytest.raises(AppError, match="Weights unavailable"):
        client.predict([handle_file(str(FACE_CROP))], api_name="/analyze_batch")


def test_main_starts_offline_with_the_weights_message(monkeypatch):
    """``python app.py --preset paper`` offline: no traceback, the lab is served with the message."""
    import gradio as gr

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    launched = []
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: launched.append(self))
    port = free_port()
    assert app.main(["--preset", "paper", "--host", "127.0.0.1", "--port", str(port)]) == 0
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10).read().decode()
        assert "Weights unavailable" in page and "--preset tiny-random" in page
    finally:
        for demo in launched:
            demo.close()


def test_on_gpu_uses_spaces_when_importable(monkeypatch):
    import types

    from webapp.runtime import on_gpu

    def work(x):
        return x + 1

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: the function itself
    assert on_gpu(work) is work
    calls = []
    fake = types.ModuleType("spaces")

    def gpu(duration):
        calls.append(duration)
        return lambda fn: (lambda *a, **k: ("on-gpu", fn(*a, **k)))

    fake.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", fake)
    wrapped = on_gpu(work, duration=30)
    assert wrapped(1) == ("on-gpu", 2) and calls == [30]


# ------------------------------------------------------------------------------ limits (issue 14)
@pytest.mark.parametrize("api", ["/degrade", "/analyze", "/sweep"])
def test_a_seed_past_the_range_is_one_line_not_a_json_failure(client, api):
    """seed=2**70 used to run the whole analysis, then fail in Gradio's JSON output with a bare error."""
    kwargs = {"family": "jpeg", "seed": 2**70} if api == "/sweep" else {**_lab(gnoise_sigma=5, seed=2**70)}
    if api == "/analyze":
        kwargs["explain"] = "none"
    with pytest.raises(AppError) as raised:
        client.predict(handle_file(str(FACE_CROP)), **kwargs, api_name=api)
    message = str(raised.value)
    assert "4294967295" in message and "\n" not in message.strip() and "Traceback" not in message
    # the top of the range works, and the lab says at what size it measured
    if api == "/degrade":
        _, _, _, info = client.predict(handle_file(str(FACE_CROP)), **_lab(gnoise_sigma=5, seed=4294967295), api_name=api)
        assert info["seed"] == 4294967295 and info["computed_size"] == [256, 256] and info["downscaled"] is False


@pytest.mark.slow  # ~4 s: another server, and Gradio's cleaner runs once a second
def test_the_upload_cache_is_cleaned_on_a_schedule(offline_server, tmp_path):
    """Gradio never deleted uploads and results: a long-running Space filled its disk."""
    assert offline_server[2].delete_cache == app.CACHE_CLEANUP  # what `python app.py` serves with
    every, age = app.CACHE_CLEANUP
    assert 0 < every <= age <= 24 * 3600
    upload = tmp_path / "upload.png"
    Image.fromarray(_read(str(FACE_CROP))[::-1].copy()).save(upload)  # not an example: examples stay cached
    demo = app.build_demo(None, error=OFFLINE_MESSAGE, delete_cache=(1, 1))  # the same, sped up
    client = Client(launch(demo), verbose=False)
    try:
        client.predict(handle_file(str(upload)), **_lab(jpeg_quality=50), api_name="/degrade")
        cached = {Path(f) for files in demo.temp_file_sets for f in files if Path(f).name in ("upload.png", "image.png")}
        assert {f.name for f in cached} == {"upload.png", "image.png"} and all(f.exists() for f in cached)
        deadline = time.monotonic() + 60  # a generous wait: a busy CI machine may run the cleaner late
        while any(f.exists() for f in cached) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(f.exists() for f in cached)
    finally:
        demo.close()
