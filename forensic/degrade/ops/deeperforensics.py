"""The DeeperForensics-1.0 distortions at levels 1-5 (Jiang et al., CVPR 2020), to the grey level.

Written from the reference's ``perturbation/distortions.py`` and the level tables of
``add_distortion_to_video.py``. How closely each ``df-<type>`` reproduces it (measured on five
scikit-image photos at all five levels; the tests check the formulas on hand-made images):

- saturation, contrast, blur, pixelation: the same bytes (one pixel in 786,432 of the astronaut
  differs by one grey level at saturation level 1, float32 rounding in the colour conversion);
- noise: the same distribution (studio-range YCbCr, truncated to 8 bits), other random samples;
- block-wise: the same rule (``min(H, W) // 256 * N`` blocks, none under 256 px, positions in
  0..side-9), other random positions;
- compression: libx264 at the level's CRF through :mod:`forensic.codecs`, one intra frame where
  the reference re-encodes the whole clip (``ffmpeg -i in -crf N out``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import cv2
import numpy as np

from forensic.codecs import h264_roundtrip
from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.pixels import as_float, as_uint8, normal
from forensic.degrade.ops.registry import Params, register

__all__ = [
    "DF_LEVELS",
    "DF_TYPES",
    "df_block",
    "df_blur",
    "df_compress",
    "df_contrast",
    "df_noise",
    "df_pixelate",
    "df_saturation",
]


DF_LEVELS: Mapping[str, tuple[float, ...]] = MappingProxyType(
    {
        "saturation": (0.4, 0.3, 0.2, 0.1, 0.0),  # chroma factor in YCbCr
        "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),  # pixel value factor
        "block": (16, 32, 48, 64, 80),  # grey 8x8 blocks per whole 256 px of the short side
        "noise": (0.001, 0.002, 0.005, 0.01, 0.05),  # Gaussian variance in studio-range YCbCr, [0, 1] units
        "blur": (7, 9, 13, 17, 21),  # Gaussian kernel size, sigma = size / 6
        "pixelate": (2, 3, 4, 5, 6),  # down/up-scale factor (what DF-1.0 calls "JPEG")
        "compress": (30, 32, 35, 38, 40),  # libx264 CRF
    }
)
"""The value of each DeeperForensics-1.0 distortion type at levels 1..5 (operation ``df-<type>``)."""

DF_TYPES: tuple[str, ...] = tuple(DF_LEVELS)
"""The DeeperForensics-1.0 distortion types, in the paper's order (presets ``df-<type>-<level>``)."""


def _df_level() -> ParamInfo:
    return ParamInfo("level", int, 3, 1, 5, "DeeperForensics-1.0 level (1 mild .. 5 severe)")


def _df_value(kind: str, p: Params) -> float:
    return DF_LEVELS[kind][p.get("level") - 1]


_DF = "deeperforensics"


# The reference (``perturbation/distortions.py``) works on uint8 BGR frames: the input is put on the
# 8-bit grid first. Its colour space is OpenCV's YCrCb of float pixels in 0..255 (chroma centred on
# 0.5, not 128), moved to studio range: Y' = (219 Y + 16) / 255, C' = (224 C + 16) / 255.
# The operations below follow its order of float32 operations, so that truncation lands alike.
_Y_RANGE, _C_RANGE = np.float32(235 - 16), np.float32(240 - 16)
_F16, _F255 = np.float32(16.0), np.float32(255.0)


def _grey_levels(x: np.ndarray) -> np.ndarray:
    """float [0, 1] -> float32 0..255 on the 8-bit grid (the uint8 frame the reference reads)."""
    return np.rint(np.clip(x, 0.0, 1.0) * _F255).astype(np.float32)


def _truncated(v: np.ndarray) -> np.ndarray:
    """The reference's ``astype(np.uint8)`` of values in 0..255 (truncation, not rounding), as [0, 1]."""
    return np.floor(np.clip(v, 0.0, 255.0)).astype(np.float32) * np.float32(1.0 / 255.0)


def _studio_ycc(v: np.ndarray) -> np.ndarray:
    """RGB 0..255 -> (Y', Cr', Cb'): OpenCV's float YCrCb moved to studio range (Y' about 0..219)."""
    ycc = cv2.cvtColor(v, cv2.COLOR_RGB2YCrCb)
    ycc[..., 0] = (ycc[..., 0] * _Y_RANGE + _F16) / _F255
    ycc[..., 1:] = (ycc[..., 1:] * _C_RANGE + _F16) / _F255
    return ycc


def _from_studio_ycc(ycc: np.ndarray) -> np.ndarray:
    ycc = ycc.astype(np.float32)
    ycc[..., 0] = (ycc[..., 0] * _F255 - _F16) / _Y_RANGE
    ycc[..., 1:] = (ycc[..., 1:] * _F255 - _F16) / _C_RANGE
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


@register(
    "df-saturation",
    "DF-1.0 colour saturation change: chroma scaled by 0.4..0.0 in studio-range YCbCr, truncated to 8 bits",
    [_df_level()],
    group=_DF,
)
def df_saturation(x: np.ndarray, p: Params) -> np.ndarray:
    ycc = _studio_ycc(_grey_levels(x))
    factor = np.float32(_df_value("saturation", p))
    ycc[..., 1:] = np.float32(0.5) + (ycc[..., 1:] - np.float32(0.5)) * factor  # 0.5, as the reference
    return _truncated(_from_studio_ycc(ycc))


@register(
    "df-contrast",
    "DF-1.0 colour contrast change: pixels scaled by 0.85..0.35, truncated to 8 bits",
    [_df_level()],
    group=_DF,
)
def df_contrast(x: np.ndarray, p: Params) -> np.ndarray:
    return _truncated(_grey_levels(x) * np.float32(_df_value("contrast", p)))


_BLOCK = 8


@register(
    "df-block",
    "DF-1.0 local block-wise distortion: min(H, W) // 256 * (16..80) grey 8x8 blocks, "
    "so none on an image under 256 px (as the reference)",
    [_df_level()],
    group=_DF,
)
def df_block(x: np.ndarray, p: Params) -> np.ndarray:
    h, w = x.shape[:2]
    count = min(h, w) // 256 * int(_df_value("block", p))
    out = x.copy()
    if count == 0:
        return out
    # the reference's random.randint(0, side - 1 - 8) includes its upper end
    ys = p.rng.integers(0, h - _BLOCK, size=count)
    xs = p.rng.integers(0, w - _BLOCK, size=count)
    for y, x0 in zip(ys, xs):
        out[y : y + _BLOCK, x0 : x0 + _BLOCK] = np.float32(128.0 / 255.0)
    return out


@register(
    "df-noise",
    "DF-1.0 colour Gaussian noise: variance 0.001..0.05 added in studio-range YCbCr, truncated to 8 bits",
    [_df_level()],
    group=_DF,
)
def df_noise(x: np.ndarray, p: Params) -> np.ndarray:
    # the reference adds sqrt(v) * N(0, 1) to Y'/255 and C'/255, i.e. sqrt(v) * 255 in Y' and C'
    # units, which is sqrt(v) * 255 * 255/219 grey levels on Y and sqrt(v) * 255 * 255/224 on chroma
    ycc = _studio_ycc(_grey_levels(x))
    ycc += np.float32(math.sqrt(_df_value("noise", p)) * 255.0) * normal(p.rng, ycc.shape)
    return _truncated(_from_studio_ycc(ycc))


@register(
    "df-blur",
    "DF-1.0 Gaussian blur: kernel 7..21, sigma = kernel/6, on the 8-bit frame (OpenCV's uint8 path)",
    [_df_level()],
    group=_DF,
)
def df_blur(x: np.ndarray, p: Params) -> np.ndarray:
    k = int(_df_value("blur", p))
    return as_float(cv2.GaussianBlur(as_uint8(x), (k, k), k / 6.0))


@register(
    "df-pixelate",
    "DF-1.0 pixelation (their 'JPEG' type): bilinear down by 2..6 and back up, on the 8-bit frame",
    [_df_level()],
    group=_DF,
)
def df_pixelate(x: np.ndarray, p: Params) -> np.ndarray:
    factor = int(_df_value("pixelate", p))
    h, w = x.shape[:2]
    # the reference's h // factor is 0 (an OpenCV error) under factor pixels; we keep one pixel
    small = cv2.resize(as_uint8(x), (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_LINEAR)
    return as_float(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


@register(
    "df-compress",
    "DF-1.0 video compression: libx264 at CRF 30..40, one intra frame (see h264)",
    [_df_level()],
    group=_DF,
)
def df_compress(x: np.ndarray, p: Params) -> np.ndarray:
    crf = p.set("crf", int(_df_value("compress", p)))
    return as_float(h264_roundtrip(as_uint8(x), crf))
