"""Look closely and the film-strip in a real headless Chromium (issue 24), as a teacher projects them.

- "Look closely" (Compare tab) works without a detector: the same crop of the clean upload and of the
  lab's degraded image, magnified without smoothing (JPEG quality 10's 8 x 8 blocks at 4x), their
  difference with its gain stated, a click on the small picture choosing where; at 1280 and 390 px.
- Compare draws, per stream, the degraded map minus the clean one, with a -1..+1 scale.
- The Sweep tab's Film-strip button (family JPEG) gives the figure and its PNG file.

Screenshots go to /tmp/closeup/. Skipped, with the reason, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.served import click_tab, loaded_image, open_page, served

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path("/tmp/closeup")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def offline_url():
    import app

    with served(app.build_demo(None, error="The weights are not available offline (a test without a detector).")) as url:
        yield url


@pytest.fixture(scope="module")
def app_url():
    import app
    from forensic.pipeline import Detector

    with served(app.build_demo(Detector.from_preset("tiny-random", device="cpu"))) as url:
        yield url


def _upload_and_degrade(page, name: str, quality: int) -> None:
    page.locator("#input-image input[type=file]").set_input_files(str(ROOT / "examples" / name))
    page.locator("#jpeg-quality input[type=range]").fill(str(quality))
    page.wait_for_function(
        f"() => (document.querySelector('#spec textarea, #spec input') || {{}}).value === 'jpeg:quality={quality}'", timeout=30_000)


def _wait_caption(page, text: str) -> str:
    page.wait_for_selector(f"#closeup-caption:has-text({text!r})", timeout=30_000)
    return page.inner_text("#closeup-caption")


def _shown(page, elem: str) -> dict:
    # the picture as sent (natural size) and as drawn (on-screen box), and how the browser scales it
    img = loaded_image(page, f"#{elem}")
    return img.evaluate("""el => { const r = el.getBoundingClientRect();
        return {natural: el.naturalWidth, width: r.width, height: r.height, top: r.top + window.scrollY, left: r.left,
                rendering: getComputedStyle(el).imageRendering}; }""")


# ~6 s a width: no model, two crops and a click
@pytest.mark.parametrize("width", [1280, 390])
def test_look_closely_shows_jpeg_blocks_without_a_detector(browser, offline_url, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page, errors = open_page(browser, offline_url, width)
    _upload_and_degrade(page, "astronaut.jpg", 10)
    click_tab(page, "Clean vs degraded")
    caption = _wait_caption(page, "JPEG blocks")
    assert "96 x 96 pixel" in caption and "12 x 12 JPEG blocks" in caption and "at the centre" in caption
    assert "4 x 4 square" in page.inner_text("#closeup-clean-title")
    assert "jpeg:quality=10" in page.inner_text("#closeup-degraded-title")
    diff_title = page.inner_text("#closeup-diff-title")
    assert re.search(r"Difference ×(1|2|4|8|16|32)\b", diff_title) and "grey = no change" in diff_title
    assert "compare settings by the mean difference" in page.inner_text("#closeup-note")

    shown = {e: _shown(page, e) for e in ("closeup-clean", "closeup-degraded", "closeup-diff")}
    for s in shown.values():
        assert s["natural"] == 384 and s["rendering"] == "pixelated"  # one image pixel = a solid 4 x 4 square, never smoothed
        assert s["width"] >= min(300, width - 60)  # large: a block is >= 25 screen pixels wide
    if width >= 1000:  # side by side on a projector, stacked on a phone
        assert len({round(s["top"]) for s in shown.values()}) == 1
    else:
        assert shown["closeup-clean"]["top"] < shown["closeup-degraded"]["top"] < shown["closeup-diff"]["top"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.locator("#closeup").first.screenshot(path=str(SHOTS / f"closeup_{width}.png"))

    # 1x: a 100 % crop (one image pixel per screen pixel)
    page.locator("#closeup-zoom label:has-text('1x')").click()
    assert "384 x 384 pixel" in _wait_caption(page, "384 x 384 pixel")
    assert "100 %" in page.inner_text("#closeup-clean-title")

    # a click near the small picture's top-left corner looks there
    where = page.locator("#closeup-where-pic img").first
    where.scroll_into_view_if_needed()
    where.click(position={"x": 3, "y": 3})
    caption = _wait_caption(page, "the point you clicked")
    assert "pixels 0-383 across, 0-383 down" in caption
    assert page.locator("#closeup-where input[value='a point I click']").is_checked()
    assert errors == []
    page.close()


# ~20 s: Compare runs fast Score-CAM twice
def test_compare_shows_where_each_streams_attention_moved(browser, app_url):
    page, errors = open_page(browser, app_url, 1280)
    page.locator("#explain label:has-text('none')").click()  # the upload's own analysis: no Score-CAM
    _upload_and_degrade(page, "astronaut_face.png", 20)
    page.wait_for_selector("#analysis-status .status-fresh", timeout=60_000)
    click_tab(page, "Clean vs degraded")
    page.click("#compare")
    page.wait_for_selector("#compare-status .status-fresh:has-text('Top row')", timeout=180_000)
    for n in ("texture", "face", "fusion"):
        s = _shown(page, f"mapdiff-{n}")
        assert s["natural"] == 256 and s["height"] > s["width"] * 0.9  # the picture and its scale drawn under it
        assert "degraded minus clean" in page.inner_text(f"#mapdiff-{n}")
    scale = page.inner_text("#mapdiff-scale")
    assert "−1 less" in scale and "+1 more" in scale and "Red" in scale and "blue" in scale
    page.locator("#compare-results").screenshot(path=str(SHOTS / "compare_mapdiff_1280.png"))
    # on a phone each stream's column stacks: its clean map, degraded map and their difference one under the other
    page.set_viewport_size({"width": 390, "height": 1000})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    tops = [_shown(page, f"{row}-texture")["top"] for row in ("clean", "degraded", "mapdiff")]
    phone = _shown(page, "mapdiff-texture")
    assert tops == sorted(tops) and phone["width"] >= phone["natural"] - 1  # at full size: its scale's words readable
    page.locator("#compare-results").screenshot(path=str(SHOTS / "compare_mapdiff_390.png"))
    assert errors == []
    page.close()


# ~25 s: six images with fast Score-CAM
def test_the_film_strip_button_gives_the_figure_and_its_png(browser, app_url):
    page, errors = open_page(browser, app_url, 1280)
    page.locator("#explain label:has-text('none')").click()
    page.locator("#input-image input[type=file]").set_input_files(str(ROOT / "examples" / "astronaut_face.png"))
    page.wait_for_selector("#analysis-status .status-fresh", timeout=60_000)
    click_tab(page, "Robustness sweep")
    family = page.get_by_label("Degradation family (clean to strongest)")
    family.click()
    page.get_by_role("option", name="jpeg", exact=True).click()
    assert family.input_value() == "jpeg"
    page.click("#filmstrip")
    page.wait_for_selector("#sweep-status .status-fresh:has-text('Film-strip')", timeout=180_000)
    status = page.inner_text("#sweep-status")
    assert "jpeg" in status and "90, 70, 50, 30, 10" in status
    page.wait_for_selector("#filmstrip-plot img", timeout=30_000)
    assert page.locator("#filmstrip-plot img").first.evaluate("el => el.naturalWidth") > 600
    link = page.locator("#filmstrip-png a").first
    link.wait_for(timeout=30_000)
    assert "filmstrip-jpeg-seed0" in page.inner_text("#filmstrip-png")
    with page.expect_download(timeout=30_000) as download:
        link.click()
    saved = SHOTS / "filmstrip_download.png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    download.value.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert errors == []
    page.close()
