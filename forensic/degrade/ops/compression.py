"""Compression: the paper's JPEG (op 6) and chroma 4:2:0 (op 7), its JPEG/resize prelude, real H.264 by CRF."""

from __future__ import annotations

import cv2
import numpy as np

from forensic.codecs import H264_CRF_RANGE, h264_roundtrip
from forensic.degrade.ops.geometry import INTERPOLATIONS, resize_to
from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.pixels import as_float, as_uint8
from forensic.degrade.ops.registry import Params, register, strength_param

__all__ = ["chroma_420", "h264", "jpeg", "jpeg_roundtrip", "prelude"]


def jpeg_roundtrip(x: np.ndarray, quality: int) -> np.ndarray:
    """A real JPEG encode/decode (libjpeg through OpenCV, 4:2:0 chroma), so 8x8 blocking is real."""
    bgr = cv2.cvtColor(as_uint8(x), cv2.COLOR_RGB2BGR)  # OpenCV's encoder expects BGR
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - libjpeg refusing a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(dec, cv2.COLOR_BGR2RGB).astype(np.float32) * np.float32(1.0 / 255.0)


@register(
    "jpeg",
    "Real JPEG encode/decode (libjpeg, 4:2:0) at a quality",
    [ParamInfo("quality", int, None, 1, 100, "JPEG quality (auto: uniform 10..95, as the paper)")],
    group="compression",
    paper_index=6,
)
def jpeg(x: np.ndarray, p: Params) -> np.ndarray:
    return jpeg_roundtrip(x, p.get("quality", lambda: p.rng.integers(10, 96)))


@register(
    "prelude",
    "The paper's JPEG/resize prelude: 1-5 cycles alternating JPEG (quality min_quality..95) and a resize "
    "to a fraction of the input size (down to 0.25/strength, random interpolation), starting with either",
    [
        ParamInfo("cycles", int, None, 1, 10, "JPEG + resize cycles (auto: 1..5)"),
        ParamInfo("start", str, "random", help="first step", choices=("random", "jpeg", "resize")),
        ParamInfo("min_quality", int, 10, 1, 95, "lowest JPEG quality drawn (the highest is 95)"),
        strength_param(),
    ],
    group="compression",
)
def prelude(x: np.ndarray, p: Params) -> np.ndarray:
    cycles = p.get("cycles", lambda: p.rng.integers(1, 6))
    jpeg_turn = p.choice("start") == "jpeg"
    min_quality = p.get("min_quality")
    low_scale = min(1.0, 0.25 / max(p.strength, 1e-6))
    h, w = x.shape[:2]
    steps: list[str] = []
    for _ in range(2 * cycles):
        if jpeg_turn:
            quality = int(p.rng.integers(min_quality, 96))
            x = jpeg_roundtrip(x, quality)
            steps.append(f"jpeg:quality={quality}")
        else:
            # relative to the input size, so successive cycles do not shrink the image to nothing
            scale = float(p.rng.uniform(low_scale, 1.0))
            interp = tuple(INTERPOLATIONS)[int(p.rng.integers(len(INTERPOLATIONS)))]
            x = resize_to(x, (max(min(h, 8), round(h * scale)), max(min(w, 8), round(w * scale))), interp)
            steps.append(f"resize:scale={scale:.3g},interp={interp}")
        jpeg_turn = not jpeg_turn
    p.set("steps", tuple(steps))
    return x


@register(
    "h264",
    "Real H.264: libx264 at a CRF (encoder defaults, yuv420p), the image encoded as one intra frame "
    "and decoded (forensic.codecs)",
    [ParamInfo("crf", int, 23, *H264_CRF_RANGE, "constant rate factor (23 = FF++ c23, 40 = c40; 0 lossless)")],
    group="compression",
)
def h264(x: np.ndarray, p: Params) -> np.ndarray:
    return as_float(h264_roundtrip(as_uint8(x), p.get("crf")))


@register(
    "chroma-420",
    "Chroma subsampling 4:2:0: YCrCb with half-resolution chroma",
    [],
    group="compression",
    paper_index=7,
)
def chroma_420(x: np.ndarray, p: Params) -> np.ndarray:
    ycc = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    h, w = x.shape[:2]
    half = (max(1, w // 2), max(1, h // 2))
    small = cv2.resize(np.ascontiguousarray(ycc[..., 1:]), half, interpolation=cv2.INTER_AREA)
    ycc[..., 1:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, 2)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
