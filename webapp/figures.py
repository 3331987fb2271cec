"""The app's own figures and pictures for students: plain-language labels, axes from 0, legends that match and do not cover.

Figures the CLI draws too (entropy, similarity, sweep) are :mod:`forensic.viz`'s; this module has
those only the app shows, in the same style (:func:`forensic.viz.set_titles`: each figure says
which image it describes, in a subtitle, and what its axes mean in words). The
regions picture labels every stream's rectangle and the detected face with tags that never
overlap each other (:func:`place_tags`), so nothing hides under Gradio's panel badge either.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from forensic import viz
from forensic.config import STREAM_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from forensic.explain.similarity import SimilarityMatrix
    from forensic.report import Report

__all__ = [
    "Tag",
    "place_tags",
    "regions_picture",
    "stability_figure",
    "similarity_figure",
    "message_figure",
    "colour_scale_html",
    "drift_figure",
    "draw_labelled_regions",
]

STREAMS = STREAM_NAMES
_KIND_SHORT = {
    "center-crop": "centre crop",
    "face-crop": "face crop",
    "face-fallback": "fell back: centre crop",
    "whole-image": "whole image",
}


def _figure(width: float, height: float) -> Figure:
    return viz.new_figure(width, height, layout="constrained")  # colour bars and legends get their room


def message_figure(text: str, *, title: str = "", size: tuple[float, float] = (5.2, 3.4)) -> Figure:
    """A figure holding only a sentence (e.g. why a panel is empty)."""
    fig = _figure(*size)
    ax = fig.subplots()
    ax.set_axis_off()
    viz.set_titles(fig, title)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10.5, wrap=True, transform=ax.transAxes, color="0.25")
    return fig


# ------------------------------------------------------------------------------------ bar charts
def stability_figure(report: Report, *, subject: str = "") -> Figure:
    """Each stream's cosine between its clean and degraded features, on an axis from 0 to 1."""
    names = [n for n in STREAMS if n in report.streams]
    values = [report.streams[n].stability for n in names]
    if all(v is None for v in values):
        return message_figure("Nothing was degraded, so there is nothing to compare:\nmove a lab slider, then Analyze,\n"
                              "to see how far each stream's features move.", title="Feature stability under the degradation")
    fig = _figure(5.6, 3.9)
    ax = fig.subplots()
    shown = [np.nan if v is None else v for v in values]
    bars = ax.bar(names, shown, color=[viz.stream_rgb(n) for n in names], edgecolor="black", linewidth=0.6, width=0.55)
    for bar, v in zip(bars, values):
        if v is not None:
            ax.text(bar.get_x() + bar.get_width() / 2, max(v, 0) + 0.015, f"{v:.3f}", ha="center", va="bottom", fontsize=9)
    low = min(0.0, *(v for v in values if v is not None))
    ax.set_ylim(low, 1.12)
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_ylabel("cosine(clean, degraded)\n1 = features unchanged", fontsize=9)
    viz.set_titles(fig, "Did the degradation move each stream's features?", subject)
    return fig


def similarity_figure(matrix: SimilarityMatrix | None, *, title: str, subject: str = "", empty: str = "") -> Figure:
    """:func:`forensic.viz.similarity_figure`, or why it is empty (``empty``) when there is no matrix."""
    if matrix is None:
        return message_figure(empty or "Not available for this analysis.", title=title, size=(4.8, 3.9))
    return viz.similarity_figure(matrix, title=title, subject=subject)


def drift_figure(cosines: Mapping[str, float | None], stability: Mapping[str, float | None], *, subject: str = "") -> Figure:
    """Per stream: cosine between the clean and degraded Score-CAM maps, next to the feature cosine."""
    names = [n for n in STREAMS if n in cosines]
    fig = _figure(5.6, 3.9)
    ax = fig.subplots()
    x = np.arange(len(names))
    maps = [np.nan if cosines[n] is None else cosines[n] for n in names]
    feats = [np.nan if stability.get(n) is None else stability[n] for n in names]
    colours = [viz.stream_rgb(n) for n in names]
    a = ax.bar(x - 0.19, maps, 0.38, color=colours, edgecolor="black", linewidth=0.6)
    b = ax.bar(x + 0.19, feats, 0.38, color=[(*c, 0.35) for c in colours], edgecolor=colours, hatch="///")
    for group in (a, b):
        for bar in group:
            v = bar.get_height()
            if np.isfinite(v):
                ax.text(bar.get_x() + bar.get_width() / 2, max(v, 0) + 0.015, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor="0.55", edgecolor="black", label="Score-CAM maps (solid)"),
                       Patch(facecolor=(0.55, 0.55, 0.55, 0.35), edgecolor="0.3", hatch="///", label="features (hatched)")],
              loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=8, frameon=False, borderaxespad=0.2)
    ax.set_xticks(x, names)
    ax.set_ylim(min(0.0, *(v for v in maps + feats if np.isfinite(v))), 1.12)
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_ylabel("cosine(clean, degraded)\n1 = did not move", fontsize=9)
    viz.set_titles(fig, "How far did each stream's attention drift?", subject)
    return fig


def colour_scale_html(*, cmap: str = "jet") -> str:
    """The overlays' colour scale as an HTML bar (the overlays are RGB pictures; they carry no scale)."""
    from matplotlib import colormaps

    stops = ", ".join(
        "#{:02x}{:02x}{:02x} {:.0f}%".format(*(int(255 * c) for c in colormaps[cmap](t)[:3]), 100 * t)
        for t in np.linspace(0, 1, 9)
    )
    return (
        "<div class='colour-scale'><span>0 least</span>"
        f"<span class='colour-bar' style='background:linear-gradient(to right, {stops})'></span>"
        "<span>1 most</span></div>"
        "<div class='note'>Colour = how much that part of the stream's input raised its P(fake) (Score-CAM, each map "
        "scaled to its own 0-1). Outside the stream's input region the photo is dimmed and uncoloured.</div>"
    )


# --------------------------------------------------------------------------------- regions picture
@dataclass(frozen=True)
class Tag:
    """A text label of a rectangle: where it goes (``x``, ``y``: its top-left) and its size."""

    text: str
    x: int
    y: int
    width: int
    height: int
    colour: tuple[int, int, int]

    def overlaps(self, other: Tag) -> bool:
        return not (self.x + self.width <= other.x or other.x + other.width <= self.x
                    or self.y + self.height <= other.y or other.y + other.height <= self.y)


def place_tags(wanted: Sequence[tuple[str, tuple[int, int], tuple[int, int], tuple[int, int, int]]],
               image_size: tuple[int, int]) -> list[Tag]:
    """Positions tags at their anchors, moved down (then up) until none overlaps an earlier one.

    Args:
        wanted: (text, anchor (x, y), size (w, h), colour) in the order they are placed.
        image_size: (width, height): tags stay inside the picture.
    """
    w_img, h_img = image_size
    placed: list[Tag] = []
    for text, (ax, ay), (tw, th), colour in wanted:
        x = int(min(max(ax, 0), max(w_img - tw, 0)))
        candidates = [ay + k * (th + 2) for k in range(0, 40)] + [ay - k * (th + 2) for k in range(1, 40)]
        for y in candidates:
            y = int(min(max(y, 0), max(h_img - th, 0)))
            tag = Tag(text, x, y, tw, th, colour)
            if not any(tag.overlaps(p) for p in placed):
                break
        placed.append(tag)
    return placed


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (OSError, ValueError):  # no TrueType font at all: Pillow's bitmap font still labels
        return ImageFont.load_default()


def _dashed_rect(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], colour, width: int, dash: int) -> None:
    x0, y0, x1, y1 = box
    for a, b, horizontal, fixed in ((x0, x1, True, y0), (x0, x1, True, y1), (y0, y1, False, x0), (y0, y1, False, x1)):
        for s in range(a, b, 2 * dash):
            e = min(s + dash, b)
            draw.line([(s, fixed), (e, fixed)] if horizontal else [(fixed, s), (fixed, e)], fill=colour, width=width)


def regions_picture(report: Report) -> np.ndarray:
    """The analysed image with each stream's input region (its colour) and the detected face (white,
    dashed), every one labelled with a tag in words; tags never overlap (:func:`place_tags`)."""
    regions = {n: (report.streams[n].input.region, f"{n}: {_KIND_SHORT.get(report.streams[n].input.kind, report.streams[n].input.kind)}")
               for n in STREAMS if n in report.streams}
    return draw_labelled_regions(report.image, regions, face_box=report.face.box)


def draw_labelled_regions(image: np.ndarray, regions: Mapping[str, tuple], *, face_box=None) -> np.ndarray:
    """``image`` with each named region (``name -> (CropRegion, label)``) in its stream's colour and the
    face box (anything with x0, y0, x1, y1) white and dashed, all labelled; returns a new array."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    w, h = pil.size
    draw = ImageDraw.Draw(pil)
    t = max(2, round(max(w, h) / 300))
    font = _font(max(11, round(max(w, h) / 42)))
    wanted = []
    for i, (name, (region, text)) in enumerate(regions.items()):
        c = region.clipped((w, h))
        inset = t * i  # nested rectangles stay visible when regions coincide
        box = (int(c.x0) + inset, int(c.y0) + inset, max(int(c.x1) - 1 - inset, int(c.x0) + inset),
               max(int(c.y1) - 1 - inset, int(c.y0) + inset))
        colour = viz.STREAM_COLORS.get(name, (255, 255, 255))
        draw.rectangle(box, outline=colour, width=t)
        wanted.append((text, (box[0] + t, box[1] + t), _text_size(draw, text, font), colour))
    if face_box is not None:
        fb = tuple(int(round(v)) for v in (face_box.x0, face_box.y0, face_box.x1, face_box.y1))
        _dashed_rect(draw, fb, (255, 255, 255), max(1, t // 2 + 1), dash=max(4, 3 * t))
        text = "detected face"
        size = _text_size(draw, text, font)
        below = fb[3] + t if fb[3] + t + size[1] <= h else fb[1] - size[1] - t
        wanted.append((text, (fb[0], below), size, (255, 255, 255)))
    for tag in place_tags(wanted, (w, h)):
        r, g, b = tag.colour
        dark_text = 0.299 * r + 0.587 * g + 0.114 * b > 140
        draw.rectangle((tag.x, tag.y, tag.x + tag.width - 1, tag.y + tag.height - 1), fill=tag.colour)
        draw.text((tag.x + 4, tag.y + 2), tag.text, font=font, fill=(0, 0, 0) if dark_text else (255, 255, 255))
    return np.asarray(pil)


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return int(x1 - x0) + 8, int(y1 + 4)
