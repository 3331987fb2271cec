"""Distractors: the paper's op 14 (random text or a foreign patch), and each kind on its own."""

from __future__ import annotations

import string

import cv2
import numpy as np

from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.pixels import normal
from forensic.degrade.ops.registry import Params, register

__all__ = ["distractor", "distractor_patch", "distractor_text"]

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
)
_TEXT_CHARS = string.ascii_uppercase + string.digits


def _draw_text(x: np.ndarray, text: str, size: float, opacity: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    colour = rng.random(3).astype(np.float32)
    (_, unit_h), _ = cv2.getTextSize("X", font, 1.0, 1)
    scale = max(6.0, size * min(h, w)) / unit_h
    thickness = max(1, round(scale * 1.5))
    (tw, th), baseline = cv2.getTextSize(text, font, scale, thickness)
    left = int(rng.integers(0, max(1, w - tw)))
    bottom = int(rng.integers(min(th, h - 1), max(th + 1, h - baseline)))
    # OpenCV draws text on 8-bit images only: draw a coverage mask and blend in float
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.putText(mask, text, (left, bottom), font, scale, 255, thickness, cv2.LINE_AA)
    alpha = mask.astype(np.float32) * np.float32(opacity / 255.0)
    return x + alpha[..., None] * (colour - x)


def _random_text(rng: np.random.Generator) -> str:
    indices = rng.integers(0, len(_TEXT_CHARS), size=int(rng.integers(4, 13)))
    return "".join(_TEXT_CHARS[int(i)] for i in indices)


def _paste_patch(x: np.ndarray, size: float, source: str, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    ph = pw = max(1, min(h, w, round(size * min(h, w))))
    if source == "procedural":
        # There is no second image at inference time: a smooth random colour field with fine
        # grain stands in for "a patch of another image" (foreign content, natural-ish spectrum).
        field_ = cv2.resize(rng.random((4, 4, 3), dtype=np.float32), (pw, ph), interpolation=cv2.INTER_CUBIC)
        patch = field_.reshape(ph, pw, 3) + 0.05 * normal(rng, (ph, pw, 3))
    else:  # "shuffled": a block from elsewhere in the same image, flipped both ways
        sy, sx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
        patch = x[sy : sy + ph, sx : sx + pw][::-1, ::-1]
    ty, tx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    out = x.copy()
    out[ty : ty + ph, tx : tx + pw] = patch
    return out


_TEXT_PARAMS = (
    ParamInfo("text", str, None, help="text to draw (auto: 4-12 random letters/digits)"),
    ParamInfo("size", float, None, 0.01, 0.5, "glyph height / short side (auto: 0.05..0.15)"),
    ParamInfo("opacity", float, None, 0.0, 1.0, "text opacity (auto: 0.7..1)"),
)
_PATCH_PARAMS = (
    ParamInfo("size", float, None, 0.02, 0.9, "patch side as a fraction of the short side (auto: 0.1..0.25)"),
    ParamInfo(
        "source",
        str,
        "random",
        help="procedural: generated colour field; shuffled: flipped block of the same image",
        choices=("random", "procedural", "shuffled"),
    ),
)


@register("distractor-text", "Random text drawn at a random place", _TEXT_PARAMS, group="distractor")
def distractor_text(x: np.ndarray, p: Params) -> np.ndarray:
    text = p.get("text", lambda: _random_text(p.rng))
    size = p.get("size", lambda: p.rng.uniform(0.05, 0.15))
    opacity = p.get("opacity", lambda: p.rng.uniform(0.7, 1.0))
    return _draw_text(x, text, size, opacity, p.rng)


@register(
    "distractor-patch",
    "A foreign patch pasted at a random place (procedural, or a flipped block of the same image)",
    _PATCH_PARAMS,
    group="distractor",
)
def distractor_patch(x: np.ndarray, p: Params) -> np.ndarray:
    size = p.get("size", lambda: p.rng.uniform(0.1, 0.25))
    return _paste_patch(x, size, p.choice("source"), p.rng)


@register(
    "distractor",
    "Distractor: random text, or a small foreign patch (see distractor-text, distractor-patch)",
    [ParamInfo("kind", str, "random", help="random: uniform", choices=("random", "text", "patch"))],
    group="distractor",
    paper_index=14,
)
def distractor(x: np.ndarray, p: Params) -> np.ndarray:
    if p.choice("kind") == "text":
        return _draw_text(x, _random_text(p.rng), p.rng.uniform(0.05, 0.15), p.rng.uniform(0.7, 1.0), p.rng)
    source = ("procedural", "shuffled")[int(p.rng.integers(2))]
    return _paste_patch(x, p.rng.uniform(0.1, 0.25), source, p.rng)
