"""The locate stage: faces of a batch of images, found together on the model's device."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..config import ModelConfig
from ..faces import FaceDetector, FaceResult, not_searched

__all__ = ["locate"]


def locate(images: Sequence[np.ndarray], config: ModelConfig, detector: Callable[[], FaceDetector]) -> list[FaceResult]:
    """Each image's face analysis (the paper's policy: :mod:`forensic.faces`), in one MTCNN batch.

    ``detector`` gives the face detector; it is not called when no stream looks at faces (nothing
    is searched then, and no detector is loaded).
    """
    if not images:
        return []
    if not any(s.input == "face-crop" for s in config.streams):
        return [not_searched((im.shape[1], im.shape[0])) for im in images]
    return list(detector().analyze_batch(list(images)))
