"""Look closely: one place of the clean and the degraded image at 100 %, magnified, and what changed.

- :func:`closeup`: the same crop of both images, each image pixel drawn as a ``factor`` x ``factor``
  square (nearest neighbour: JPEG's 8 x 8 blocks stay sharp), and their difference amplified by a
  stated gain around grey (grey = no change; :func:`difference_gain` picks one that fits the crop);
- :func:`where_picture`: the whole image, small, with the crop outlined (where the close-up is);
- :func:`map_difference_picture`: where a stream's attention moved: its degraded Score-CAM map minus
  its clean one in a diverging colour map (blue -1 .. white 0 .. red +1), with that scale drawn in.

Every picture is an RGB uint8 array (numpy, Pillow and a matplotlib colour map), as in
:mod:`forensic.viz.pictures`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .pictures import label_font

__all__ = ["VIEW", "FACTORS", "GRID", "DIFF_GAIN", "DIFF_GAINS", "DIVERGING", "Closeup", "crop_box", "magnify",
           "difference_image", "difference_gain",
           "closeup", "where_picture", "where_scale", "map_difference", "map_difference_picture"]

#: side, in screen pixels, of each close-up picture: the crop's side is ``VIEW // factor`` image pixels
VIEW = 384
#: the magnifications offered (1 = 100 %: one image pixel per screen pixel)
FACTORS = (1, 2, 4)
#: JPEG's block size: a crop starts on this grid where the image allows, so whole blocks fill it
GRID = 8
#: the gains :func:`difference_gain` picks from (a power of two reads as "x8" on the page)
DIFF_GAINS = (1, 2, 4, 8, 16, 32)
#: the gain for a typical difference: a change of 16 grey levels shows as 128 levels
DIFF_GAIN = 8
#: the map difference's colour map: blue = less attention after the degradation, white = same, red = more
DIVERGING = "RdBu_r"


@dataclass(frozen=True)
class Closeup:
    """The same crop of a clean and a degraded image, magnified, and their amplified difference.

    Attributes:
        clean, degraded, difference: RGB uint8 pictures of ``factor`` times the crop's size.
        box: the crop in image pixels, ``(x0, y0, x1, y1)`` (x1, y1 excluded).
        factor: each image pixel is a ``factor`` x ``factor`` square.
        gain: the difference picture shows ``128 + gain * (degraded - clean)`` per channel.
        mean_abs: mean absolute difference over the crop, in grey levels (0-255).
    """

    clean: np.ndarray
    degraded: np.ndarray
    difference: np.ndarray
    box: tuple[int, int, int, int]
    factor: int
    gain: int
    mean_abs: float

    @property
    def size(self) -> tuple[int, int]:
        """The crop's (width, height) in image pixels."""
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0


def crop_box(size: tuple[int, int], centre: tuple[float, float], side: int, *, grid: int = GRID) -> tuple[int, int, int, int]:
    """A ``side`` x ``side`` crop of an image of ``size`` (width, height) around ``centre`` (x, y).

    The crop starts on the ``grid`` nearest to centring it, and is moved inside the image at its
    edges; an image smaller than ``side`` gives its whole width or height. Returns
    ``(x0, y0, x1, y1)``, ``x1`` and ``y1`` excluded.
    """
    width, height = (int(v) for v in size)
    if width < 1 or height < 1:
        raise ValueError(f"the image is empty ({width} x {height} pixels)")
    if side < 1 or grid < 1:
        raise ValueError(f"the crop's side and grid must be at least 1 pixel, got {side} and {grid}")
    w, h = min(int(side), width), min(int(side), height)
    x0, y0 = _start(centre[0], w, width, grid), _start(centre[1], h, height, grid)
    return x0, y0, x0 + w, y0 + h


def _start(c: float, n: int, total: int, grid: int) -> int:
    start = int(round((float(c) - n / 2) / grid)) * grid
    return min(max(start, 0), total - n)


def magnify(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` with each pixel repeated into a ``factor`` x ``factor`` square (nearest neighbour)."""
    if int(factor) != factor or factor < 1:
        raise ValueError(f"the magnification must be a whole number >= 1, got {factor}")
    factor = int(factor)
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def difference_image(clean: np.ndarray, degraded: np.ndarray, gain: float = DIFF_GAIN) -> np.ndarray:
    """``128 + gain * (degraded - clean)`` per channel, clipped to 0-255: grey = no change, lighter =
    the degraded image is lighter there, darker = darker, a tint = a colour shift."""
    if clean.shape != degraded.shape:
        raise ValueError(f"the clean and degraded images differ in size ({clean.shape} and {degraded.shape})")
    if gain <= 0:
        raise ValueError(f"the gain must be positive, got {gain}")
    d = degraded.astype(np.float32) - clean.astype(np.float32)
    return np.clip(np.rint(128.0 + gain * d), 0, 255).astype(np.uint8)


def difference_gain(clean: np.ndarray, degraded: np.ndarray, *, gains: tuple[int, ...] = DIFF_GAINS, reach: float = 100.0) -> int:
    """The largest of ``gains`` that draws 99 % of the differences within ``reach`` levels of grey (so that
    JPEG quality 90 and quality 10 both read: neither all grey nor all white and black); the smallest
    gain when even that saturates, the largest when nothing changed."""
    d = np.abs(degraded.astype(np.float32) - clean.astype(np.float32))
    p99 = float(np.percentile(d, 99)) if d.size else 0.0
    fitting = [g for g in sorted(gains) if g * p99 <= reach]
    return fitting[-1] if fitting else min(gains)


def closeup(clean: np.ndarray, degraded: np.ndarray, centre: tuple[float, float], *, factor: int = 4, view: int = VIEW,
            gain: float | None = DIFF_GAIN) -> Closeup:
    """The ``view // factor`` pixels square of both images around ``centre`` (x, y), magnified ``factor``
    times, and their difference amplified ``gain`` times (see :func:`difference_image`; None: the crop's
    own :func:`difference_gain`, stated in :attr:`Closeup.gain`)."""
    if clean.shape != degraded.shape:
        raise ValueError(f"the clean and degraded images differ in size ({clean.shape} and {degraded.shape}): "
                         "compare the degraded image with the clean one it was made from")
    magnify(clean[:1, :1], factor)  # checks the factor before any work
    box = crop_box((clean.shape[1], clean.shape[0]), centre, max(1, int(view) // int(factor)))
    x0, y0, x1, y1 = box
    a, b = clean[y0:y1, x0:x1], degraded[y0:y1, x0:x1]
    mean_abs = float(np.abs(b.astype(np.float32) - a.astype(np.float32)).mean())
    gain = difference_gain(a, b) if gain is None else gain
    return Closeup(clean=magnify(a, factor), degraded=magnify(b, factor), difference=magnify(difference_image(a, b, gain), factor),
                   box=box, factor=int(factor), gain=int(gain) if float(gain).is_integer() else gain, mean_abs=mean_abs)


def where_scale(size: tuple[int, int], max_side: int = 480) -> float:
    """How much :func:`where_picture` shrinks an image of ``size`` (width, height): at most 1."""
    return min(1.0, max_side / max(size))


def where_picture(image: np.ndarray, box: tuple[int, int, int, int], *, max_side: int = 480) -> np.ndarray:
    """``image`` shrunk to at most ``max_side`` pixels (:func:`where_scale`), the crop ``box`` outlined
    in yellow on black so that it shows on any photo."""
    h, w = image.shape[:2]
    s = where_scale((w, h), max_side)
    small = image if s == 1.0 else cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    pil = Image.fromarray(np.ascontiguousarray(small[..., :3] if small.ndim == 3 else np.stack([small] * 3, -1)))
    draw = ImageDraw.Draw(pil)
    x0, y0, x1, y1 = (round(v * s) for v in box)
    x1, y1 = max(x1 - 1, x0 + 2), max(y1 - 1, y0 + 2)  # a tiny crop still shows as a box
    t = max(3, round(max(small.shape[:2]) / 100))  # shown at half size on the page: still a clear line
    draw.rectangle((x0 - t, y0 - t, x1 + t, y1 + t), outline=(0, 0, 0), width=t + 2)
    draw.rectangle((x0 - t + 1, y0 - t + 1, x1 + t - 1, y1 + t - 1), outline=(255, 230, 0), width=t)
    return np.asarray(pil)


def map_difference(clean_map: np.ndarray, degraded_map: np.ndarray) -> np.ndarray:
    """``degraded_map - clean_map`` (both in [0, 1], image coordinates) in [-1, 1], float32; a degraded
    map of another size is resized to the clean one's first."""
    a = np.asarray(clean_map, dtype=np.float32)
    b = np.asarray(degraded_map, dtype=np.float32)
    if b.shape != a.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(b - a, -1.0, 1.0)


def map_difference_picture(image: np.ndarray, clean_map: np.ndarray, degraded_map: np.ndarray, *, alpha: float = 0.75,
                           legend: bool = True) -> np.ndarray:
    """Where a stream's attention moved: :func:`map_difference` in :data:`DIVERGING` (blue -1, white 0,
    red +1) over a light grey copy of ``image``, with the scale drawn under it when ``legend``."""
    from matplotlib import colormaps

    diff = map_difference(clean_map, degraded_map)
    h, w = diff.shape
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    grey = image.astype(np.float32) if image.ndim == 2 else image[..., :3].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    base = (0.45 * grey + 0.55 * 255.0)[..., None]  # light grey: the colours read as the map, the photo as context
    colours = colormaps[DIVERGING]((diff + 1.0) / 2.0)[..., :3].astype(np.float32) * 255.0
    out = np.clip(base * (1 - alpha) + colours * alpha, 0, 255).astype(np.uint8)
    return np.concatenate([out, _legend(w)], axis=0) if legend else out


def _legend(width: int) -> np.ndarray:
    # the scale under the picture: a bar from -1 to +1 and what its ends mean
    from matplotlib import colormaps

    font = label_font(max(11, round(width / 34)))
    pad = max(4, font.size // 2) if hasattr(font, "size") else 6
    bar_h = max(8, round(width / 40))
    pil = Image.new("RGB", (width, 1), (255, 255, 255))
    draw = ImageDraw.Draw(pil)
    labels = ("-1", "0", "+1")
    for words in (("-1 less attention", "0 no change", "+1 more attention"), ("-1 less", "0 same", "+1 more")):
        # the longest words that fit with a gap between them
        if sum(draw.textbbox((0, 0), t, font=font)[2] for t in words) + 4 * pad <= width - 2 * pad:
            labels = words
            break
    text_h = max(draw.textbbox((0, 0), t, font=font)[3] for t in labels)
    height = pad + bar_h + pad // 2 + text_h + pad
    pil = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(pil)
    x0, x1 = pad, max(pad + 2, width - pad)
    ramp = colormaps[DIVERGING](np.linspace(0.0, 1.0, x1 - x0))[:, :3]
    bar = np.repeat((ramp * 255).astype(np.uint8)[None], bar_h, axis=0)
    pil.paste(Image.fromarray(bar), (x0, pad))
    draw.rectangle((x0, pad, x1 - 1, pad + bar_h - 1), outline=(90, 90, 90))
    y = pad + bar_h + pad // 2
    left, mid, right = labels
    draw.text((x0, y), left, font=font, fill=(20, 20, 20))
    mw = draw.textbbox((0, 0), mid, font=font)[2]
    draw.text(((x0 + x1 - mw) // 2, y), mid, font=font, fill=(20, 20, 20))
    rw = draw.textbbox((0, 0), right, font=font)[2]
    draw.text((x1 - rw, y), right, font=font, fill=(20, 20, 20))
    return np.asarray(pil)
