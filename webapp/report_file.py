"""One analysis as a self-contained HTML file: pictures and figures inlined, the JSON embedded.

No external reference of any kind (no scripts, fonts, style sheets or images fetched): the file
opens offline, can be mailed, and shows what the page showed. Pictures are scaled to at most
:data:`MAX_SIDE` pixels and stored as JPEG (photos) or PNG (figures) to keep the file small.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .figures import colour_scale_html

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["MAX_SIDE", "Picture", "Chart", "report_html", "plain_text", "CSS"]

#: longest side of a picture in the report
MAX_SIDE = 768
CSS = (Path(__file__).resolve().parent / "style.css").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Picture:
    """An RGB image with its caption (Markdown-ish: `code` and **bold**)."""

    caption: str
    image: np.ndarray | None
    overlay: bool = False  # a Score-CAM overlay: the report shows the overlays' colour scale after the pictures


@dataclass(frozen=True)
class Chart:
    """A matplotlib figure with a title and what it shows."""

    title: str
    figure: Figure | None
    note: str = ""


def plain_text(text: str) -> str:
    """A Markdown-ish caption (`code`, **bold**) as plain text, for a ``<title>`` or an ``alt`` (no marks shown raw)."""
    return " ".join(text.replace("**", "").replace("`", "").replace("\u2060", "").split())


def _png_or_jpeg(image: np.ndarray) -> str:
    pil = Image.fromarray(np.ascontiguousarray(image))
    if max(pil.size) > MAX_SIDE:
        pil.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure_png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def report_html(
    *,
    title: str,
    model: str,
    untrained: bool,
    vote: str,
    details: str,
    pictures: Sequence[Picture],
    charts: Sequence[Chart],
    record: dict[str, Any],
    md: Any = None,
    limits: str = "",
) -> str:
    """The report as one HTML document.

    Args:
        title: the heading (which image, which settings).
        model: the model line (preset, device, weights).
        untrained: puts the untrained warning at the top.
        vote: the vote panel's HTML (:func:`webapp.vote.vote_html`).
        details: the per-stream table and notes (:func:`webapp.render.details_html`).
        pictures: input, degraded image, regions and overlays.
        charts: the figures.
        record: the JSON report, embedded verbatim (and shown at the end).
        md: turns a caption into HTML (default: escape only).
        limits: the box "What this can and cannot tell you" (:func:`webapp.render.limits_html`), under the vote
            as on the page.
    """
    md = md or html.escape
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(plain_text(title))}</title><style>{CSS}</style></head><body class='report'>",
        f"<h1>Deepfake forensics report</h1><p>{md(title)}</p>",
        f"<p><b>Model:</b> {html.escape(model)} · made {when}</p>",
    ]
    if untrained:
        parts.append("<div class='fv-untrained'>⚠ UNTRAINED WEIGHTS: every number in this report is random; "
                     "it shows how the tool works, not what the image is.</div>")
    parts += ["<h2>The vote</h2>", vote, limits, "<h2>The three streams</h2>", details, "<h2>Pictures</h2><div>"]
    for pic in pictures:
        if pic.image is None:
            parts.append(f"<figure><figcaption>{md(pic.caption)}</figcaption></figure>")
        else:
            parts.append(f"<figure><img alt='{html.escape(plain_text(pic.caption), quote=True)}' src='{_png_or_jpeg(pic.image)}'>"
                         f"<figcaption>{md(pic.caption)}</figcaption></figure>")
    if any(pic.overlay and pic.image is not None for pic in pictures):  # the overlays are RGB: their scale in words
        parts.append(f"<div class='report-scale'>{colour_scale_html()}</div>")
    parts.append("</div><h2>Figures</h2><div>")
    for chart in charts:
        if chart.figure is None:
            continue
        parts.append(f"<figure><img alt='{html.escape(chart.title, quote=True)}' src='{_figure_png(chart.figure)}'>"
                     f"<figcaption><b>{html.escape(chart.title)}</b> {html.escape(chart.note)}</figcaption></figure>")
    text = json.dumps(record, indent=2, allow_nan=False)
    safe = text.replace("</", "<\\/")  # nothing in the JSON can close the script element
    parts += [
        "</div><h2>The report as JSON</h2>",
        "<p>The same JSON as <code>python -m forensic predict --format json</code>, also embedded in this file as "
        "<code>&lt;script type='application/json' id='report-json'&gt;</code>.</p>",
        f"<details><summary>Show the JSON</summary><pre>{html.escape(text)}</pre></details>",
        f"<script type='application/json' id='report-json'>{safe}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
