"""The Video tab in a real headless Chromium (issue 22), as a student uses it, at 1280 and 390 px.

The example clip is clicked (or a clip made by tests/clips.py uploaded): the timeline appears, the
verdict words are those of the downloaded JSON, the frame slider changes the frame on show (and the
explained frame shows its three overlays), and the report, JSON and CSV downloads work. Screenshots
go to /tmp/videoapp/. Skipped, with the reason, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from tests.clips import static_frames, write_clip
from tests.served import click_tab, open_page, served

SHOTS = Path("/tmp/videoapp")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url():
    import app
    from forensic.pipeline import Detector

    with served(app.build_demo(Detector.from_preset("tiny-random", device="cpu"))) as url:
        yield url


def _open(browser, url, width):
    page, errors = open_page(browser, url, width)
    click_tab(page, "Video")
    page.wait_for_selector("#video-analyze", timeout=10_000)
    return page, errors


def _caption(page) -> str:
    return page.inner_text("#video-frame-caption")


def _frame_src(page) -> str:
    return page.locator("#video-frame img").first.get_attribute("src") or ""


def _download(page, selector: str, folder: Path) -> Path:
    with page.expect_download(timeout=30_000) as download:
        page.locator(selector).first.click()
    saved = folder / download.value.suggested_filename
    download.value.save_as(saved)
    return saved


@pytest.mark.parametrize("width", [1280, 390])
def test_the_example_clip_gives_a_timeline_a_slider_and_the_files(browser, app_url, width, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page, errors = _open(browser, app_url, width)
    page.locator("#video-explain label:has-text('fast')").first.click()  # the most suspicious frame explained
    page.locator("#video-example").click()
    page.wait_for_selector("#video-status .status-fresh", timeout=120_000)
    page.wait_for_selector("#video-timeline img", timeout=30_000)
    status = page.inner_text("#video-status")
    assert "8 frames of astronaut_blend_clip.mp4 analysed" in status and "fast Score-CAM" in status

    # the verdict words are the JSON's, on the page and in the timeline's title (read from the JSON)
    record = json.loads(_download(page, "#video-report-json", tmp_path).read_text(encoding="utf-8"))
    word = record["summary"]["verdict"]
    assert word == "none (untrained)"
    assert f"Verdict: {word}" in page.inner_text("#video-verdict")
    assert "UNTRAINED" in page.inner_text("#video-verdict")

    # the slider starts on the explained frame: its picture and three overlays
    chosen = record["explained"][0]
    page.wait_for_function(f"() => document.querySelector('#video-frame-caption')?.innerText?.includes('Frame {chosen} of 0-7')",
                           timeout=30_000)
    assert "Score-CAM overlays below" in _caption(page)
    for n in ("texture", "face", "fusion"):
        assert page.locator(f"#video-overlay-{n} img").count() == 1
    page.locator("#video-area").first.screenshot(path=str(SHOTS / f"video_explained_{width}.png"))
    before = _frame_src(page)
    other = 0 if chosen != 0 else 1
    page.locator("#video-slider input[type=range]").fill(str(other))
    page.wait_for_function(f"() => document.querySelector('#video-frame-caption')?.innerText?.includes('Frame {other} of 0-7')",
                           timeout=30_000)
    page.wait_for_function(f"() => (document.querySelector('#video-frame img') || {{}}).src !== {before!r}", timeout=30_000)
    assert "not explained" in _caption(page)
    assert f"at {record['frames'][other]['time_s']:.2f} s" in _caption(page)

    # the report and the CSV
    report = _download(page, "#video-report-html", tmp_path).read_text(encoding="utf-8")
    assert f"Verdict: <b>{word}</b>" in report and "data:image/png;base64" in report
    assert not re.search(r"""src=['"]https?:""", report)
    rows = list(csv.DictReader(io.StringIO(_download(page, "#video-csv", tmp_path).read_text(encoding="utf-8"))))
    assert [r["row"] for r in rows] == ["frame"] * 8 + ["clip"] and rows[-1]["verdict"] == word

    # readable on this width: nothing wider than the window, the timeline as wide as its column
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.locator("#video-timeline img").first.bounding_box()
    assert box["width"] >= min(330, width - 80)  # a 4.6-in figure: its 9.5-pt text stays >= 9 px on a phone
    page.locator("#video-area").first.screenshot(path=str(SHOTS / f"video_tab_{width}.png"))

    # a setting changed after the analysis: the status says the timeline is out of date
    page.locator("#video-max-frames input[type=number]").fill("4")
    page.locator("#video-max-frames input[type=number]").press("Enter")
    page.wait_for_selector("#video-status .status-stale", timeout=30_000)
    assert "Out of date" in page.inner_text("#video-status")
    assert not errors


def test_an_uploaded_clip_and_a_bad_file(browser, app_url, tmp_path):
    page, errors = _open(browser, app_url, 1280)
    clip = write_clip(tmp_path / "still.mp4", static_frames(12, size=96), fps=4)
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.wait_for_function("() => document.querySelector('#video-status')?.innerText?.includes('3 frames of still.mp4')",
                           timeout=120_000)
    page.wait_for_selector("#video-timeline img", timeout=30_000)
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all\n" * 20)
    page.wait_for_selector("#video-player video", timeout=30_000)  # an H.264 MP4: the browser plays it
    page.close()
    page, errors = _open(browser, app_url, 1280)
    page.locator("#video-input input[type=file]").set_input_files(str(bad))
    page.wait_for_selector("#video-status .status-error", timeout=60_000)
    message = page.inner_text("#video-status")
    assert "is text, not a video" in message and len(message.splitlines()) == 1
    page.screenshot(path=str(SHOTS / "video_bad_file.png"), full_page=True)
    assert page.locator(".toast-body.error, .toast-wrap .error").count() == 0  # in place, no error pill
    assert not errors
