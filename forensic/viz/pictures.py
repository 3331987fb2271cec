"""Pictures drawn on the image itself: Score-CAM overlays and the regions each stream saw.

Both are plain RGB uint8 arrays (cv2, Pillow and a matplotlib colormap). The regions picture labels
every stream's rectangle and the detected face with tags that never overlap each other
(:func:`place_tags`), so nothing hides under a panel's badge either.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .style import STREAM_COLORS

if TYPE_CHECKING:  # pragma: no cover
    from ..faces import CropRegion
    from ..report import Report

__all__ = ["overlay", "stream_overlays", "Tag", "place_tags", "draw_regions", "regions_picture", "label_font"]

_KIND_SHORT = {
    "center-crop": "centre crop",
    "face-crop": "face crop",
    "face-fallback": "fell back: centre crop",
    "whole-image": "whole image",
}


def _colormap(values: np.ndarray, name: str = "jet") -> np.ndarray:
    from matplotlib import colormaps

    rgba = colormaps[name](np.clip(values, 0.0, 1.0))
    return (rgba[..., :3] * 255).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.5, region: CropRegion | None = None, cmap: str = "jet") -> np.ndarray:
    """A heatmap in [0, 1] blended over an RGB uint8 image; outside ``region`` the image is only dimmed."""
    h, w = image.shape[:2]
    if heatmap.shape != (h, w):
        heatmap = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colored = _colormap(heatmap, cmap).astype(np.float32)
    base = image.astype(np.float32)
    weight = np.full((h, w, 1), alpha, dtype=np.float32)
    if region is not None:
        inside = np.zeros((h, w), dtype=bool)
        c = region.clipped((w, h))
        inside[int(round(c.y0)) : int(round(c.y1)), int(round(c.x0)) : int(round(c.x1))] = True
        weight[~inside] = 0.0
        base[~inside] *= 0.45
    return np.clip(base * (1 - weight) + colored * weight, 0, 255).astype(np.uint8)


def stream_overlays(report: Report, *, alpha: float = 0.5) -> dict[str, np.ndarray]:
    """Each stream's Score-CAM over the analysed image, in image coordinates (needs ``explain``)."""
    out = {}
    for name, stream in report.streams.items():
        if stream.cam_image is None:
            continue
        out[name] = overlay(report.image, stream.cam_image, alpha=alpha, region=stream.input.region)
    return out


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
def label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans at ``size`` px (Pillow's bitmap font where no TrueType font exists): the pictures' labels."""
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
               for n in STREAM_COLORS if n in report.streams}
    return draw_regions(report.image, regions, face_box=report.face.box)


def draw_regions(image: np.ndarray, regions: Mapping[str, tuple], *, face_box=None) -> np.ndarray:
    """``image`` with each named region (``name -> (CropRegion, label)``) in its stream's colour and the
    face box (anything with x0, y0, x1, y1) white and dashed, all labelled; returns a new array."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    w, h = pil.size
    draw = ImageDraw.Draw(pil)
    t = max(2, round(max(w, h) / 300))
    font = label_font(max(12, round(max(w, h) / 32)))  # 1/32 of the picture: >= 10 px on a 390-px phone
    wanted = []
    for i, (name, (region, text)) in enumerate(regions.items()):
        c = region.clipped((w, h))
        inset = t * i  # nested rectangles stay visible when regions coincide
        box = (int(c.x0) + inset, int(c.y0) + inset, max(int(c.x1) - 1 - inset, int(c.x0) + inset),
               max(int(c.y1) - 1 - inset, int(c.y0) + inset))
        colour = STREAM_COLORS.get(name, (255, 255, 255))
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
