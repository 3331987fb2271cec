"""Training for the forensic detector: one stream per run, LoRA on the frozen base, exported in our format.

``python -m train --config train/configs/tiny.yaml --data DIR --out runs/x`` (see ``python -m train -h``);
``python -m train distill --teacher REF --config distill_small --data DIR --out runs/y`` distils a
teacher's streams into a student of another preset from unlabelled images (see :mod:`train.distill`).
The package sits on top of :mod:`forensic` and uses its image decoding, face crops, stream inputs,
degradation engine, metrics, calibration and weights format, so training and inference
preprocessing are the same code.

The public names are imported lazily: DataLoader workers unpickle :mod:`train.datasets` and must not
pay for importing the model code (timm, open_clip) they never use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "train.config",
    "TrainConfig": "train.config",
    "DistillConfig": "train.config",
    "load_config": "train.config",
    "FitResult": "train.engine",
    "fit": "train.engine",
    "MergeError": "train.export",
    "merge_exports": "train.export",
    "CheckpointError": "train.checkpoint",
    "DataError": "forensic.data",
    "RunFolderError": "train.rundir",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
