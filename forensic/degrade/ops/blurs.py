"""Blur: the paper's smoothing (op 0) and motion blur (op 1), and the single standard blurs."""

from __future__ import annotations

import math

import cv2
import numpy as np

from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.registry import Params, register, strength_param

__all__ = ["aniso_blur", "box_blur", "gblur", "motion_blur", "smooth"]


def _odd(k: float, minimum: int = 3) -> int:
    k = max(minimum, int(round(k)))
    return k if k % 2 else k + 1


def _aniso_kernel(sigma_major: float, sigma_minor: float, angle_deg: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3.0 * sigma_major)))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    theta = math.radians(angle_deg)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    k = np.exp(-0.5 * ((u / max(sigma_major, 0.3)) ** 2 + (v / max(sigma_minor, 0.3)) ** 2))
    return (k / k.sum()).astype(np.float32)


def _aniso_blur(x: np.ndarray, sigma: float, ratio: float, angle: float) -> np.ndarray:
    if sigma <= 0:
        return x
    return cv2.filter2D(x, -1, _aniso_kernel(sigma, sigma * ratio, angle), borderType=cv2.BORDER_REFLECT)


def _gauss_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    return x if sigma <= 0 else cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _box_blur(x: np.ndarray, size: int) -> np.ndarray:
    return x if size <= 1 else cv2.blur(x, (size, size), borderType=cv2.BORDER_REFLECT)


@register(
    "smooth",
    "Smoothing: anisotropic Gaussian, isotropic Gaussian or box blur, kernel width up to 30*strength",
    [
        ParamInfo(
            "kernel", str, "random", help="which kernel (random: uniform)", choices=("random", "aniso", "gauss", "box")
        ),
        ParamInfo("size", int, None, 1, 99, "kernel width in px (auto: odd, up to 30*strength)"),
        ParamInfo("ratio", float, None, 0.05, 1.0, "aniso: minor/major axis ratio (auto: 0.2..1)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "aniso: major axis angle in degrees (auto: random)"),
        strength_param(),
    ],
    group="blur",
    paper_index=0,
)
def smooth(x: np.ndarray, p: Params) -> np.ndarray:
    kernel = p.choice("kernel")
    size = p.get("size", lambda: _odd(3 + p.rng.random() * max(0.0, 30.0 * p.strength - 3.0)))
    if kernel == "box":
        return _box_blur(x, size)
    if kernel == "gauss":
        return cv2.GaussianBlur(x, (_odd(size, 1), _odd(size, 1)), size / 6.0, borderType=cv2.BORDER_REFLECT)
    ratio = p.get("ratio", lambda: p.rng.uniform(0.2, 1.0))
    angle = p.get("angle", lambda: p.rng.uniform(0.0, 180.0))
    return _aniso_blur(x, size / 6.0, ratio, angle)


@register(
    "gblur",
    "Isotropic Gaussian blur",
    [ParamInfo("sigma", float, None, 0.0, 50.0, "std in px (auto: 4*strength)"), strength_param()],
    group="blur",
)
def gblur(x: np.ndarray, p: Params) -> np.ndarray:
    return _gauss_blur(x, p.get("sigma", lambda: 4.0 * p.strength))


@register(
    "aniso-blur",
    "Anisotropic (elliptical, rotated) Gaussian blur",
    [
        ParamInfo("sigma", float, None, 0.0, 30.0, "major-axis std in px (auto: 5*strength)"),
        ParamInfo("ratio", float, None, 0.05, 1.0, "minor/major axis ratio (auto: 0.2..1)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "major axis angle in degrees (auto: random)"),
        strength_param(),
    ],
    group="blur",
)
def aniso_blur(x: np.ndarray, p: Params) -> np.ndarray:
    sigma = p.get("sigma", lambda: 5.0 * p.strength)
    ratio = p.get("ratio", lambda: p.rng.uniform(0.2, 1.0))
    angle = p.get("angle", lambda: p.rng.uniform(0.0, 180.0))
    return _aniso_blur(x, sigma, ratio, angle)


@register(
    "box-blur",
    "Box (mean) filter",
    [ParamInfo("size", int, None, 1, 99, "kernel width in px (auto: 1 + 2*round(7*strength))"), strength_param()],
    group="blur",
)
def box_blur(x: np.ndarray, p: Params) -> np.ndarray:
    return _box_blur(x, p.get("size", lambda: 1 + 2 * round(7.0 * p.strength)))


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), dtype=np.float32)
    k[length // 2, :] = 1.0
    centre = ((length - 1) / 2.0, (length - 1) / 2.0)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
    k = cv2.warpAffine(k, rotation, (length, length), flags=cv2.INTER_LINEAR)
    return k / max(float(k.sum()), 1e-6)


@register(
    "motion-blur",
    "Linear motion blur at an angle, length up to ~12*strength",
    [
        ParamInfo("length", int, None, 1, 151, "kernel length in px (auto: odd, 3..12*strength)"),
        ParamInfo("angle", float, None, 0.0, 180.0, "direction in degrees (auto: random)"),
        strength_param(),
    ],
    group="blur",
    paper_index=1,
)
def motion_blur(x: np.ndarray, p: Params) -> np.ndarray:
    length = p.get("length", lambda: _odd(3 + p.rng.random() * max(0.0, 12.0 * p.strength - 3.0)))
    angle = p.get("angle", lambda: p.rng.uniform(0.0, 180.0))
    if length <= 1:
        return x
    return cv2.filter2D(x, -1, _motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT)
