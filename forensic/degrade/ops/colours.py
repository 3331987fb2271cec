"""Colour and tone: the paper's ops 4 (colour), 8 (posterize), 9 (brightness-contrast), 13 (vignette)."""

from __future__ import annotations

import numpy as np

from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.pixels import centered_grid
from forensic.degrade.ops.registry import Params, register, strength_param

__all__ = ["brightness_contrast", "color", "color_cast", "grayscale", "posterize", "vignette"]


def _luma(x: np.ndarray) -> np.ndarray:
    """BT.601 luma, HxW."""
    return x @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def _grayscale(x: np.ndarray, amount: float) -> np.ndarray:
    gray = _luma(x)[..., None]
    return x + np.float32(amount) * (gray - x)


def _color_cast(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    gains = 1.0 + amount * rng.uniform(-1.0, 1.0, size=3)
    saturation = 1.0 - amount * rng.random()
    out = _grayscale(x, 1.0 - saturation)
    return out * gains.astype(np.float32)


@register(
    "grayscale",
    "Convert to grey (BT.601 luma), blended by `amount`",
    [ParamInfo("amount", float, 1.0, 0.0, 1.0, "1 = fully grey")],
    group="color",
)
def grayscale(x: np.ndarray, p: Params) -> np.ndarray:
    return _grayscale(x, p.get("amount"))


@register(
    "color-cast",
    "Colour cast (random per-channel gains 1 +- amount) and saturation fade (up to amount)",
    [ParamInfo("amount", float, None, 0.0, 1.0, "cast amplitude (auto: 0.4*strength)"), strength_param()],
    group="color",
)
def color_cast(x: np.ndarray, p: Params) -> np.ndarray:
    return _color_cast(x, p.get("amount", lambda: 0.4 * p.strength), p.rng)


@register(
    "color",
    "Grayscale (20%) or colour cast / saturation fade (80%) with amplitude 0.4*strength",
    [
        ParamInfo(
            "mode", str, "random", help="random: grayscale 20%, cast 80%", choices=("random", "grayscale", "cast")
        ),
        strength_param(),
    ],
    group="color",
    paper_index=4,
)
def color(x: np.ndarray, p: Params) -> np.ndarray:
    if p.choice("mode", {"grayscale": 0.2, "cast": 0.8}) == "grayscale":
        return _grayscale(x, 1.0)
    return _color_cast(x, 0.4 * p.strength, p.rng)


@register(
    "posterize",
    "Colour banding: quantise each channel to `levels` levels",
    [ParamInfo("levels", int, None, 2, 256, "levels per channel (auto: 32 - 28*strength)"), strength_param()],
    group="color",
    paper_index=8,
)
def posterize(x: np.ndarray, p: Params) -> np.ndarray:
    steps = np.float32(p.get("levels", lambda: round(32 - 28 * p.strength)) - 1)
    return np.round(x * steps) / steps


@register(
    "brightness-contrast",
    "Brightness offset and contrast factor around the mean luma",
    [
        ParamInfo("brightness", float, None, -1.0, 1.0, "offset (auto: +-0.3*strength)"),
        ParamInfo("contrast", float, None, 0.0, 4.0, "factor (auto: 1 +- 0.5*strength)"),
        strength_param(),
    ],
    group="color",
    paper_index=9,
)
def brightness_contrast(x: np.ndarray, p: Params) -> np.ndarray:
    brightness = p.get("brightness", lambda: 0.3 * p.strength * p.rng.uniform(-1.0, 1.0))
    contrast = p.get("contrast", lambda: 1.0 + 0.5 * p.strength * p.rng.uniform(-1.0, 1.0))
    mean = np.float32(_luma(x).mean())
    return (x - mean) * np.float32(contrast) + mean + np.float32(brightness)


@register(
    "vignette",
    "Vignetting: radial darkening towards the corners",
    [ParamInfo("amount", float, None, 0.0, 1.0, "corner darkening (auto: 0.4 + 0.4*strength)"), strength_param()],
    group="color",
    paper_index=13,
)
def vignette(x: np.ndarray, p: Params) -> np.ndarray:
    amount = p.get("amount", lambda: 0.4 + 0.4 * p.strength)
    h, w = x.shape[:2]
    ys, xs = centered_grid(h, w)
    r2 = (ys / max((h - 1) / 2.0, 1.0)) ** 2 + (xs / max((w - 1) / 2.0, 1.0)) ** 2  # 2 at the corners
    mask = 1.0 - np.float32(amount) * np.minimum(r2 / 2.0, 1.0)
    return x * mask[..., None]
