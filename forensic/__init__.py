"""Robust deepfake forensics: a three-stream DINOv2/CLIP detector with explanations.

The public API is imported lazily so that ``import forensic`` stays cheap (the degradation lab
and image decoding do not need torch to be imported).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "ImageError": "forensic.images",
    "load_image": "forensic.images",
    "decode_image": "forensic.images",
    "degrade": "forensic.degrade",
    "FaceDetector": "forensic.faces",
    "FaceResult": "forensic.faces",
    "Detector": "forensic.pipeline",
    "Report": "forensic.report",
    "PRESETS": "forensic.presets",
    "get_preset": "forensic.presets",
    "WeightsUnavailable": "forensic.weights",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forensic' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
