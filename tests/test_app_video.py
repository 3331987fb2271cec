"""The Video tab: ``/analyze_video`` through ``gradio_client`` on a served app, and the tab's handlers directly.

Clips are made by tests/clips.py (PyAV), never downloaded. The ``tiny-random`` detector gives no
verdict word ("none (untrained)"), which every output must say alike.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.clips import planted_segment, static_frames, write_clip, write_text_as_video

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import app  # noqa: E402
from tests.served import served

GRID = {round(0.1 * i, 1) for i in range(11)}


@pytest.fixture(scope="module")
def detector():
    from forensic.pipeline import Detector

    return Detector.from_preset("tiny-random", device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s of the face crop at 10 fps, a planted checkerboard from 1.0 s to 1.5 s."""
    folder = tmp_path_factory.mktemp("clips")
    return write_clip(folder / "face.mp4", planted_segment(static_frames(20, size=128), 10, 15), fps=10)


@pytest.fixture(scope="module")
def client(detector):
    with served(app.build_demo(detector)) as url:
        yield Client(url, verbose=False)


def _csv(path: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))


def test_analyze_video_endpoint_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/analyze_video"]
    assert [p["parameter_name"] for p in api["parameters"]] == ["video", "fps", "max_frames", "crf", "spec", "seed", "explain"]


def test_analyze_video_returns_the_record_and_the_csv(client, clip):
    record_path, csv_path = client.predict(handle_file(str(clip)), 4, 6, "none", "", 0, "none", api_name="/analyze_video")
    record = json.loads(Path(record_path).read_text(encoding="utf-8"))
    assert record["kind"] == "video" and record["path"] == "face.mp4" and record["error"] is None
    frames = record["frames"]
    assert [f["index"] for f in frames] == list(range(6))  # 2 s at 4 frames/s would be 8: max_frames 6
    assert record["sampling"]["fps"] == 4 and record["sampling"]["max_frames"] == 6
    s = record["summary"]
    assert s["verdict"] == record["verdict"] == "none (untrained)" and s["label"] is None
    assert s["prob_fake"] in GRID and all(f["prob_fake"] in GRID for f in frames)
    assert s["frames"] == len(frames)
    rows = _csv(csv_path)
    assert [r["row"] for r in rows] == ["frame"] * len(frames) + ["clip"]
    assert all(r["verdict"] == "none (untrained)" for r in rows)  # the same words in the JSON and the CSV
    assert [float(r["time_s"]) for r in rows[:-1]] == pytest.approx([f["time_s"] for f in frames], abs=1e-6)
    assert float(rows[-1]["prob_fake"]) == pytest.approx(s["prob_fake"])


def test_analyze_video_spreads_frames_and_reencodes(client, clip):
    record_path, _ = client.predict(handle_file(str(clip)), 10, 5, "ffpp-c40", "jpeg:quality=50", 3, "none",
                                    api_name="/analyze_video")
    record = json.loads(Path(record_path).read_text(encoding="utf-8"))
    assert len(record["frames"]) == 5 and record["sampling"]["spread"] is True
    times = [f["time_s"] for f in record["frames"]]
    assert times == sorted(times) and times[-1] - times[0] > 1.0  # spread over the whole clip, not the first 0.5 s
    degradation = record["degradation"]
    assert degradation["reencode"]["crf"] == 40 and "c40" in degradation["reencode"]["reference"]
    assert "jpeg:quality=50" in str(degradation["frames"])


@pytest.mark.parametrize("fps, max_frames, crf, match", [
    (1, 100, "none", "greater than maximum value 64"),  # the sliders' own bounds, in one line
    (0, 8, "none", "less than minimum value 0.25"),
    (1, 8, "none;", "crf must be none, a CRF 0-51"),
    (1, 8, "c99", "crf must be none, a CRF 0-51"),
])
def test_analyze_video_bad_settings_say_what_to_do(client, clip, fps, max_frames, crf, match):
    with pytest.raises(AppError, match=match):
        client.predict(handle_file(str(clip)), fps, max_frames, crf, "", 0, "none", api_name="/analyze_video")


def test_analyze_video_bad_file_is_one_clear_error(client, tmp_path):
    bad = write_text_as_video(tmp_path / "notes.mp4")
    with pytest.raises(AppError) as raised:
        client.predict(handle_file(str(bad)), 1, 8, "none", "", 0, "none", api_name="/analyze_video")
    message = str(raised.value)
    assert "is text, not a video" in message and "MP4" in message
    assert "\n" not in message.strip() and "Traceback" not in message


# ------------------------------------------------------------------------------------------------ the tab's handlers
@pytest.fixture(scope="module")
def handlers(detector):
    from webapp.handlers import Handlers

    return Handlers(detector)


def _quiet(frac=None, desc=None):
    return None


def test_page_analysis_timeline_slider_and_report(handlers, clip):
    from webapp.lab import NEUTRAL
    from webapp.video import FRAME_SIDE

    view = handlers.video.analyze_in_place(str(clip), NEUTRAL, 2, 8, "none", False, "fast", _quiet)
    record = view.video_json
    assert "✓ 4 frames" in view.video_status
    assert f"Verdict: <b>{record['summary']['verdict']}</b>" in view.video_verdict  # the image verdict's words
    # the frames' share is stated as a fact about P(fake), not as a verdict the untrained weights cannot give
    n = record["summary"]["frames_with_face"]
    k = round(record["summary"]["share_fake"] * n)
    assert f"{k} of the {n} frames counted have P(fake) at or above 0.5" in view.video_verdict
    assert "vote fake" not in view.video_verdict
    assert view.video_timeline.texts or view.video_timeline.axes  # a figure
    title = view.video_timeline._suptitle.get_text()
    assert title.startswith(f"Clip verdict: {record['summary']['verdict']}")
    # the slider starts on the explained (most suspicious) frame, which has its three overlays
    chosen = record["explained"][0]
    assert view.video_slider["value"] == chosen and view.video_slider["maximum"] == 3
    shown = handlers.video.show_frame(chosen, view.video_state)
    picture, caption, overlays = shown[0], shown[1], [u["value"] for u in shown[2:5]]
    assert picture.ndim == 3 and max(picture.shape[:2]) <= FRAME_SIDE
    assert f"**Frame {chosen} of 0-3**" in caption and "Score-CAM overlays below" in caption
    assert all(o is not None and o.shape == picture.shape for o in overlays)
    # the overlays' captions name the frame, never "the clean upload" (there is no upload image here)
    assert all(f"on frame {chosen} of the clip" in c and "upload" not in c for c in shown[5:8])
    other = (chosen + 1) % 4
    shown = handlers.video.show_frame(other, view.video_state)
    assert f"**Frame {other} of 0-3**" in shown[1] and all(u["value"] is None and not u["visible"] for u in shown[2:5])
    assert not np.array_equal(shown[0], picture) or other != chosen
    # the state keeps small JPEGs, never decoded frames
    for frame in view.video_state["frames"]:
        assert isinstance(frame["picture"], bytes) and len(frame["picture"]) < 200_000
    # the report: one self-contained file with the timeline, the verdict, the explained frame and the table
    text = Path(view.video_report_html["value"]).read_text(encoding="utf-8")
    assert "<img" in text and not re.search(r"""src=['"]https?:""", text)
    assert f"Verdict: <b>{record['summary']['verdict']}</b>" in text and "Timeline" in text
    assert text.count("<tr>") >= 5 and "most suspicious frame" in text
    assert Path(view.video_csv["value"]).read_text().startswith("path,prob_fake,label,verdict")


def test_page_errors_in_place(handlers, tmp_path):
    from webapp.lab import NEUTRAL

    bad = write_text_as_video(tmp_path / "notes.mp4")
    view = handlers.video.analyze_in_place(str(bad), NEUTRAL, 1, 8, "none", False, "none", _quiet)
    assert "status-error" in view.video_status and "is text, not a video" in view.video_status
    assert view.video_timeline is None and view.video_state is None
    view = handlers.video.analyze_in_place(None, NEUTRAL, 1, 8, "none", False, "none", _quiet)
    assert "Upload a clip" in view.video_status
    assert handlers.video.show_frame(0, None)[1].startswith("Analyse a clip")


def test_page_applies_the_lab_per_frame_when_asked(handlers, clip):
    from webapp.lab import LabSettings

    lab = LabSettings(jpeg_quality=30, seed=5)
    on = handlers.video.analyze_in_place(str(clip), lab, 1, 2, "none", True, "none", _quiet).video_json
    off = handlers.video.analyze_in_place(str(clip), lab, 1, 2, "none", False, "none", _quiet).video_json
    assert "jpeg:quality=30" in str(on["degradation"]) and off["degradation"] is None


def test_a_changed_setting_marks_the_timeline_out_of_date_until_it_is_back(handlers, clip):
    from webapp.lab import LabSettings

    lab = LabSettings(jpeg_quality=30, seed=5)
    view = handlers.video.analyze_in_place(str(clip), lab, 1, 2, "none", True, "none", _quiet)
    state, status = view.video_state, view.video_status
    changed = handlers.video.settings_changed
    assert changed(str(clip), lab, 1.0, 2, "none", True, "none", state) == status  # nothing changed (1 and 1.0 alike)
    for args in ((LabSettings(jpeg_quality=40, seed=5), 1, 2, "none", True, "none"),  # the applied lab
                 (lab, 2, 2, "none", True, "none"),  # sampling
                 (lab, 1, 2, "c40", True, "none"),  # re-encoding
                 (lab, 1, 2, "none", False, "none"),  # the lab no longer applied
                 (lab, 1, 2, "none", True, "fast")):  # explanations
        stale = changed(str(clip), *args, state)
        assert "Out of date" in stale and "Analyze the clip" in stale, args
    # the lab alone does not matter when it is not applied
    plain = handlers.video.analyze_in_place(str(clip), lab, 1, 2, "none", False, "none", _quiet)
    assert changed(str(clip), LabSettings(jpeg_quality=10), 1, 2, "none", False, "none", plain.video_state) == plain.video_status


def test_without_a_detector_the_tab_says_why():
    from webapp.handlers import Handlers
    from webapp.lab import NEUTRAL

    h = Handlers(None, error="Weights unavailable: test.")
    view = h.video.analyze_in_place(str(app.EXAMPLES_DIR / app.EXAMPLE_CLIP), NEUTRAL, 1, 8, "none", False, "none", _quiet)
    assert "Weights unavailable: test." in view.video_status


def test_example_clip_is_small_and_shows_the_blend_in_the_middle(monkeypatch):
    import importlib.util

    from forensic.video import iter_frames, probe

    path = app.EXAMPLES_DIR / app.EXAMPLE_CLIP
    assert path.stat().st_size <= 300_000
    info = probe(path)
    assert info.duration_s == pytest.approx(8.0, abs=0.2) and (info.width, info.height) == (256, 256)
    spec = importlib.util.spec_from_file_location("make_example_clip", app.EXAMPLES_DIR / "make_example_clip.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    monkeypatch.setattr(maker, "FAKE_FROM_S", 99.0)
    real = maker.frames(app.EXAMPLES_DIR)
    monkeypatch.setattr(maker, "FAKE_FROM_S", 0.0)
    fake = maker.frames(app.EXAMPLES_DIR)
    for frame in iter_frames(path, fps=1):
        i = int(round(frame.time_s * maker.FPS))
        to_real, to_fake = (np.abs(frame.image.astype(float) - x[i]).mean() for x in (real, fake))
        assert (to_fake < to_real) == (3 <= frame.time_s < 5), frame.time_s  # the blended face only from 3 s to 5 s
