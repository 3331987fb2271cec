"""Noise: the paper's mixed noise (op 2) and Gaussian noise (op 5), and the single noises."""

from __future__ import annotations

import cv2
import numpy as np

from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.pixels import normal
from forensic.degrade.ops.registry import Params, register, strength_param

__all__ = ["gnoise", "noise", "poisson", "salt_pepper", "speckle"]


def _speckle(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return x + x * (np.float32(sigma) * rng.standard_normal(x.shape, dtype=np.float32))


def _poisson(x: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.poisson(x * np.float32(peak)) / peak).astype(np.float32)


def _salt_pepper(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    h, w = x.shape[:2]
    hit = rng.random((h, w), dtype=np.float32) < amount
    salt = rng.random((h, w), dtype=np.float32) < 0.5
    out = x.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


# strength -> noise level, shared by the single ops and the paper's mixed-noise op
def _speckle_sigma_for(strength: float) -> float:
    return 0.35 * strength


def _poisson_peak_for(strength: float) -> float:
    # photons at white; the noise std at intensity v is sqrt(v / peak) ~ 0.22 * strength * sqrt(v)
    return min(1e6, 20.0 / max(strength, 1e-3) ** 2)


def _salt_pepper_amount_for(strength: float) -> float:
    return 0.1 * strength


@register(
    "speckle",
    "Multiplicative (speckle) noise: x + x*N(0, sigma)",
    [ParamInfo("sigma", float, None, 0.0, 2.0, "relative noise std (auto: 0.35*strength)"), strength_param()],
    group="noise",
)
def speckle(x: np.ndarray, p: Params) -> np.ndarray:
    return _speckle(x, p.get("sigma", lambda: _speckle_sigma_for(p.strength)), p.rng)


@register(
    "poisson",
    "Poisson (shot) noise with `peak` photons at white",
    [ParamInfo("peak", float, None, 1.0, 1e6, "photons at intensity 1 (auto: 20/strength^2)"), strength_param()],
    group="noise",
)
def poisson(x: np.ndarray, p: Params) -> np.ndarray:
    return _poisson(x, p.get("peak", lambda: _poisson_peak_for(p.strength)), p.rng)


@register(
    "salt-pepper",
    "Salt-and-pepper noise: a fraction `amount` of pixels set to black or white",
    [ParamInfo("amount", float, None, 0.0, 1.0, "fraction of pixels hit (auto: 0.1*strength)"), strength_param()],
    group="noise",
)
def salt_pepper(x: np.ndarray, p: Params) -> np.ndarray:
    return _salt_pepper(x, p.get("amount", lambda: _salt_pepper_amount_for(p.strength)), p.rng)


@register(
    "noise",
    "One of speckle, Poisson or salt-and-pepper noise at a level set by strength",
    [
        ParamInfo(
            "kind",
            str,
            "random",
            help="which noise (random: uniform)",
            choices=("random", "speckle", "poisson", "salt-pepper"),
        ),
        strength_param(),
    ],
    group="noise",
    paper_index=2,
)
def noise(x: np.ndarray, p: Params) -> np.ndarray:
    kind = p.choice("kind")
    if kind == "speckle":
        return _speckle(x, _speckle_sigma_for(p.strength), p.rng)
    if kind == "poisson":
        return _poisson(x, _poisson_peak_for(p.strength), p.rng)
    return _salt_pepper(x, _salt_pepper_amount_for(p.strength), p.rng)


@register(
    "gnoise",
    "Additive Gaussian noise, sigma in 0..255 units",
    [
        ParamInfo(
            "sigma", float, None, 0.0, 255.0, "std in 0..255 units (auto: U(60..100) or U(2..100), times strength)"
        ),
        ParamInfo(
            "mode",
            str,
            "auto",
            help="pixel: independent per pixel and channel; shared: same for all channels; correlated: "
            "spatially smoothed (auto: pixel when sigma is given, else random like the paper)",
            choices=("auto", "pixel", "shared", "correlated"),
        ),
        strength_param(),
    ],
    group="noise",
    paper_index=5,
)
def gnoise(x: np.ndarray, p: Params) -> np.ndarray:
    if p.given("sigma") and not p.given("mode"):
        mode = p.set("mode", "pixel")
    else:
        mode = p.choice("mode")

    def paper_sigma() -> float:
        low = 60.0 if p.rng.random() < 0.5 else 2.0
        return p.rng.uniform(low, 100.0) * p.strength

    sigma = p.get("sigma", paper_sigma) / 255.0
    h, w = x.shape[:2]
    if mode == "shared":
        n = normal(p.rng, (h, w, 1))
    elif mode == "correlated":
        n = cv2.GaussianBlur(normal(p.rng, (h, w, 3)), (0, 0), 1.5, borderType=cv2.BORDER_REFLECT)
        n /= max(float(n.std()), 1e-6)  # keep the per-pixel std equal to sigma
    else:
        n = normal(p.rng, (h, w, 3))
    return x + np.float32(sigma) * n
