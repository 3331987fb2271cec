"""Issue 24.2: "What this can and cannot tell you" (forensic.limits), one text on the page, in the report file and the
model card; and "Vote even without a face" (page, JSON, report and the ``/analyze`` API agree)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensic.limits import NOT_MEASURED, TITLE, limits_of
from forensic.modelcard import render_model_card
from forensic.presets import PAPER_PUBLISHED, get_preset

from tests.served import served

ROOT = Path(__file__).resolve().parents[1]
COFFEE = ROOT / "examples" / "coffee.jpg"


def trained_tiny():
    """The tiny-random model flagged as trained: its verdicts are words, so the face setting matters."""
    from forensic.pipeline import Detector

    detector = Detector.from_preset("tiny-random", device="cpu")
    detector.model.config = detector.config.replace(untrained=False)
    return detector


def test_untrained_weights_were_trained_on_nothing():
    limits = limits_of(get_preset("tiny-random").config)
    assert limits.trained_on == "untrained random weights: nothing."
    assert "random" in limits.validation and "random" in limits.calibration
    topics = [x.topic for x in limits.limits]
    assert topics == ["Evidence, not proof", "No face", "Large photos", "Compound or unknown degradations", "Unseen generators"]
    assert "252x252" in limits.limits[2].text and "never proves" in limits.limits[0].text
    assert all(x.here is None for x in limits.limits)  # no image given: nothing applies "here"


def test_the_paper_preset_states_only_what_the_authors_published():
    config = get_preset("paper").config.replace(meta={"converted_texture": "dinov2_252.pth"})
    limits = limits_of(config)
    assert (limits.trained_on, limits.validation, limits.calibration) == (
        PAPER_PUBLISHED.trained_on, PAPER_PUBLISHED.validation, PAPER_PUBLISHED.calibration)
    assert "4th place" in limits.validation and "NTIRE 2026" in limits.validation and "ROC AUC" in limits.validation
    assert NOT_MEASURED in limits.validation  # no error rates invented
    assert "1,000 images (500 real, 500 fake)" in limits.trained_on and "face-centred" in limits.trained_on
    assert "texture 2, face 1, fusion 2" in limits.calibration
    card = render_model_card(config)
    assert f"## {TITLE}" in card and limits.markdown() in card and "## Limitations" not in card


def test_a_trained_folder_states_its_data_figures_and_temperature():
    training = {
        "stream": "texture", "data": {"train": {"real": 400, "fake": 380}, "val": {"real": 50, "fake": 48}},
        "config": {"data": {"path": "/data/my_faces"}}, "temperature": 1.37,
        "calibration": {"fitted": True, "temperature": 1.37, "ece_before": 0.081, "ece_after": 0.032},
        "metrics": {"clean": {"auc": 0.912, "accuracy": 0.85, "eer": 0.14}, "jpeg:quality=30": {"auc": 0.801}},
    }
    config = get_preset("small").config.replace(meta={"training": training})
    limits = limits_of(config)
    assert "400 real, 380 fake images from `my_faces`" in limits.trained_on
    assert "AUC 0.912, ACCURACY 0.850, EER 0.140 on clean" in limits.validation and "AUC 0.801 on jpeg:quality=30" in limits.validation
    assert "50 real, 48 fake held-out images" in limits.validation
    assert "T = 1.37" in limits.calibration and "0.081 -> 0.032" in limits.calibration
    # a merged folder: each stream's own run
    merged = get_preset("small").config.replace(meta={"merged_from": ["a", "b"], "streams": {
        "texture": {"training": training}, "face": {"training": {**training, "stream": "face", "metrics": {}, "calibration": None}}}})
    both = limits_of(merged)
    assert "texture: 400 real" in both.trained_on and "face: 400 real" in both.trained_on
    assert "face: not calibrated" in both.calibration


def test_weights_that_record_nothing_say_so():
    limits = limits_of(get_preset("small").config)
    assert "not stated by these weights" in limits.trained_on
    assert limits.validation == NOT_MEASURED and "T = 1" in limits.calibration


def test_the_limits_that_apply_to_this_image_say_so(landscape):
    detector = trained_tiny()
    big = np.asarray(Image.fromarray(landscape).resize((1200, 800)))
    report = detector.analyze(big, degradation="gblur:sigma=1;jpeg:quality=30", seed=3, explain="none")
    here = {x.topic: x.here for x in limits_of(detector.config, report).limits}
    assert here["No face"] == "no face was found in this image."
    assert here["Large photos"] == "this image is 1200x800: the texture stream saw 7% of it."
    assert here["Compound or unknown degradations"] == "this analysis applied 2 degradation steps in a row."
    assert here["Evidence, not proof"] is None and here["Unseen generators"] is None


def test_the_page_and_the_report_file_show_the_same_box_and_the_same_verdict(tmp_path):
    from webapp.files import ScratchDir
    from webapp.handlers import Handlers
    from webapp.lab import NEUTRAL

    handlers = Handlers(trained_tiny(), scratch=ScratchDir(tmp_path))
    out = handlers.analyze_in_place(str(COFFEE), NEUTRAL, "none")
    assert TITLE in out.limits and "untrained" not in out.limits and "⚠ Here: no face was found" in out.limits
    # short: what applies here is open, the method's other limits one click away
    assert out.limits.index("No face") < out.limits.index("<details") < out.limits.index("Unseen generators")
    assert out.limits.index("Evidence, not proof") < out.limits.index("<details")
    report = Path(out.report_html_file["value"]).read_text(encoding="utf-8")
    assert out.limits in report and report.index(out.limits) > report.index("<h2>The vote</h2>")
    assert out.report_json["verdict"] == "out of scope: no face" and out.report_json["label"] is None
    assert "out of scope: no face" in out.vote

    asked = handlers.analyze_in_place(str(COFFEE), NEUTRAL, "none", True)
    word = asked.report_json["verdict"]
    assert word in ("real (no face)", "fake (no face)") and asked.report_json["label"] == word.split()[0]
    assert f"Verdict: <b>{word}</b>" in asked.vote
    assert f"Verdict: <b>{word}</b>" in Path(asked.report_html_file["value"]).read_text(encoding="utf-8")
    # the setting changed after an analysis it decides: the verdict is marked out of date, and back again
    assert "Out of date" in handlers.vote_setting_changed(False, asked.analysed)
    assert handlers.vote_setting_changed(True, asked.analysed) == asked.analysed["status"]


def test_the_face_setting_changes_nothing_for_untrained_weights_or_a_face(tmp_path):
    import gradio as gr

    from forensic.pipeline import Detector
    from webapp.files import ScratchDir
    from webapp.handlers import Handlers
    from webapp.lab import NEUTRAL

    handlers = Handlers(Detector.from_preset("tiny-random", device="cpu"), scratch=ScratchDir(tmp_path))
    out = handlers.analyze_in_place(str(COFFEE), NEUTRAL, "none", True)
    assert out.report_json["verdict"] == "none (untrained)" and "untrained random weights: nothing" in out.limits
    assert isinstance(handlers.vote_setting_changed(False, out.analysed), type(gr.skip()))
    face = handlers.analyze_in_place(str(ROOT / "examples" / "astronaut_face.png"), replace(NEUTRAL), "none", True)
    assert "⚠ Here: no face" not in face.limits


@pytest.fixture(scope="module")
def trained_server():
    import app

    with served(app.build_demo(trained_tiny())) as url:
        yield url


def test_the_api_takes_vote_without_face(trained_server):
    from gradio_client import Client, handle_file

    client = Client(trained_server, verbose=False)
    params = [p["parameter_name"] for p in client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/analyze"]["parameters"]]
    assert params[-2:] == ["explain", "vote_without_face"]
    off = client.predict(handle_file(str(COFFEE)), explain="none", api_name="/analyze")  # default: False
    assert off[-1]["verdict"] == "out of scope: no face" and off[-1]["label"] is None and "out of scope: no face" in off[0]
    on = client.predict(handle_file(str(COFFEE)), explain="none", vote_without_face=True, api_name="/analyze")
    word = on[-1]["verdict"]
    assert word in ("real (no face)", "fake (no face)") and on[-1]["label"] == word.split()[0]
    assert f"Verdict: <b>{word}</b>" in on[0]  # the vote panel says what the JSON says
