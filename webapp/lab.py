"""The degradation lab: slider values -> a spec string, the degraded preview, PSNR and SSIM."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from forensic.degrade import PRESETS, degrade_result, psnr

__all__ = ["LabSettings", "LabPreview", "NEUTRAL", "preset_choices", "build_spec", "preview", "ssim"]


@dataclass(frozen=True)
class LabSettings:
    """What the lab's controls say. An op at its neutral value is left out of the spec.

    Attributes:
        preset: a named preset (``ffpp-c40``, ``df-blur-3``, ...) or ``none``; applied first.
        compound: strength of the paper's compound engine (0 = off); applied after the preset.
        gblur_sigma: Gaussian blur std in px (0 = off).
        motion_length: motion-blur kernel length in px (1 = off) and ``motion_angle`` in degrees.
        gnoise_sigma: Gaussian noise std in 0..255 units (0 = off).
        resize_scale: down-and-back-up factor (1 = off), area interpolation.
        jpeg_quality: JPEG quality (100 = off); applied last, as a camera or an upload site would.
        seed: seed of everything random in the spec (compound draws, noise, unset angles).
    """

    preset: str = "none"
    compound: float = 0.0
    gblur_sigma: float = 0.0
    motion_length: int = 1
    motion_angle: float = 0.0
    gnoise_sigma: float = 0.0
    resize_scale: float = 1.0
    jpeg_quality: int = 100
    seed: int = 0


NEUTRAL = LabSettings()


@dataclass(frozen=True)
class LabPreview:
    """A degraded image and how far it is from the original."""

    image: np.ndarray
    spec: str | None
    seed: int
    psnr: float
    ssim: float
    applied: tuple[dict, ...]

    def to_dict(self) -> dict:
        return {
            "spec": self.spec,
            "seed": self.seed,
            "psnr": None if not np.isfinite(self.psnr) else round(float(self.psnr), 3),
            "ssim": round(float(self.ssim), 5),
            "applied": list(self.applied),
        }


def preset_choices() -> list[tuple[str, str]]:
    """(label, value) pairs for the preset dropdown: ``none`` first, then every preset with an effect."""
    choices = [("none (no preset)", "none")]
    for name, spec in PRESETS.items():
        if spec:  # aliases of "no degradation" (ffpp-raw, compound-0.0, ...) would only add noise
            choices.append((f"{name}  ({spec})", name))
    return choices


def _num(x: float) -> str:
    return f"{float(x):g}"


def build_spec(s: LabSettings) -> str | None:
    """The spec the CLI accepts (``python -m forensic degrade --spec ...``) for these settings, or None."""
    steps: list[str] = []
    if s.preset and s.preset != "none":
        steps.append(s.preset)
    if s.compound > 0:
        steps.append(f"compound:strength={_num(s.compound)}")
    if s.gblur_sigma > 0:
        steps.append(f"gblur:sigma={_num(s.gblur_sigma)}")
    if int(s.motion_length) > 1:
        steps.append(f"motion-blur:length={int(s.motion_length)},angle={_num(s.motion_angle)}")
    if s.gnoise_sigma > 0:
        steps.append(f"gnoise:sigma={_num(s.gnoise_sigma)}")
    if s.resize_scale < 1:
        steps.append(f"resize:scale={_num(s.resize_scale)},interp=area")
    if int(s.jpeg_quality) < 100:
        steps.append(f"jpeg:quality={int(s.jpeg_quality)}")
    return ";".join(steps) or None


def preview(image: np.ndarray, settings: LabSettings) -> LabPreview:
    """Degrades ``image`` (RGB uint8) as the settings say; the same settings give the same pixels.

    Raises:
        forensic.degrade.SpecError: an unknown preset (only possible through the API).
    """
    spec = build_spec(settings)
    result = degrade_result(image, spec, seed=int(settings.seed))
    applied = tuple({"name": op.name, "params": dict(op.params), "stage": op.stage} for op in result.applied)
    return LabPreview(image=result.image, spec=spec, seed=int(settings.seed), psnr=psnr(image, result.image), ssim=ssim(image, result.image), applied=applied)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004) of two RGB uint8 images, on their BT.601 luma.

    Gaussian window (sigma 1.5, 11x11), K1 = 0.01, K2 = 0.03, data range 255, population
    covariances, and the 5-pixel border left out of the mean: the settings of scikit-image's
    ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``. scikit-image is
    only a test dependency, so this is written out here (and tested against it).
    """
    if a.shape != b.shape:
        raise ValueError(f"ssim needs images of the same shape, got {a.shape} and {b.shape}")
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = 5
    inner = smap[pad:-pad, pad:-pad] if min(smap.shape) > 2 * pad else smap
    return float(inner.mean())
