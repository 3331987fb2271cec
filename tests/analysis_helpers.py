"""Helpers for the analysis tests: planted-artifact image folders and a face detector that finds none.

The generators and the detector live in :mod:`forensic.toy` (``bench/`` uses them too); these
names keep the analysis tests' spelling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forensic import toy
from forensic.toy import NoFaceDetector as NoFaces

__all__ = ["NoFaces", "planted_images", "write_toy_folder"]


def planted_images(n: int, *, seed: int, amplitude: float = 40.0) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` 256x256 images, real and fake interleaved, fakes with the checkerboard at ARTIFACT_BOX."""
    return toy.toy_set(n, seed=seed, amplitude=amplitude)


def write_toy_folder(folder: Path, n: int, *, seed: int, amplitude: float = 40.0) -> Path:
    """:func:`planted_images` as PNGs under ``folder/real`` and ``folder/fake``."""
    return toy.write_toy_folder(folder, n, seed=seed, amplitude=amplitude)
