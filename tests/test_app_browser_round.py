"""Issue 24, items 3, 7 and 8, in a real headless Chromium (Debian's, driven by Playwright), measured as a user sees them.

- 3: stale results are marked down the page: captions dimmed and prefixed "Out of date", every picture and
  figure labelled, the report's Download buttons off until the lab matches the analysis again.
- 7 (a 390-px phone): figure text >= 9 px on screen (the PNG's text size times its on-screen scale), the
  sweep not a thin strip, every tab in sight (no "..." menu), the preview in sight while the lab's sliders are.
- 8: the progress drawn under the status line, old results dimmed during a run, the three overlays' top edges
  aligned whatever their captions, no "(" left at a line end, the wait stated with decoding and scaling the
  upload, the offline texts (a readable reason, no raw backticks, empty figures saying why), and the report
  (the overlays' colour scale, a <title> and alt texts without Markdown marks).

Screenshots go to /tmp/stale-phone/. Skipped, with the reason, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from forensic.viz.style import SMALL_TEXT

from tests.served import loaded_image, open_page, served

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path("/tmp/stale-phone")
EXAMPLE = str(ROOT / "examples" / "astronaut.jpg")
STREAMS = ("texture", "face", "fusion")
#: the smallest figure text, in the PNG's pixels (the figures are drawn at 100 dpi)
SMALL_PX = SMALL_TEXT * 100 / 72
#: an extra wait inside each analysis (seconds), so that a run in progress can be looked at
SLOW = {"s": 0.0}

#: every "(" whose next visible character starts a new line (a "(" left dangling at a line end)
DANGLING = """(root) => {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const chars = [];
  let node;
  while ((node = walker.nextNode())) {
    if (!node.parentElement || node.parentElement.closest('script, style, svg')) continue;
    for (let i = 0; i < node.data.length; i++) if (!/\\s/.test(node.data[i])) chars.push([node, i]);
  }
  const rect = ([n, i]) => { const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
    return [...r.getClientRects()].find(x => x.width > 0) || null; };
  const out = [];
  for (let k = 0; k + 1 < chars.length; k++) {
    const [n, i] = chars[k];
    if (n.data[i] !== '(') continue;
    const a = rect(chars[k]), b = rect(chars[k + 1]);
    if (a && b && b.top >= a.bottom - 2 && b.left < a.left) out.push(n.data.slice(Math.max(0, i - 30), i + 1));
  }
  return out;
}"""


@pytest.fixture(scope="module")
def app_url():
    import app
    from forensic.pipeline import Detector

    detector = Detector.from_preset("tiny-random", device="cpu")
    analyze = detector.analyze

    def slowed(*args, **kwargs):
        time.sleep(SLOW["s"])
        return analyze(*args, **kwargs)

    detector.analyze = slowed
    with served(app.build_demo(detector)) as url:
        yield url


@pytest.fixture(scope="module")
def offline_url():
    import app

    with served(app.build_demo(None, error="Weights unavailable offline. Pass `--weights DIR` or run with `--preset tiny-random`.")) as url:
        yield url


def _upload(page, path=EXAMPLE) -> None:
    page.locator("#input-image input[type=file]").set_input_files(path)
    page.wait_for_selector("#analysis-status .status-fresh", timeout=90_000)


def _move_jpeg_to(page, quality: int) -> None:
    page.locator("#jpeg-quality input[type=range]").fill(str(quality))
    spec = "" if quality == 100 else f"jpeg:quality={quality}"
    page.wait_for_function(f"() => (document.querySelector('#spec textarea, #spec input') || {{}}).value === '{spec}'",
                           timeout=30_000)


def _analyze_degraded(page, quality: int = 30) -> None:
    _move_jpeg_to(page, quality)
    page.wait_for_selector("#analysis-status .status-stale", timeout=30_000)
    page.click("#analyze")
    page.wait_for_selector(f"#analysis-status .status-fresh:has-text('jpeg:quality={quality}')", timeout=90_000)
    for name in STREAMS:
        page.locator(f"#overlay-{name} img").first.wait_for(state="attached", timeout=30_000)


def _pseudo(page, selector: str, which: str) -> str:
    return page.locator(selector).first.evaluate(f"el => getComputedStyle(el, '{which}').content")


def _opacity(page, selector: str) -> float:
    # the element's own opacity times its ancestors': what the eye gets
    return page.locator(selector).first.evaluate("""el => { let o = 1;
        for (let e = el; e; e = e.parentElement) o *= parseFloat(getComputedStyle(e).opacity); return o; }""")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


# ~8 s: one analysis, then the lab moves away and back
@pytest.mark.browser
@pytest.mark.slow
def test_stale_results_are_marked_down_the_page_and_not_downloadable(browser, app_url):
    page, errors = open_page(browser, app_url, 1280)
    _upload(page)
    for button in ("#report-html", "#report-json"):
        assert page.locator(button).is_enabled()
    _move_jpeg_to(page, 30)
    page.wait_for_selector("#analysis-status .status-stale", timeout=30_000)
    page.wait_for_selector("#report-html:disabled", timeout=30_000)
    # every caption: dimmed, and it says it is out of date before its (no longer true) "on the clean upload"
    for caption in ("#regions-caption", *(f"#caption-{n}" for n in STREAMS)):
        assert "on the clean upload" in page.inner_text(caption)
        assert _opacity(page, caption) <= 0.6
        assert "Out of date" in _pseudo(page, f"{caption} p", "::before")
    assert "Out of date" in _pseudo(page, "#vote .fv-subject", "::before")
    # every picture and figure carries the words, not only a grey tint
    for panel in ("#regions", *(f"#overlay-{n}" for n in STREAMS), "#entropy-plot", "#stability-plot", "#feat-plot", "#cam-plot"):
        assert "Out of date" in _pseudo(page, panel, "::after"), panel
    # the report describes the clean upload: it is not offered while the lab shows another image
    for button in ("#report-html", "#report-json"):
        assert page.locator(button).is_disabled() and _opacity(page, button) <= 0.6
    _shot(page, "stale_1280.png")
    # back to what was analysed: fresh again, the downloads too
    _move_jpeg_to(page, 100)
    page.wait_for_selector("#analysis-status .status-fresh", timeout=30_000)
    page.wait_for_selector("#report-html:enabled", timeout=30_000)
    assert "Out of date" not in _pseudo(page, "#caption-texture p", "::before")
    assert _opacity(page, "#caption-texture") == pytest.approx(1.0)
    assert errors == []
    page.close()


# ~8 s: an analysis held 2.5 s in progress
@pytest.mark.browser
@pytest.mark.slow
def test_a_run_in_progress_dims_the_old_results_and_its_progress_is_under_the_status(browser, app_url):
    page, errors = open_page(browser, app_url, 1280)
    _upload(page)
    assert _opacity(page, "#results") == pytest.approx(1.0)
    SLOW["s"] = 2.5
    try:
        page.click("#analyze")
        page.wait_for_selector("#analysis-status .pending", timeout=10_000)
        page.wait_for_selector("#analysis-status .progress-text, #analysis-status .progress-level", timeout=10_000)
        page.wait_for_timeout(300)
        assert _opacity(page, "#results") <= 0.5  # the previous results, while the new ones are computed
        status = page.locator("#analysis-status [class^='status-']").bounding_box()
        progress = page.locator("#analysis-status [data-testid=status-tracker] *").evaluate_all(
            "els => els.filter(e => e.childElementCount === 0 && e.textContent.trim() && e.getBoundingClientRect().width > 0)"
            ".map(e => { const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.top, r.bottom]; })")
        assert progress, "no progress text drawn"
        for text, top, _bottom in progress:  # every piece of progress text starts below the status line
            assert top >= status["y"] + status["height"] - 1, (text, top, status)
        page.screenshot(path=str(SHOTS / "running_1280.png"))
    finally:
        SLOW["s"] = 0.0
    page.wait_for_selector("#analysis-status .pending", state="detached", timeout=60_000)
    page.wait_for_timeout(300)
    assert _opacity(page, "#results") == pytest.approx(1.0)
    # the wait from the click, as the browser measured it: at least the 2.5 s the analysis was held
    page.wait_for_selector("#analysis-status .fv-waited", timeout=10_000)
    assert float(re.search(r"You waited ([\d.]+) s", page.inner_text("#analysis-status")).group(1)) >= 2.5
    assert errors == []
    page.close()


# ~10 s: a 3600 x 3600 upload
@pytest.mark.browser
@pytest.mark.slow
def test_the_stated_time_includes_decoding_and_scaling_the_upload(browser, app_url, tmp_path):
    from PIL import Image

    big = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (3600, 3600, 3), dtype=np.uint8)).save(big, compress_level=1)
    page, errors = open_page(browser, app_url, 1280)
    page.locator("#explain label:has-text('none')").click()
    start = time.perf_counter()
    _upload(page, str(big))
    waited = time.perf_counter() - start
    text = " ".join(page.inner_text("#verdict").split())
    detector = float(re.search(r"The detector took ([\d.]+) s", text).group(1))
    server = re.search(r"The whole analysis took ([\d.]+) s on the server \(reading and scaling down the 3600x3600 upload", text)
    assert server, text
    page.wait_for_selector("#analysis-status .fv-waited", timeout=10_000)
    said = float(re.search(r"You waited ([\d.]+) s from your request", page.inner_text("#analysis-status")).group(1))
    # the page never understates the wait: the server's time covers the detector's, and the status line states
    # the wait from the upload as the browser measured it (this test's own clock, give or take its polling)
    assert float(server.group(1)) >= detector
    assert said >= float(server.group(1)) and 0.8 * waited - 1 <= said <= waited + 0.5, (said, waited)
    assert errors == []
    page.close()


# ~8 s: one analysis at two widths
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 1440])
def test_overlays_align_and_no_parenthesis_dangles(browser, app_url, width):
    page, errors = open_page(browser, app_url, width)
    _upload(page)
    _analyze_degraded(page)
    assert page.locator("body").evaluate(DANGLING) == []
    # the three overlays start at one height, whatever the length of the captions above them
    page.locator("#caption-texture p").first.evaluate(
        "el => el.append(' A much longer caption, as a stream with a long note would have, that wraps over several lines.')")
    page.wait_for_timeout(200)
    boxes = [page.locator(f"#overlay-{n}").bounding_box() for n in STREAMS]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]  # side by side, in one row
    tops = [b["y"] for b in boxes]
    assert max(tops) - min(tops) <= 2, tops
    assert errors == []
    page.close()


# ~15 s: an analysis and a sweep on a phone
@pytest.mark.browser
@pytest.mark.slow
def test_on_a_phone_figures_are_readable_tabs_visible_and_the_preview_near_the_sliders(browser, app_url):
    page, errors = open_page(browser, app_url, 390, height=844, scale=3)
    # every tab in sight: none behind a "..." menu
    tabs = page.locator("#tabs button[role=tab]")
    assert tabs.count() >= 4
    for i in range(tabs.count()):
        box = tabs.nth(i).bounding_box()
        assert tabs.nth(i).is_visible() and box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    menu = page.locator("#tabs .overflow-menu button")
    assert all(not menu.nth(i).is_visible() for i in range(menu.count()))
    _upload(page)
    # the lab's sliders and the degraded preview in sight together
    page.locator("#jpeg-quality").scroll_into_view_if_needed()
    _move_jpeg_to(page, 30)
    for selector in ("#jpeg-quality input[type=range]", "#degraded-image img"):
        box = page.locator(selector).first.bounding_box()
        assert box and box["y"] >= -1 and box["y"] + box["height"] <= 844 + 1, (selector, box)
    page.screenshot(path=str(SHOTS / "phone_lab.png"))
    page.wait_for_selector("#analysis-status .status-stale", timeout=30_000)
    page.click("#analyze")
    page.wait_for_selector("#analysis-status .status-fresh:has-text('jpeg:quality=30')", timeout=90_000)
    assert page.locator("body").evaluate(DANGLING) == []
    # the figures' smallest text, on screen: its size in the PNG times the PNG's on-screen scale
    for plot in ("#entropy-plot", "#stability-plot", "#feat-plot", "#cam-plot"):
        img = loaded_image(page, plot)
        natural, shown = img.evaluate("el => [el.naturalWidth, el.getBoundingClientRect().width]")
        assert SMALL_PX * shown / natural >= 9, (plot, natural, shown)
    # the regions picture's labels: 1/32 of its side (forensic.viz.pictures.draw_regions), on screen too
    img = loaded_image(page, "#regions")
    natural, shown = img.evaluate("el => [el.naturalWidth, el.getBoundingClientRect().width]")
    assert max(12, round(natural / 32)) * shown / natural >= 9, (natural, shown)
    # the sweep: readable and not a thin strip (it scrolls sideways in its box; the page does not)
    page.locator("#tabs button[role=tab]:has-text('Robustness sweep')").click()
    page.locator("#sweep-tab input, #sweep").first.wait_for(timeout=10_000)
    page.click("#sweep")
    img = loaded_image(page, "#sweep-plot", timeout=120_000)
    natural, shown, height = img.evaluate("el => [el.naturalWidth, el.getBoundingClientRect().width, el.getBoundingClientRect().height]")
    assert SMALL_PX * shown / natural >= 9 and height >= 250, (natural, shown, height)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, "phone_after.png")
    assert errors == []
    page.close()


# ~5 s: the face detector only
@pytest.mark.browser
@pytest.mark.slow
def test_offline_the_reason_is_readable_the_vote_has_no_backticks_and_empty_figures_say_why(browser, offline_url):
    page, errors = open_page(browser, offline_url, 1280)
    info = page.locator("#explain .info-text").first
    assert "Needs the detector" in info.inner_text()
    rgb = [int(c) for c in re.findall(r"\d+", info.evaluate("el => getComputedStyle(el).color"))[:3]]
    assert max(rgb) <= 0x70, rgb  # dark text on white, not faint grey
    page.locator("#input-image input[type=file]").set_input_files(str(ROOT / "examples" / "astronaut_face.png"))
    page.wait_for_selector("#analysis-status :has-text('No verdict')", timeout=90_000)
    page.wait_for_selector("#vote code", timeout=30_000)
    assert "`" not in page.inner_text("#vote") and "--weights DIR" in page.inner_text("#vote")
    for plot in ("#entropy-plot", "#stability-plot", "#feat-plot", "#cam-plot"):
        page.locator(f"{plot} img").first.wait_for(timeout=30_000)  # a picture that says why, not a blank panel
    _shot(page, "offline_1280.png")
    assert errors == []
    page.close()


# no browser: the report file the Download button hands over
def test_the_report_has_the_overlays_colour_scale_and_plain_title_and_alt_texts():
    from forensic.pipeline import Detector
    from webapp.handlers import Handlers
    from webapp.lab import LabSettings

    handlers = Handlers(Detector.from_preset("tiny-random", device="cpu"))
    lab = LabSettings(jpeg_quality=30)
    view = handlers.analyze_in_place(EXAMPLE, lab, explain="fast")
    text = Path(view.report_html_file["value"]).read_text(encoding="utf-8")
    title = re.search(r"<title>(.*?)</title>", text).group(1)
    assert "jpeg:quality=30" in title and "`" not in title and "**" not in title
    alts = re.findall(r"alt='([^']*)'", text)
    assert len(alts) >= 4 and not any("`" in a or "**" in a for a in alts)
    pictures = text[text.index("<h2>Pictures</h2>"):text.index("<h2>Figures</h2>")]
    assert "colour-bar" in pictures and "0 least" in pictures and "1 most" in pictures

