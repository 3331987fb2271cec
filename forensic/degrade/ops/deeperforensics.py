"""The DeeperForensics-1.0 distortions at levels 1-5 (Jiang et al., CVPR 2020)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import cv2
import numpy as np

from forensic.degrade.ops.compression import crf_to_jpeg_quality, jpeg_roundtrip
from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.pixels import normal
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
        "block": (16, 32, 48, 64, 80),  # grey 8x8 blocks per 256 px of the short side
        "noise": (0.001, 0.002, 0.005, 0.01, 0.05),  # Gaussian variance in YCbCr, [0, 1] units
        "blur": (7, 9, 13, 17, 21),  # Gaussian kernel size, sigma = size / 6
        "pixelate": (2, 3, 4, 5, 6),  # down/up-scale factor (what DF-1.0 calls "JPEG")
        "compress": (30, 32, 35, 38, 40),  # H.264 CRF (approximated here, see h264-approx)
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


@register("df-saturation", "DF-1.0 colour saturation change: chroma scaled by 0.4..0.0", [_df_level()], group=_DF)
def df_saturation(x: np.ndarray, p: Params) -> np.ndarray:
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    ycc[..., 1:] = 0.5 + (ycc[..., 1:] - 0.5) * np.float32(_df_value("saturation", p))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


@register("df-contrast", "DF-1.0 colour contrast change: pixels scaled by 0.85..0.35", [_df_level()], group=_DF)
def df_contrast(x: np.ndarray, p: Params) -> np.ndarray:
    return x * np.float32(_df_value("contrast", p))


@register(
    "df-block",
    "DF-1.0 local block-wise distortion: 16..80 grey 8x8 blocks (per 256 px of the short side)",
    [_df_level()],
    group=_DF,
)
def df_block(x: np.ndarray, p: Params) -> np.ndarray:
    h, w = x.shape[:2]
    count = int(_df_value("block", p)) * max(1, min(h, w) // 256)
    side = min(8, h, w)
    ys = p.rng.integers(0, h - side + 1, size=count)
    xs = p.rng.integers(0, w - side + 1, size=count)
    out = x.copy()
    for y, x0 in zip(ys, xs):
        out[y : y + side, x0 : x0 + side] = 128.0 / 255.0
    return out


@register(
    "df-noise",
    "DF-1.0 colour Gaussian noise: variance 0.001..0.05 added in YCbCr",
    [_df_level()],
    group=_DF,
)
def df_noise(x: np.ndarray, p: Params) -> np.ndarray:
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    ycc += np.float32(math.sqrt(_df_value("noise", p))) * normal(p.rng, ycc.shape)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


@register("df-blur", "DF-1.0 Gaussian blur: kernel 7..21, sigma = kernel/6", [_df_level()], group=_DF)
def df_blur(x: np.ndarray, p: Params) -> np.ndarray:
    k = int(_df_value("blur", p))
    return cv2.GaussianBlur(x, (k, k), k / 6.0)


@register(
    "df-pixelate",
    "DF-1.0 pixelation (their 'JPEG' type): bilinear down by 2..6 and back up",
    [_df_level()],
    group=_DF,
)
def df_pixelate(x: np.ndarray, p: Params) -> np.ndarray:
    factor = int(_df_value("pixelate", p))
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@register(
    "df-compress",
    "DF-1.0 video compression at CRF 30..40, approximated by JPEG (see h264-approx)",
    [_df_level()],
    group=_DF,
)
def df_compress(x: np.ndarray, p: Params) -> np.ndarray:
    crf = p.set("crf", int(_df_value("compress", p)))
    return jpeg_roundtrip(x, p.set("jpeg_quality", crf_to_jpeg_quality(crf)))
