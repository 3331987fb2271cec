"""Robust deepfake forensics: a three-stream DINOv2/CLIP detector with explanations.

The public API is imported lazily so that ``import forensic`` stays cheap (the degradation lab
and image decoding do not need torch to be imported).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute" that defines it
_EXPORTS = {
    "ImageError": "forensic.images",
    "load_image": "forensic.images",
    "decode_image": "forensic.images",
    # ``forensic.degrade`` is the subpackage; its main function is exported as degrade_image
    "degrade_image": "forensic.degrade:degrade",
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
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'forensic' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr or name)


def __dir__() -> list[str]:
    return __all__
