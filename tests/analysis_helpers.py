"""Helpers for the analysis tests: planted-artifact image folders and a face detector that finds none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forensic.faces import CropRegion, FaceResult
from tests import toy
from tests.toy import toy_set


def planted_images(n: int, *, seed: int, amplitude: float = 40.0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` 256x256 images, real and fake interleaved, fakes with the checkerboard at ARTIFACT_BOX."""
    return toy_set(n, seed=seed, amplitude=amplitude)


def write_toy_folder(folder: Path, n: int, *, seed: int, amplitude: float = 40.0) -> Path:
    """:func:`planted_images` as PNGs under ``folder/real`` and ``folder/fake``."""
    return toy.write_toy_folder(folder, n, seed=seed, amplitude=amplitude)


class NoFaces:
    """A face detector for textures: never finds a face (the face stream sees its fallback crop), instantly."""

    def analyze(self, image: np.ndarray) -> FaceResult:
        h, w = image.shape[:2]
        return FaceResult(
            mode="no-face", box=None, region=CropRegion(0.0, 0.0, float(w), float(h)), faces=(), found_by=None,
            reason="No face (test stub).", image_size=(w, h),
        )

    def analyze_batch(self, images: list[np.ndarray]) -> list[FaceResult]:
        return [self.analyze(image) for image in images]
