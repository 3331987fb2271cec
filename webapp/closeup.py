"""The Compare tab's "Look closely" panels and its map-difference row, as data (no model needed for the first).

:func:`look_closely` crops the clean upload and the lab's degraded image at the same place (the centre,
the face, or a point clicked on the small picture of the whole image), magnifies both 1x, 2x or 4x
(nearest neighbour: JPEG's 8 x 8 blocks stay sharp on a projector) and shows their difference
amplified by a stated gain. It follows the lab as the preview does (milliseconds for a centre crop).
:func:`map_differences` draws, per stream, the degraded Score-CAM map minus the clean one (Compare).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from forensic import viz
from forensic.degrade import degrade_result
from forensic.viz.closeup import FACTORS, GRID

from .lab import LabSettings, working_copy
from .runtime import decode_upload

__all__ = ["WHERE_CHOICES", "ZOOM_CHOICES", "CloseupView", "look_closely", "clicked_point", "map_differences",
           "face_centre"]

#: where to look (the radio's choices)
WHERE_CHOICES = ("centre", "the face", "a point I click")
#: (label, factor) of the magnification radio
ZOOM_CHOICES = (("1x (100 %)", 1), ("2x", 2), ("4x", 4))
_FACES: OrderedDict[tuple, tuple[float, float] | None] = OrderedDict()


@dataclass(frozen=True)
class CloseupView:
    """What "Look closely" shows: a caption, where the crop is, the two crops and their difference, with titles."""

    closeup_caption: str = ""
    closeup_where_pic: np.ndarray | None = None
    closeup_title_clean: str = "**Clean upload**"
    closeup_title_degraded: str = "**Degraded**"
    closeup_title_diff: str = "**Difference**"
    closeup_clean: np.ndarray | None = None
    closeup_degraded: np.ndarray | None = None
    closeup_diff: np.ndarray | None = None
    closeup_note: str = ""


def _message(text: str) -> CloseupView:
    return CloseupView(closeup_caption=text)


def look_closely(image: str | None, lab: LabSettings, where: str = "centre", zoom: Any = 4, point: Any = None, *,
                 max_pixels: int | None = None, gain: int | None = None) -> CloseupView:
    """The close-up of the upload ``image`` (a path) and of the lab's degraded image; never raises.

    Args:
        lab: the lab's settings (the degraded image is the preview's, at the lab's working size).
        where: one of :data:`WHERE_CHOICES`; ``point`` ([x, y] in the image's pixels) for a clicked point.
        zoom: 1, 2 or 4 (each image pixel becomes a zoom x zoom square).
        gain: the difference's gain; None: the largest that keeps the crop's differences readable (stated).
    """
    if not image:
        return _message("Upload an image (or click an example) to look closely at it.")
    try:
        factor = int(zoom)
    except (TypeError, ValueError):
        factor = 4
    factor = factor if factor in FACTORS else 4
    try:
        decoded = decode_upload(image, max_pixels)
        clean = working_copy(decoded.pixels)
        degraded = degrade_result(clean, lab.spec(), seed=lab.seed).image
    except Exception as exc:  # noqa: BLE001 - a bad upload or setting: the lab's preview says why in detail
        message = getattr(exc, "message", None) or str(exc).strip().splitlines()[0]
        return _message(f"⚠ Nothing to look at: {message}")
    h, w = clean.shape[:2]
    upload = decoded.scaled_from or (decoded.width, decoded.height)
    centre, said = (w / 2, h / 2), "the centre"
    if where == "the face":
        found = face_centre(image, clean)
        centre, said = (found, "the detected face") if found else (centre, "the centre (no face was found)")
    elif where == "a point I click":
        if point is not None and len(point) == 2:
            centre, said = (float(point[0]), float(point[1])), "the point you clicked"
        else:
            said = "the centre (click the small picture to choose a point)"
    c = viz.closeup(clean, degraded, centre, factor=factor, gain=gain)
    spec = lab.spec()
    return CloseupView(
        closeup_caption=_caption(c, (w, h), said, spec, upload),
        closeup_where_pic=viz.where_picture(degraded, c.box),
        closeup_title_clean=f"**Clean upload**, {_zoom_words(c.factor)}",
        closeup_title_degraded=(f"**Degraded** (`{spec}`), {c.factor}x" if spec
                                else f"**Degraded**: the lab applies nothing (= the clean upload), {c.factor}x"),
        closeup_title_diff=f"**Difference ×{c.gain}**: grey = no change",
        closeup_note=(f"**Difference ×{c.gain}**: each colour channel shows 128 + {c.gain} × (degraded − clean), so grey = "
                      "no change, lighter or darker = the degraded image is lighter or darker there, a tint = a colour "
                      f"shift; a change of {-(-128 // c.gain)} grey levels or more is white or black. "
                      + ("The gain was chosen for this crop (the largest of ×1, ×2, ... ×32 that keeps 99 % of its "
                         "differences off pure white and black): compare settings by the mean difference, not by the "
                         "picture's contrast. " if gain is None else "")
                      + f"Mean difference over the crop: {c.mean_abs:.1f} grey levels of 255."),
        closeup_clean=c.clean, closeup_degraded=c.degraded, closeup_diff=c.difference,
    )


def _zoom_words(factor: int) -> str:
    return "1x = 100 %" if factor == 1 else f"{factor}x (each pixel a {factor} x {factor} square)"


def _caption(c: viz.Closeup, size: tuple[int, int], said: str, spec: str | None, upload: tuple[int, int]) -> str:
    x0, y0, x1, y1 = c.box
    cw, ch = c.size
    blocks = f" ({cw // GRID} x {ch // GRID} JPEG blocks of 8 x 8 pixels)" if spec and "jpeg" in spec else ""
    return (f"A **{cw} x {ch} pixel** crop{blocks} at {said}: pixels {x0}-{x1 - 1} across, {y0}-{y1 - 1} down, of the "
            f"{size[0]} x {size[1]} image the lab works on"
            + ("" if tuple(upload) == tuple(size) else f" (the upload, {upload[0]} x {upload[1]}, scaled down to fit the lab)")
            + " (yellow box on the small picture; click it to look elsewhere). "
            + ("Each image pixel is one screen pixel (100 %)." if c.factor == 1
               else f"Each image pixel is drawn as a {c.factor} x {c.factor} square, without smoothing."))


def clicked_point(image: str | None, index: Any, *, max_pixels: int | None = None) -> list[float] | None:
    """The point clicked on :func:`forensic.viz.where_picture` (``index``: Gradio's [x, y] on that picture)
    in the image's own pixels, or None without an image or a point."""
    if not image or index is None or len(index) != 2:
        return None
    try:
        clean = working_copy(decode_upload(image, max_pixels).pixels)
    except Exception:  # noqa: BLE001 - the lab's preview says what is wrong with the upload
        return None
    h, w = clean.shape[:2]
    s = viz.where_scale((w, h))
    return [min(max(float(index[0]) / s, 0.0), w - 1.0), min(max(float(index[1]) / s, 0.0), h - 1.0)]


def face_centre(key: Any, clean: np.ndarray) -> tuple[float, float] | None:
    """The centre of the detected face in ``clean`` (cached per ``key`` and size), or None."""
    cache_key = (key, clean.shape)
    if cache_key not in _FACES:
        from forensic.faces import get_default_detector

        try:
            boxes = get_default_detector().detect(clean)
        except Exception:  # noqa: BLE001 - no face detector here: say "no face was found"
            boxes = ()
        _FACES[cache_key] = boxes[0].center if boxes else None
        while len(_FACES) > 8:
            _FACES.popitem(last=False)
    return _FACES[cache_key]


def map_differences(clean, degraded) -> dict[str, np.ndarray | None]:
    """Per stream, :func:`forensic.viz.map_difference_picture` of two explained reports (None without maps)."""
    out: dict[str, np.ndarray | None] = {}
    for n in viz.STREAM_TITLES:
        a, b = clean.streams.get(n), degraded.streams.get(n)
        if a is None or b is None or a.cam_image is None or b.cam_image is None:
            out[n] = None
            continue
        out[n] = viz.map_difference_picture(degraded.image, a.cam_image, b.cam_image)
    return out
