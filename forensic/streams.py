"""The three streams' inputs: what each stream sees of an image, and where in the image that is.

- ``texture``: the native-resolution ``size`` x ``size`` centre crop, pure slicing with no
  resampling (the authors' "zero interpolation" policy, which keeps high-frequency artifacts). An
  image with a side under ``size`` is first upscaled with cubic interpolation (the authors' loader
  refused such images).
- ``face``: the face region from :mod:`forensic.faces` resized to ``face_size`` with area
  interpolation, then the ``size`` centre crop. When there is no usable face (none found, or under
  1/9 of the image), the stream sees what the texture stream sees, as in the authors' code, and
  the input says so.
- ``fusion``: the whole image resized to ``size`` x ``size`` (aspect not kept; area interpolation
  to shrink, cubic to enlarge).

Each :class:`StreamInput` carries the :class:`~forensic.faces.CropRegion` it came from, so a map
computed on the input (Score-CAM, attention) can be pasted back into image coordinates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from .config import StreamConfig
from .faces import CropRegion, FaceResult

__all__ = ["StreamInput", "prepare_input", "prepare_inputs", "to_tensor", "center_crop", "resize_whole"]

InputKind = Literal["center-crop", "face-crop", "face-fallback", "whole-image"]


@dataclass(frozen=True)
class StreamInput:
    """One stream's view of one image.

    Attributes:
        stream: the stream name.
        pixels: the ``size`` x ``size`` RGB uint8 image the backbone sees.
        region: the rectangle of the original image those pixels cover (may leave the image
            for face crops, where the outside is zero padding).
        kind: ``center-crop``, ``face-crop``, ``face-fallback`` (face stream without a usable
            face: it sees the texture crop) or ``whole-image``.
        note: a sentence for the user, or None.
    """

    stream: str
    pixels: np.ndarray
    region: CropRegion
    kind: InputKind
    note: str | None = None

    @property
    def size(self) -> int:
        return int(self.pixels.shape[0])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "region": self.region.to_dict(), "size": self.size, "note": self.note}


def center_crop(image: np.ndarray, size: int) -> tuple[np.ndarray, CropRegion, str | None]:
    """The native-resolution centre crop (upscaling first, cubic, only if a side is under ``size``)."""
    h, w = image.shape[:2]
    scale = 1.0
    note = None
    if min(h, w) < size:
        scale = size / min(h, w)
        new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)
        note = f"The image is smaller than {size} px, so it was upscaled (cubic) before the centre crop."
        sx, sy = new_w / w, new_h / h
    else:
        sx = sy = scale
    hh, ww = image.shape[:2]
    top, left = (hh - size) // 2, (ww - size) // 2
    pixels = np.ascontiguousarray(image[top : top + size, left : left + size])
    region = CropRegion(left / sx, top / sy, (left + size) / sx, (top + size) / sy)
    return pixels, region, note


def resize_whole(image: np.ndarray, size: int) -> tuple[np.ndarray, CropRegion]:
    """The whole image resized to ``size`` x ``size``: area interpolation to shrink, cubic to enlarge."""
    h, w = image.shape[:2]
    flag = cv2.INTER_AREA if h * w >= size * size else cv2.INTER_CUBIC
    pixels = cv2.resize(image, (size, size), interpolation=flag)
    return pixels, CropRegion(0.0, 0.0, float(w), float(h))


def _face_crop(image: np.ndarray, stream: StreamConfig, face: FaceResult) -> tuple[np.ndarray, CropRegion]:
    big = stream.face_size or stream.size
    crop = face.region.extract(image, size=big, interpolation="area")
    off = (big - stream.size) // 2
    pixels = np.ascontiguousarray(crop[off : off + stream.size, off : off + stream.size])
    r = face.region
    sx, sy = r.width / big, r.height / big
    region = CropRegion(r.x0 + off * sx, r.y0 + off * sy, r.x0 + (off + stream.size) * sx, r.y0 + (off + stream.size) * sy)
    return pixels, region


def prepare_input(image: np.ndarray, stream: StreamConfig, *, face: FaceResult | None = None) -> StreamInput:
    """What ``stream`` sees of ``image`` (RGB uint8) given the face analysis (face stream only)."""
    if stream.input == "center-crop":
        pixels, region, note = center_crop(image, stream.size)
        return StreamInput(stream.name, pixels, region, "center-crop", note)
    if stream.input == "resize":
        pixels, region = resize_whole(image, stream.size)
        return StreamInput(stream.name, pixels, region, "whole-image")
    if stream.input == "face-crop":
        if face is None:
            raise ValueError("the face stream needs the face analysis (FaceResult)")
        if face.mode == "crop":
            pixels, region = _face_crop(image, stream, face)
            return StreamInput(stream.name, pixels, region, "face-crop")
        pixels, region, note = center_crop(image, stream.size)
        text = f"{face.reason} Like the authors' loader it then takes the whole image's native-resolution centre crop, the texture stream's region."
        return StreamInput(stream.name, pixels, region, "face-fallback", " ".join(t for t in (text, note) if t))
    raise ValueError(f"unknown stream input {stream.input!r}")


def prepare_inputs(image: np.ndarray, streams: Sequence[StreamConfig], *, face: FaceResult | None) -> dict[str, StreamInput]:
    return {s.name: prepare_input(image, s, face=face) for s in streams}


def to_tensor(
    pixels: np.ndarray | Sequence[np.ndarray],
    stream: StreamConfig,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Normalised (B, 3, S, S) tensor from one or several RGB uint8 inputs, with the stream's mean/std.

    The uint8 batch goes to a GPU from pinned memory without blocking the host; the
    normalisation runs on the device.
    """
    batch = torch.from_numpy(np.stack([pixels] if isinstance(pixels, np.ndarray) and pixels.ndim == 3 else list(pixels)))
    device = torch.device(device)
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    x = batch.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    mean, std = _normalisation(tuple(stream.mean), tuple(stream.std), str(device))
    return ((x - mean) / std).to(dtype).contiguous()


@functools.lru_cache(maxsize=32)
def _normalisation(mean: tuple[float, ...], std: tuple[float, ...], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as (1, 3, 1, 1) tensors on ``device``, made once (no copy per batch)."""
    return (
        torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1),
        torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1),
    )
