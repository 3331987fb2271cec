"""Artefacts: the paper's chromatic aberration (op 10), moire (op 11) and glitch (op 12)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.pixels import centered_grid
from forensic.degrade.ops.registry import Params, register, strength_param

__all__ = ["chromatic_aberration", "glitch", "moire"]


@register(
    "chromatic-aberration",
    "Lateral chromatic aberration: red and blue shifted in opposite directions",
    [
        ParamInfo("shift", float, None, 0.0, 64.0, "shift in px (auto: up to 4*strength)"),
        ParamInfo("angle", float, None, 0.0, 360.0, "shift direction in degrees (auto: random)"),
        strength_param(),
    ],
    group="artifact",
    paper_index=10,
)
def chromatic_aberration(x: np.ndarray, p: Params) -> np.ndarray:
    shift = p.get("shift", lambda: 4.0 * p.strength * p.rng.random())
    angle = math.radians(p.get("angle", lambda: p.rng.uniform(0.0, 360.0)))
    dx, dy = shift * math.cos(angle), shift * math.sin(angle)
    h, w = x.shape[:2]
    out = x.copy()
    for channel, sign in ((0, 1.0), (2, -1.0)):
        m = np.float32([[1, 0, sign * dx], [0, 1, sign * dy]])
        plane = np.ascontiguousarray(x[..., channel])
        out[..., channel] = cv2.warpAffine(
            plane, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    return out


@register(
    "moire",
    "Moire: a sinusoidal grating blended over the image",
    [
        ParamInfo("alpha", float, None, 0.0, 1.0, "blend weight (auto: 0.15*strength)"),
        ParamInfo("period", float, None, 2.0, 64.0, "grating period in px (auto: 3..12)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "grating angle in degrees (auto: random)"),
        strength_param(),
    ],
    group="artifact",
    paper_index=11,
)
def moire(x: np.ndarray, p: Params) -> np.ndarray:
    alpha = np.float32(p.get("alpha", lambda: 0.15 * p.strength))
    period = p.get("period", lambda: p.rng.uniform(3.0, 12.0))
    theta = math.radians(p.get("angle", lambda: p.rng.uniform(0.0, 180.0)))
    ys, xs = centered_grid(*x.shape[:2])
    k = np.float32(2.0 * math.pi / period)
    grating = 0.5 + 0.5 * np.sin(xs * (k * math.cos(theta)) + ys * (k * math.sin(theta)))
    return x * (1.0 - alpha) + (alpha * grating)[..., None]


@register(
    "glitch",
    "Glitch: horizontal bands dropped (black) or rolled sideways",
    [
        ParamInfo("bands", int, None, 0, 200, "number of bands (auto: 1..10*strength)"),
        ParamInfo("shift", int, None, 0, 2000, "max horizontal roll in px (auto: 30*strength)"),
        strength_param(),
    ],
    group="artifact",
    paper_index=12,
)
def glitch(x: np.ndarray, p: Params) -> np.ndarray:
    bands = p.get("bands", lambda: max(1, round(p.rng.random() * 10.0 * p.strength)))
    max_shift = p.get("shift", lambda: max(1, round(30.0 * p.strength)))
    h = x.shape[0]
    out = x.copy()
    max_height = max(1, h // 20)
    for _ in range(bands):  # a loop over at most a few bands, each a vectorised slice
        height = int(p.rng.integers(1, max_height + 1))
        top = int(p.rng.integers(0, max(1, h - height + 1)))
        band = slice(top, top + height)
        if p.rng.random() < 1.0 / 3.0:
            out[band] = 0.0
        else:
            out[band] = np.roll(out[band], int(p.rng.integers(-max_shift, max_shift + 1)), axis=1)
    return out
