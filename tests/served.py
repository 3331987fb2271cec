"""The app served for a test, and a browser page on it: one copy for the browser and API tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["free_port", "launch", "served", "open_page", "click_tab", "loaded_image"]


def free_port() -> int:
    """A local TCP port free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo: Any) -> str:
    """Starts ``demo`` (a ``gr.Blocks``) on a free local port, without blocking; its URL."""
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True)
    return f"http://127.0.0.1:{port}/"


@contextmanager
def served(demo: Any) -> Iterator[str]:
    """``demo``'s URL while the block runs; closed after."""
    url = launch(demo)
    try:
        yield url
    finally:
        demo.close()


def open_page(browser: Any, url: str, width: int, *, height: int = 1000, scale: float = 1) -> tuple[Any, list[str]]:
    """A new page at ``url`` once the app has drawn its image input, and the list its script errors go to."""
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("#input-image", timeout=30_000)
    return page, errors


def click_tab(page: Any, name: str) -> None:
    """Opens the tab ``name`` wherever the tab bar put its button (wrapped on a phone, or in an overflow menu)."""
    find = f"""() => [...document.querySelectorAll('button')].find(
        b => b.textContent.trim() === {name!r} && b.getAttribute('tabindex') !== '-1')"""
    page.wait_for_function(find, timeout=30_000)
    page.evaluate(f"() => ({find})().click()")


def loaded_image(page: Any, selector: str, *, timeout: float = 30_000) -> Any:
    """The first ``img`` under ``selector``, scrolled into view and loaded. Gradio's images load lazily (one far
    below the window never loads, and reads 0 wide until it has) and are replaced when their value changes, so
    the wait looks the image up again on every poll and scrolls the current one into view."""
    page.wait_for_function("""sel => { const i = document.querySelector(sel);
        if (!i) return false;
        if (i.complete && i.naturalWidth > 0) return true;
        i.scrollIntoView({block: 'center'}); return false; }""", arg=f"{selector} img", timeout=timeout, polling=200)
    img = page.locator(f"{selector} img").first
    img.scroll_into_view_if_needed()
    return img
