"""The degradation lab: its controls as one :class:`LabSettings` -> a spec string, the degraded preview, PSNR and SSIM.

The lab works on a copy of at most :data:`LAB_MAX_PIXELS` pixels: at full size one preview of a
64-megapixel upload took 5 GB (a float32 copy per operation, PSNR and SSIM in float64), and two run
at once. The preview says at what size it and its numbers were computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from forensic.degrade import DEGRADATION_PRESETS, degrade_result, psnr, ssim
from forensic.images import fit_pixels

__all__ = ["LAB_MAX_PIXELS", "LabSettings", "LabPreview", "NEUTRAL", "preset_choices", "preview", "working_copy"]

#: Largest image the lab degrades and measures (2048 x 2048); bigger uploads are previewed on a
#: copy scaled down to this many pixels (area interpolation), which bounds the server's memory
#: (figures in bench/RESULTS.md).
LAB_MAX_PIXELS = 2048 * 2048


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

    #: the controls' values in the order the page (and the API: ``/degrade``, ``/analyze``, ...) passes them;
    #: these are the API's parameter names
    CONTROLS: ClassVar[tuple[str, ...]] = ("preset", "jpeg_quality", "gblur_sigma", "motion_length", "motion_angle",
                                           "gnoise_sigma", "resize_scale", "compound_strength", "seed")

    @classmethod
    def from_controls(cls, preset, jpeg_quality, gblur_sigma, motion_length, motion_angle, gnoise_sigma, resize_scale,
                      compound_strength, seed) -> LabSettings:
        """The settings from the controls' values as Gradio passes them (:attr:`CONTROLS`' order).

        The seed is kept as given (None: 0; a whole float such as 3.0 as an int): it is checked where
        a handler can say what is wrong in its own way (:func:`forensic.degrade.check_seed`), so a
        fraction such as 1.5 is refused, not rounded (the seed control does not round either).
        """
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)
        return cls(preset=preset or "none", jpeg_quality=int(jpeg_quality), gblur_sigma=float(gblur_sigma),
                   motion_length=int(motion_length), motion_angle=float(motion_angle), gnoise_sigma=float(gnoise_sigma),
                   resize_scale=float(resize_scale), compound=float(compound_strength), seed=0 if seed is None else seed)

    def spec(self) -> str | None:
        """The spec the CLI accepts (``python -m forensic degrade --spec ...``) for these settings, or None."""
        steps: list[str] = []
        if self.preset and self.preset != "none":
            steps.append(self.preset)
        if self.compound > 0:
            steps.append(f"compound:strength={_num(self.compound)}")
        if self.gblur_sigma > 0:
            steps.append(f"gblur:sigma={_num(self.gblur_sigma)}")
        if int(self.motion_length) > 1:
            steps.append(f"motion-blur:length={int(self.motion_length)},angle={_num(self.motion_angle)}")
        if self.gnoise_sigma > 0:
            steps.append(f"gnoise:sigma={_num(self.gnoise_sigma)}")
        if self.resize_scale < 1:
            steps.append(f"resize:scale={_num(self.resize_scale)},interp=area")
        if int(self.jpeg_quality) < 100:
            steps.append(f"jpeg:quality={int(self.jpeg_quality)}")
        return ";".join(steps) or None


NEUTRAL = LabSettings()


def _num(x: float) -> str:
    return f"{float(x):g}"


@dataclass(frozen=True)
class LabPreview:
    """A degraded image and how far it is from the original.

    Attributes:
        image: the degraded image, at ``computed_size``.
        computed_size: (width, height) at which the image, PSNR and SSIM were computed.
        input_size: (width, height) of the image given; larger than ``computed_size`` when the
            lab worked on a scaled-down copy (see :data:`LAB_MAX_PIXELS`).
    """

    image: np.ndarray
    spec: str | None
    seed: int
    psnr: float
    ssim: float
    applied: tuple[dict, ...]
    computed_size: tuple[int, int] = (0, 0)
    input_size: tuple[int, int] = (0, 0)

    @property
    def downscaled(self) -> bool:
        """True when the preview and its numbers come from a scaled-down copy of the input."""
        return self.computed_size != self.input_size

    def to_dict(self) -> dict:
        return {
            "spec": self.spec,
            "seed": self.seed,
            "psnr": None if not np.isfinite(self.psnr) else round(float(self.psnr), 3),
            "ssim": round(float(self.ssim), 5),
            "computed_size": list(self.computed_size),
            "downscaled": self.downscaled,
            "applied": list(self.applied),
        }


def preset_choices() -> list[tuple[str, str]]:
    """(label, value) pairs for the preset dropdown: ``none`` first, then every preset with an effect."""
    choices = [("none (no preset)", "none")]
    for name, spec in DEGRADATION_PRESETS.items():
        if spec:  # aliases of "no degradation" (ffpp-raw, compound-0.0, ...) would only add noise
            choices.append((f"{name}  ({spec})", name))
    return choices


def working_copy(image: np.ndarray, max_pixels: int = LAB_MAX_PIXELS) -> np.ndarray:
    """``image`` itself if it has at most ``max_pixels`` pixels, else a copy scaled down to that (area)."""
    return fit_pixels(image, max_pixels)


def preview(image: np.ndarray, settings: LabSettings, *, input_size: tuple[int, int] | None = None) -> LabPreview:
    """Degrades ``image`` (RGB uint8) as the settings say; the same settings give the same pixels.

    Images over :data:`LAB_MAX_PIXELS` are degraded and measured on a scaled-down copy (the
    preview's ``computed_size`` says so); the spec itself applies to any size. ``input_size``: the
    upload's own (width, height) when ``image`` is already a scaled-down copy of it.

    Raises:
        forensic.degrade.SpecError: an unknown preset (only possible through the API).
        ValueError: a seed outside 0..2**32-1.
    """
    spec = settings.spec()
    work = working_copy(image)
    result = degrade_result(work, spec, seed=settings.seed)
    applied = tuple({"name": op.name, "params": dict(op.params), "stage": op.stage} for op in result.applied)
    identical = spec is None  # nothing to measure: skip two passes over the image
    return LabPreview(
        image=result.image,
        spec=spec,
        seed=int(settings.seed),
        psnr=math.inf if identical else psnr(work, result.image),
        ssim=1.0 if identical else ssim(work, result.image),
        applied=applied,
        computed_size=(int(work.shape[1]), int(work.shape[0])),
        input_size=input_size or (int(image.shape[1]), int(image.shape[0])),
    )
