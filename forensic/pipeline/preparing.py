"""The prepare stage: what each stream sees of a loaded image (CPU)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ModelConfig
from ..faces import FaceResult
from ..streams import StreamInput, prepare_inputs
from .loading import Loaded

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """A loaded image with its face analysis and each stream's input."""

    loaded: Loaded
    face: FaceResult
    inputs: dict[str, StreamInput]


def prepare(loaded: Loaded, face: FaceResult, config: ModelConfig) -> Prepared:
    """Each stream's input of the loaded image (crops and resizes of :mod:`forensic.streams`)."""
    return Prepared(loaded=loaded, face=face, inputs=prepare_inputs(loaded.image, config.streams, face=face))
