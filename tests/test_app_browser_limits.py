"""Issue 24 in a real headless Chromium: the box "What this can and cannot tell you", "Vote even without a face",
and the lab-state link (a teacher sets JPEG 30, seed 7 and the jpeg family, copies the link, opens it in a new page).

One server for the module, with the tiny-random model flagged as trained so that its verdicts are words (the face
setting changes nothing for untrained weights). Screenshots at 1280 and 390 px go to /tmp/limits/. Fixtures as in
tests/test_app_browser.py (conftest's ``browser``: the system Chromium, skipped with the reason when missing).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.served import open_page, served

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path("/tmp/limits")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url():
    import app
    from forensic.pipeline import Detector

    detector = Detector.from_preset("tiny-random", device="cpu")
    detector.model.config = detector.config.replace(untrained=False)
    with served(app.build_demo(detector)) as url:
        yield url


def _value(page, selector: str) -> str:
    return page.locator(selector).first.input_value()


def test_the_box_says_what_a_vote_cannot_tell_and_the_face_setting_asks_for_one(browser, app_url):
    SHOTS.mkdir(exist_ok=True)
    page, errors = open_page(browser, app_url, 1280)
    page.locator("#explain label:has-text('none')").click()
    page.locator("#input-image input[type=file]").set_input_files(str(ROOT / "examples" / "coffee.jpg"))
    page.wait_for_selector("#analysis-status .status-fresh", timeout=60_000)
    box = page.inner_text("#limits")
    assert "What this can and cannot tell you" in box and "not stated by these weights" in box
    assert "⚠ Here: no face was found in this image." in box and "never proves" in box and "252x252" in box
    assert "Verdict: out of scope: no face" in page.inner_text("#vote")
    vote, limits = page.locator("#vote").bounding_box(), page.locator("#limits").bounding_box()
    assert limits["y"] >= vote["y"] + vote["height"] - 1  # under the vote
    assert "Unseen generators" not in box  # short: the method's other limits are one click away
    page.locator("#limits summary").click()
    assert "Unseen generators" in page.inner_text("#limits")
    page.locator("#limits").screenshot(path=str(SHOTS / "limits_box_1280.png"))

    # the setting marks the verdict it decides out of date; Analyze gives the vote, with "(no face)" in its word
    page.locator("#vote-without-face input[type=checkbox]").check()
    page.wait_for_selector("#analysis-status .status-stale:has-text('Vote even without a face')", timeout=30_000)
    page.click("#analyze")
    page.wait_for_selector("#analysis-status .status-fresh", timeout=60_000)
    page.wait_for_function("() => /Verdict: (real|fake) \\(no face\\)/.test(document.querySelector('#vote').innerText)",
                           timeout=30_000)
    page.locator("#results").screenshot(path=str(SHOTS / "vote_without_face_1280.png"))
    assert not errors

    phone, errors = open_page(browser, app_url, 390)
    phone.locator("#input-image input[type=file]").set_input_files(str(ROOT / "examples" / "coffee.jpg"))
    phone.wait_for_selector("#limits .fl", timeout=60_000)
    width = phone.locator("#limits").bounding_box()["width"]
    assert width <= 390 and phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # nothing off-screen
    phone.locator("#limits").screenshot(path=str(SHOTS / "limits_box_390.png"))
    assert not errors


def test_a_lab_state_link_restores_the_lab_in_a_new_page(browser, app_url):
    SHOTS.mkdir(exist_ok=True)
    page, errors = open_page(browser, app_url, 1280)
    page.locator("#jpeg-quality input[type=range]").fill("30")
    seed = page.get_by_label("Seed")
    seed.fill("7")
    seed.press("Enter")
    page.locator("#explain label:has-text('adaptive')").click()
    page.get_by_role("tab", name="Robustness sweep").click()
    page.get_by_label("Degradation family (clean to strongest)").click()
    page.get_by_role("option", name="jpeg", exact=True).click()
    page.click("#lab-link")
    page.wait_for_function("() => document.querySelector('#lab-code textarea')?.value?.includes('?lab=')", timeout=30_000)
    link = _value(page, "#lab-code textarea")
    assert link.endswith("?lab=jpeg:30,seed:7,family:jpeg,explain:adaptive") and link.startswith(app_url)
    page.locator("#lab").screenshot(path=str(SHOTS / "labstate_1280.png"))

    fresh, errors2 = open_page(browser, link, 1280)
    fresh.wait_for_function("() => document.querySelector('#jpeg-quality input[type=range]')?.value === '30'", timeout=30_000)
    fresh.wait_for_selector("#lab-code-status:has-text('Lab restored')", timeout=30_000)
    assert fresh.get_by_label("Seed").input_value() == "7"
    assert fresh.locator("#explain input[type=radio]:checked").first.evaluate("el => el.value") == "adaptive"
    fresh.get_by_role("tab", name="Robustness sweep").click()
    assert fresh.get_by_label("Degradation family (clean to strongest)").input_value() == "jpeg"
    assert "Lab restored" in fresh.inner_text("#lab-code-status")

    # a hostile code: one clear line, nothing changed
    bad, errors3 = open_page(browser, app_url + "?lab=jpeg:999,seed:7", 390)
    bad.wait_for_selector("#lab-code-status:has-text('Not a lab code')", timeout=30_000)
    assert "jpeg must lie between 5 and 100" in bad.inner_text("#lab-code-status")
    assert bad.locator("#jpeg-quality input[type=range]").input_value() == "100"
    assert bad.get_by_label("Seed").input_value() == "0"
    bad.locator("#lab-link-row").scroll_into_view_if_needed()
    bad.screenshot(path=str(SHOTS / "labstate_bad_390.png"))
    assert not (errors or errors2 or errors3)
