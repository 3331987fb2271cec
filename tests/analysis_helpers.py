"""Helpers for the analysis tests: planted-artifact image folders and a face detector that finds none."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from forensic.faces import CropRegion, FaceResult
from tests.toy import plant, smooth_texture


def planted_images(n: int, *, seed: int, amplitude: float = 40.0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` 256x256 images, real and fake interleaved: smooth textures, fakes with the checkerboard at ARTIFACT_BOX."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        img = smooth_texture(rng)
        fake = i % 2 == 1
        images.append(plant(img, amplitude=amplitude) if fake else img)
        labels.append(int(fake))
    return images, np.array(labels)


def write_toy_folder(folder: Path, n: int, *, seed: int, amplitude: float = 40.0) -> Path:
    """:func:`planted_images` as PNGs under ``folder/real`` and ``folder/fake``."""
    images, labels = planted_images(n, seed=seed, amplitude=amplitude)
    for sub in ("real", "fake"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(images, labels)):
        cv2.imwrite(str(folder / ("fake" if label else "real") / f"img_{i:03d}.png"), np.ascontiguousarray(img[..., ::-1]))
    return folder


class NoFaces:
    """A face detector for textures: never finds a face (the face stream sees its fallback crop), instantly."""

    def analyze(self, image: np.ndarray) -> FaceResult:
        h, w = image.shape[:2]
        return FaceResult(
            mode="no-face", box=None, region=CropRegion(0.0, 0.0, float(w), float(h)), faces=(), found_by=None,
            reason="No face (test stub).", image_size=(w, h),
        )
