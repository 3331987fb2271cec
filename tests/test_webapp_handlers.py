"""The app's behaviour without a server: ``webapp.handlers.Handlers`` called directly (issue 15).

One ``tiny-random`` detector for the module; analyses run on the 256 px face crop (about a second
each on 2 cores). The same behaviours are checked in a browser in test_app_browser.py.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")

from webapp import batch, vote  # noqa: E402
from forensic import viz  # noqa: E402
from forensic.verdict import verdict_of  # noqa: E402
from webapp.files import ScratchDir  # noqa: E402
from webapp.handlers import Handlers  # noqa: E402
from webapp.lab import LabSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FACE_CROP = str(ROOT / "examples" / "astronaut_face.png")
ASTRONAUT = str(ROOT / "examples" / "astronaut.jpg")
GRID = {round(0.1 * i, 1) for i in range(11)}
NEUTRAL = LabSettings()


def lab(jpeg=100, seed=0, gnoise=0):
    return LabSettings(jpeg_quality=jpeg, seed=seed, gnoise_sigma=gnoise)


@pytest.fixture(scope="module")
def handlers(tmp_path_factory):
    from forensic.pipeline import Detector

    return Handlers(Detector.from_preset("tiny-random", device="cpu"), scratch=ScratchDir(tmp_path_factory.mktemp("scratch")))


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    return Handlers(None, error="Weights unavailable: test.", scratch=ScratchDir(tmp_path_factory.mktemp("scratch_off")))


@pytest.fixture(scope="module")
def jpeg_view(handlers):
    """Analyze of the face crop at JPEG 40, fast Score-CAM, with the report files."""
    return handlers.analyze_in_place(FACE_CROP, lab(jpeg=40, seed=3), explain="fast")


def _text(markup: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))


# ------------------------------------------------------------------------------ the vote (item 3)
def _report(p, votes, weights=None, *, untrained=False, abstained=()):
    weights = weights or {"texture": 2.0, "face": 1.0, "fusion": 2.0}
    mean = sum(weights[n] * v for n, v in votes.items()) / sum(weights.values())
    streams = {n: SimpleNamespace(vote_prob=v, weight=weights[n]) for n, v in votes.items()}
    return SimpleNamespace(prob_fake=p, untrained=untrained, streams=streams,
                           vote=SimpleNamespace(stream_probs=votes, weights=weights, abstained=abstained, mean=mean),
                           verdict=verdict_of(p, threshold=0.5, untrained=untrained, no_face=False))


@pytest.mark.parametrize(
    ("p", "votes", "strength", "leaning", "agreement"),
    [
        (0.6, {"texture": 0.2, "face": 0.7, "fusion": 0.9}, "weak", "fake", "disagree"),
        (0.9, {"texture": 0.9, "face": 0.8, "fusion": 1.0}, "strong", "fake", "agree"),
        (0.5, {"texture": 0.5, "face": 0.5, "fusion": 0.5}, "none", "fake", "agree"),
        (0.3, {"texture": 0.2, "face": 0.4, "fusion": 0.4}, "moderate", "real", "agree"),
        (0.2, {"texture": 0.0, "face": 0.1, "fusion": 0.4}, "moderate", "real", "partly"),
    ],
)
def test_the_vote_is_read_as_evidence_on_the_grid(p, votes, strength, leaning, agreement):
    reading = vote.read_vote(_report(p, votes))
    assert (reading.strength, reading.leaning, reading.agreement) == (strength, leaning, agreement)
    assert reading.steps == round(abs(p - 0.5) * 10)
    html = vote.vote_html(_report(p, votes))
    cells = re.findall(r"class='fv-cell[^']*'", html)
    assert len(cells) == 11 and sum("fv-chosen" in c for c in cells) == 1  # the grid, one value chosen
    assert f"= <b>{p:.1f}</b>" in html and "× 2" in html and "× 1" in html  # the value, votes and weights
    if strength != "none":
        assert f"Leans {leaning}: {strength} evidence" in html


def test_an_untrained_vote_gives_no_verdict_word():
    html = vote.vote_html(_report(0.6, {"texture": 0.2, "face": 0.7, "fusion": 0.9}, untrained=True))
    text = _text(html)
    assert "No verdict" in text and "UNTRAINED" in text and "disagree" in text
    assert "Leans" not in text and "evidence" not in text.replace("No verdict", "")
    # the only fake/real words left are the axis of the grid and "P(fake)"
    words = re.findall(r"\b(fake|real)\b", text.replace("P(fake)", "").replace("real side", "").replace("fake side", ""))
    assert words == []


# ------------------------------------------------------------------------------ in place (items 2 and 4)
def test_analyze_without_an_image_is_one_message_and_empty_panels(handlers):
    view = handlers.analyze_in_place(None, NEUTRAL, explain="fast")
    assert "No image" in view.status and "status-error" in view.status
    assert view.vote == view.details == "" and view.report_json is None and view.regions is None
    assert all(getattr(view, f"overlay_{n}") is None for n in ("texture", "face", "fusion"))
    assert view.entropy_plot is view.cam_plot is view.feat_plot is view.stability_plot is None
    assert view.report_html_file["interactive"] is False


def test_a_bad_upload_is_shown_in_place(handlers, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image\n" * 20)
    view = handlers.analyze_in_place(str(bad), NEUTRAL, explain="none")
    assert "not an image" in view.status and view.vote == "" and view.report_json is None


def test_an_upload_honours_explanations_off(handlers):
    """Upload used to run fast Score-CAM whatever the Explanations choice (minutes for `paper` on a CPU)."""
    view = handlers.upload_in_place(FACE_CROP, NEUTRAL, explain="none")
    assert view.report_json["explain"] == "none"
    assert all(view.report_json["streams"][n]["cam"] is None for n in ("texture", "face", "fusion"))
    assert all(getattr(view, f"overlay_{n}") is None for n in ("texture", "face", "fusion"))
    for n in ("texture", "face", "fusion"):
        assert "explanations are off" in getattr(view, f"caption_{n}")
    assert "Explanations are off" in view.cam_plot.axes[0].texts[0].get_text()  # said in the empty panel
    assert "without explanations" in view.status


# ------------------------------------------------------------------------------ staleness (item 1)
def test_every_result_names_its_image(jpeg_view):
    spec = "jpeg:quality=40"
    assert spec in jpeg_view.status and "seed 3" in jpeg_view.status
    assert spec in jpeg_view.vote and spec in jpeg_view.regions_caption
    for n in ("texture", "face", "fusion"):
        caption = getattr(jpeg_view, f"caption_{n}")
        assert spec in caption and "seed 3" in caption and "fast Score-CAM" in caption
    for fig in (jpeg_view.entropy_plot, jpeg_view.stability_plot, jpeg_view.feat_plot, jpeg_view.cam_plot):
        assert spec in fig._supxlabel.get_text()


def test_a_lab_change_marks_the_results_out_of_date_until_analyze(handlers, jpeg_view):
    analysed = jpeg_view.analysed
    status, results, _, _, sweep, html_file, json_file = handlers.lab_changed(FACE_CROP, lab(jpeg=20, seed=3), analysed, None, None)
    assert html_file["interactive"] is False and json_file["interactive"] is False  # no download of a stale report
    assert "Out of date" in status and "jpeg:quality=40" in status and "jpeg:quality=20" in status
    assert "stale-results" in results["elem_classes"]
    # back to what was analysed: fresh again, nothing recomputed
    status, results, *_, html_file = handlers.lab_changed(FACE_CROP, lab(jpeg=40, seed=3), {**analysed, "files": True}, None, None)
    assert status == jpeg_view.status and "stale-results" not in results["elem_classes"] and html_file["interactive"] is True
    # a new seed changes the image too (the degradation is seeded)
    status, *_ = handlers.lab_changed(FACE_CROP, lab(jpeg=40, seed=4), analysed, None, None)
    assert "Out of date" in status and "seed 4" in status


# ------------------------------------------------------------------------------ figures (items 6 and 9)
def test_tags_never_overlap_and_stay_in_the_picture():
    same = [("texture: centre crop", (10, 10), (120, 16), (255, 140, 0)),
            ("face: fell back: centre crop", (10, 10), (160, 16), (40, 180, 90)),
            ("fusion: whole image", (2, 2), (110, 16), (60, 120, 230)),
            ("detected face", (100, 500), (80, 16), (255, 255, 255))]
    tags = viz.place_tags(same, (512, 512))
    assert [t.text for t in tags] == [s[0] for s in same]
    assert not any(a.overlaps(b) for i, a in enumerate(tags) for b in tags[i + 1:])
    assert all(0 <= t.x and t.x + t.width <= 512 and 0 <= t.y and t.y + t.height <= 512 for t in tags)


def test_figures_start_at_zero_and_the_legend_covers_no_bar(jpeg_view):
    fig = jpeg_view.entropy_plot
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_ylim()[0] == 0 and "how spread out the attention is" in ax.get_ylabel()
    legend = ax.get_legend().get_window_extent()
    bars = [p.get_window_extent() for p in ax.patches]
    assert len(bars) == 6 and not any(legend.overlaps(b) for b in bars)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["CLS attention (solid)", "Score-CAM map (hatched)"]
    stab = jpeg_view.stability_plot.axes[0]
    assert stab.get_ylim()[0] == 0 and "alike" in stab.get_ylabel()


def test_overlays_say_fast_or_exact_and_the_fidelity_when_the_library_gives_it(jpeg_view):
    from webapp import render

    # the library's fast maps carry their fidelity estimate, and the caption states it
    assert "fast Score-CAM" in jpeg_view.caption_texture and "estimated fidelity 0." in jpeg_view.caption_texture
    level = jpeg_view.caption_texture.split("estimated fidelity ")[1].split(" (")[1].split(")")[0]
    assert level.split(":")[0] in ("high", "fair", "low") and (level == "high" or "exact" in level)  # and what to do
    from forensic.explain import CamFidelity

    low = CamFidelity(expected_pearson=0.6, low_pearson=0.1, agreement=1.0, checked=12, channels=192, rounds=2)
    assert render.fidelity(SimpleNamespace(cam=SimpleNamespace(fidelity=low, method="fast"))) is low
    assert render.fidelity(SimpleNamespace(cam=SimpleNamespace(fidelity=None, method="exact"))) is None
    assert render.fidelity(SimpleNamespace(cam=None)) is None


def test_the_face_fallback_is_in_the_face_overlay_title(handlers):
    view = handlers.analyze_in_place(ASTRONAUT, NEUTRAL, explain="none")
    assert view.report_json["streams"]["face"]["input"]["kind"] == "face-fallback"
    assert "fell back" in view.caption_face and "fell back" not in view.caption_texture
    # the regions picture is labelled: the face box's white tag and each stream's colour are drawn
    colours = {tuple(c) for c in view.regions.reshape(-1, 3)}
    assert {(255, 140, 0), (40, 180, 90), (60, 120, 230), (255, 255, 255)} <= colours


# ------------------------------------------------------------------------------ report, batch, compare, sweep
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.images, self.scripts = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a:
                self.refs.append(a[key])
        if tag == "img":
            self.images.append(a["src"])
        if tag == "script":
            self.scripts.append(a)


def test_the_report_is_one_self_contained_html_file(jpeg_view):
    text = Path(jpeg_view.report_html_file["value"]).read_text(encoding="utf-8")
    links = _Links()
    links.feed(text)
    assert links.refs and all(r.startswith("data:image/") for r in links.refs)  # nothing fetched from anywhere
    assert all("src" not in s for s in links.scripts)
    assert len(links.images) >= 9  # upload, degraded, regions, 3 overlays, 4 figures
    for src in links.images:
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    embedded = re.search(r"<script type='application/json' id='report-json'>(.*?)</script>", text, re.S).group(1)
    assert json.loads(embedded.replace("<\\/", "</")) == jpeg_view.report_json
    for needed in ("jpeg:quality=40", "seed 3", "UNTRAINED", "preset tiny-random", "Global Texture", "fast Score-CAM",
                   "Feature stability", "Inter-stream feature similarity", "Attention entropy"):
        assert needed in text
    data = json.loads(Path(jpeg_view.report_json_file["value"]).read_text())
    assert data == jpeg_view.report_json


def test_a_batch_is_a_table_and_a_csv_in_upload_order(handlers, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    files = [FACE_CROP, str(bad), str(ROOT / "examples" / "astronaut_face_selfblend.png")]
    view = handlers.batch_in_place(files)
    rows = list(csv.DictReader(io.StringIO(Path(view.batch_csv).read_text())))
    assert [r["file"] for r in rows] == ["astronaut_face.png", "broken.png", "astronaut_face_selfblend.png"]
    assert rows[1]["error"] and rows[1]["prob_fake"] == "" and not rows[0]["error"]
    assert float(rows[0]["prob_fake"]) in GRID and rows[0]["face_mode"] == "crop" and rows[0]["untrained"] == "True"
    single = handlers.analyze(FACE_CROP, NEUTRAL, explain="none").report_json
    assert float(rows[0]["prob_fake"]) == single["prob_fake"]
    assert float(rows[0]["texture"]) == pytest.approx(single["streams"]["texture"]["prob_fake"], abs=1e-4)
    assert view.batch_table.count("none (untrained)") == 2 and "<td>-</td>" in view.batch_table  # no verdict word
    assert "2 of 3 files analysed" in view.batch_status and "1 could not be read" in view.batch_status


def test_the_batch_status_counts_what_was_analysed():
    ok = {"error": None}
    bad = {"error": "The file 'x.png' is not a recognised image"}
    assert batch.status_text([ok] * 5 + [bad], untrained=False).startswith(
        "✓ 5 of 6 files analysed as uploaded (the lab is not applied); 1 could not be read")
    assert batch.status_text([ok], untrained=False) == "✓ 1 file analysed as uploaded (the lab is not applied)."
    assert batch.status_text([bad, bad], untrained=True).startswith("✓ 0 of 2 files analysed")
    assert "UNTRAINED" in batch.status_text([ok], untrained=True)


def test_the_batch_table_escapes_names_and_keeps_the_error_in_a_wrapping_cell():
    row = {"file": "<b>x</b>.png", "prob_fake": None, "label": None, "verdict": None, "untrained": False, "face_mode": None,
           "error": "bad & broken", **{n: None for n in batch.STREAMS}}
    table = batch.table_html([row])
    assert "&lt;b&gt;x&lt;/b&gt;.png" in table and "<td class='wrap'>bad &amp; broken</td>" in table
    assert table.count("<th>") == len(batch.TABLE_HEADERS)


@pytest.mark.slow
def test_clean_vs_degraded_overlays_and_their_cosine(handlers):
    from forensic.explain.similarity import map_similarity

    view = handlers.compare(FACE_CROP, lab(gnoise=40, seed=1), explain="none")  # off: compared with fast
    data = view.drift_json
    assert data["spec"] == "gnoise:sigma=40" and data["method"] == "fast" and "used fast" in view.compare_status
    for n in ("texture", "face", "fusion"):
        clean, degraded = getattr(view, f"clean_{n}"), getattr(view, f"degraded_{n}")
        assert clean.shape == degraded.shape == (256, 256, 3) and not np.array_equal(clean, degraded)
        assert -1.0 <= data["streams"][n]["map_cosine"] <= 1.0 and f"{data['streams'][n]['map_cosine']:.2f}" in \
            getattr(view, f"compare_caption_{n}")
    # the cosine is map_similarity of the two maps (recomputed from the two analyses)
    det = handlers.detector
    a = det.analyze(FACE_CROP, explain="fast").streams["texture"].cam_image
    b = det.analyze(FACE_CROP, degradation="gnoise:sigma=40", seed=1, explain="fast").streams["texture"].cam_image
    assert data["streams"]["texture"]["map_cosine"] == pytest.approx(map_similarity({"a": a, "b": b}).get("a", "b"), abs=1e-6)


def test_compare_without_a_degradation_says_so_in_place(handlers):
    view = handlers.compare_in_place(FACE_CROP, NEUTRAL, explain="fast")
    assert "Nothing to compare" in view.compare_status and view.clean_texture is None


def test_the_sweep_says_what_it_sweeps_from(handlers):
    text = handlers._sweep_status(None, "gblur:sigma=2", 5, True)
    assert "clean upload" in text and "gblur:sigma=2" in text and "not" in text and "5" in text
    stale = handlers._sweep_status({"family": "jpeg", "seed": 1}, None, 2, True)
    assert "Out of date" in stale and "seed 1" in stale


def test_without_a_detector_analyze_shows_the_face_and_the_reason(offline):
    view = offline.analyze_in_place(FACE_CROP, NEUTRAL, explain="fast")
    assert "No verdict" in view.vote and "Weights unavailable: test." in view.vote
    assert view.report_json["face"]["mode"] == "crop" and view.regions.shape == (256, 256, 3)
    assert view.report_html_file["interactive"] is False
    assert "Weights unavailable: test." in offline.batch_in_place([FACE_CROP]).batch_status


def test_a_big_upload_is_analysed_on_the_labs_bounded_copy(handlers):
    """The preview is what the streams see: past the lab's bound both work on the same scaled-down copy
    (here a bound of 128 x 128 pixels for the 256 px crop; the app's is 2048 x 2048)."""
    bounded = Handlers(handlers.detector, scratch=handlers.scratch, max_pixels=128 * 128)
    view = bounded.analyze(FACE_CROP, NEUTRAL, explain="none")
    assert view.regions.shape == (128, 128, 3)
    assert any("copy of the 256x256 image" in n for n in view.report_json["image"]["notes"])
    assert "copy of the 256x256 image" in view.details
    rows = list(csv.DictReader(open(bounded.analyze_batch([FACE_CROP]))))
    assert float(rows[0]["prob_fake"]) == view.report_json["prob_fake"]
    assert float(rows[0]["texture"]) == pytest.approx(view.report_json["streams"]["texture"]["prob_fake"], abs=1e-4)


def test_a_big_upload_is_decoded_once_into_the_bounded_copy_and_the_lab_names_its_size(handlers):
    """The upload cache holds the scaled-down copy (not a full-size array per file), and the lab still
    says which image it is a copy of."""
    from webapp.runtime import decode_upload

    decoded = decode_upload(FACE_CROP, 128 * 128)
    assert decoded.pixels.shape == (128, 128, 3) and decoded.scaled_from == (256, 256)
    assert decode_upload(FACE_CROP, 128 * 128) is decoded  # slider moves hit the cache
    bounded = Handlers(handlers.detector, scratch=handlers.scratch, max_pixels=128 * 128)
    image, spec, summary, info = bounded.degrade(FACE_CROP, lab(jpeg=40))
    assert image.shape == (128, 128, 3) and spec == "jpeg:quality=40"
    assert "computed on a 128x128 copy of the 256x256 image" in summary
    assert info["size"] == [256, 256] and any("copy of the 256x256 image" in n for n in info["notes"])


def test_a_seed_out_of_range_is_said_in_place_by_the_lab(offline):
    image, spec, summary, info = offline.degrade(FACE_CROP, LabSettings(seed=2**40))
    assert image is None and spec == "" and "seed must be a whole number" in summary and "seed" in info["error"]
    assert all(out == {"__type__": "update"} for out in offline.lab_changed(FACE_CROP, LabSettings(seed=-1), {"spec": None}))


def test_the_scratch_folder_forgets_old_files(tmp_path):
    scratch = ScratchDir(tmp_path, keep_seconds=60)
    old = scratch.write("a.csv", "x")
    assert old.read_text() == "x" and old.name == "a.csv"
    assert scratch.prune(now=time.time() + 61) == 1 and not old.exists()


def test_compare_analyses_the_clean_image_once(handlers, count_forward):
    """Compare submits one paired work item: the streams see the clean image once and the degraded
    copy once (a spy on the forward pass counts the images), each explained once."""
    seen = count_forward(handlers.detector)
    view = handlers.compare(FACE_CROP, lab(jpeg=30, seed=2), explain="fast")
    assert sum(seen) == 2
    assert view.clean_texture is not None and view.degraded_texture is not None
