"""A planted-artifact toy data set, a few-step stream trainer and a face detector that finds none.

Real images are smooth random textures; fakes are the same textures with a high-frequency
checkerboard planted in a known box. A model that learns the task must look at the box, which
makes explanations checkable (the "sanity checks for saliency maps" idea). The tests and the
benchmarks in ``bench/`` build their models and data sets with these; nothing here is used at
inference.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

# the model-side helpers import the library lazily: the data generators need only NumPy and OpenCV,
# while forensic.streams loads the backbones and forensic.faces the MTCNN detector
if TYPE_CHECKING:
    from forensic.faces import FaceResult
    from forensic.model import ForensicModel

__all__ = [
    "ARTIFACT_BOX",
    "NoFaceDetector",
    "plant",
    "smooth_texture",
    "toy_set",
    "train_stream",
    "write_toy_folder",
    "write_unlabelled_folder",
]

#: where the artifact is planted, in image pixels (x0, y0, x1, y1) of a 256x256 image
ARTIFACT_BOX = (30, 30, 100, 100)

Box = tuple[int, int, int, int]


def smooth_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A ``size`` x ``size`` RGB uint8 texture: a bicubic upsampling of 6x6 random colours plus faint noise."""
    low = rng.uniform(40, 215, (6, 6, 3)).astype(np.float32)
    img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def plant(img: np.ndarray, *, amplitude: float = 40.0, box: Box = ARTIFACT_BOX) -> np.ndarray:
    """Adds a +-``amplitude`` one-pixel checkerboard inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    out = img.astype(np.float32)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    out[y0:y1, x0:x1] += (amplitude * np.where((yy + xx) % 2 == 0, 1.0, -1.0))[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def toy_set(
    n: int, *, seed: int = 0, amplitude: float = 40.0, box: Box = ARTIFACT_BOX
) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` 256x256 images, half real (label 0) and half fake (label 1), interleaved."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        base = smooth_texture(rng)
        fake = i % 2 == 1
        images.append(plant(base, amplitude=amplitude, box=box) if fake else base)
        labels.append(int(fake))
    return images, np.array(labels)


def _write_png(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))  # RGB -> OpenCV's BGR


def write_toy_folder(
    folder: str | os.PathLike, n: int = 64, *, seed: int = 0, amplitude: float = 40.0, box: Box = ARTIFACT_BOX
) -> Path:
    """:func:`toy_set` as lossless PNGs under ``folder/real`` and ``folder/fake``; returns the folder."""
    folder = Path(folder)
    images, labels = toy_set(n, seed=seed, amplitude=amplitude, box=box)
    for sub in ("real", "fake"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(images, labels)):
        _write_png(folder / ("fake" if label else "real") / f"img_{i:03d}.png", img)
    return folder


def write_unlabelled_folder(
    folder: str | os.PathLike, n: int = 32, *, seed: int = 0, amplitude: float = 40.0, box: Box = ARTIFACT_BOX
) -> tuple[Path, dict[str, int]]:
    """:func:`toy_set` as PNGs in one flat folder (no real/ or fake/): ``(folder, {file name: label})``.

    For distillation, whose data needs no labels; the returned labels are the truth for reporting.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = toy_set(n, seed=seed, amplitude=amplitude, box=box)
    truth = {}
    for i, (img, label) in enumerate(zip(images, labels)):
        name = f"photo_{i:03d}.png"
        _write_png(folder / name, img)
        truth[name] = int(label)
    return folder, truth


def train_stream(
    model: ForensicModel,
    stream: str,
    images: list[np.ndarray],
    labels: np.ndarray,
    *,
    steps: int = 80,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[float]:
    """Trains the stream's adapter and head (base frozen) with cross-entropy; returns the losses.

    Batches of 16 drawn at random (seeded) from all images; the model is left in eval mode.
    """
    from forensic.streams import prepare_input, to_tensor

    cfg = model.config.stream(stream)
    x_all = to_tensor([prepare_input(im, cfg).pixels for im in images], cfg)
    y_all = torch.as_tensor(labels)
    params = list(model.adapters[stream].parameters()) + list(model.heads[stream].parameters())
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(y_all), generator=gen)[:16]
        loss = torch.nn.functional.cross_entropy(model(x_all[idx], stream), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


class NoFaceDetector:
    """A stand-in face detector for textures: never finds a face, instantly.

    The face stream then sees its whole-image fallback crop. For toy models and tests only; real
    images need :class:`forensic.faces.FaceDetector`.
    """

    def analyze(self, image: np.ndarray) -> FaceResult:
        from forensic.faces import CropRegion, FaceResult

        h, w = image.shape[:2]
        return FaceResult(
            mode="no-face", box=None, region=CropRegion(0.0, 0.0, float(w), float(h)), faces=(), found_by=None,
            reason="No face (test stub).", image_size=(w, h),
        )

    def analyze_batch(self, images: list[np.ndarray]) -> list[FaceResult]:
        return [self.analyze(image) for image in images]
