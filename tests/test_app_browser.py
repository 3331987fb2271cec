"""The app in a real headless Chromium (Debian's ``chromium`` driven by Playwright): upload, degrade, analyze.

Skipped, with the reason printed, when Chromium or Playwright is missing. Never runs
``playwright install``: it uses the system browser through ``executable_path``.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCREENSHOT_COPY = Path("/tmp/app_screenshot.png")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url():
    import app
    from forensic.pipeline import Detector

    demo = app.build_demo(Detector.from_preset("tiny-random", device="cpu"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_upload_degrade_analyze_in_chromium(browser, app_url, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    page.wait_for_selector("#input-image", timeout=30_000)
    assert "UNTRAINED WEIGHTS" in page.inner_text("#header")

    page.locator("#input-image input[type=file]").set_input_files(str(ROOT / "examples" / "astronaut.jpg"))
    page.wait_for_selector("#degraded-image img", timeout=30_000)

    # move the JPEG slider: the preview, the spec and PSNR/SSIM follow
    page.locator("#jpeg-quality input[type=range]").fill("30")
    page.wait_for_function(
        "() => (document.querySelector('#spec textarea, #spec input') || {}).value === 'jpeg:quality=30'", timeout=30_000
    )
    page.wait_for_selector("#lab-info:has-text('PSNR')", timeout=30_000)

    page.click("#analyze")
    page.wait_for_selector("#verdict:has-text('jpeg:quality=30')", timeout=60_000)  # this analysis, not the upload's
    verdict = page.inner_text("#verdict")
    assert "P(fake) =" in verdict and "Global Texture" in verdict and "Hybrid Semantic Fusion" in verdict
    assert "fell back" in verdict  # the full photo's face is too small for the face crop
    label = page.inner_text("#verdict-label").lower()
    assert "fake" in label and "real" in label
    for name in ("texture", "face", "fusion"):
        img = page.locator(f"#overlay-{name} img").first
        img.wait_for(timeout=30_000)
        assert img.evaluate("el => el.complete && el.naturalWidth") == 512
    assert page.locator("#regions img").first.evaluate("el => el.naturalWidth") == 512

    shot = tmp_path / "app.png"
    page.screenshot(path=str(shot), full_page=True)
    shutil.copyfile(shot, SCREENSHOT_COPY)
    assert shot.stat().st_size > 50_000
    assert errors == []
    page.close()


def test_bad_upload_shows_the_reason(browser, app_url, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    page.wait_for_selector("#input-image", timeout=30_000)
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image\n")
    page.locator("#input-image input[type=file]").set_input_files(str(bad))
    page.wait_for_selector("#lab-info:has-text('not an image')", timeout=30_000)
    page.wait_for_selector("#verdict:has-text('not an image')", timeout=30_000)
    page.close()
