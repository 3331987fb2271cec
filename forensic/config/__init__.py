"""The model configuration that travels with the weights (``config.json``).

A :class:`ModelConfig` says everything needed to rebuild a detector: which base backbones (and
where their weights come from, at which revision), the LoRA settings, each stream's
preprocessing and head, the calibration temperatures and the vote. Presets
(:mod:`forensic.presets`) are just named ``ModelConfig`` values.

A ``config.json`` comes from outside (a folder, a Hub repo), so :meth:`ModelConfig.from_dict`
checks all of it before anything is built: types, ranges, known base architectures and their
sizes, paths that stay inside the weights folder. A bad field is one :class:`ConfigError` naming it.

Modules: :mod:`~forensic.config.specs` (the parts: backbones, heads, streams, vote),
:mod:`~forensic.config.model_config` (:class:`ModelConfig` and the check of a whole file),
:mod:`~forensic.config.checks` (the parts' checks and bounds) and :mod:`~forensic.config.fields`
(:class:`ConfigError` and the typed checks of one field).
"""

from .checks import BASE_ARCHS, MAX_BASE_PARAMS
from .fields import ConfigError
from .model_config import FORMAT_VERSION, MAX_CONFIG_BYTES, ModelConfig, check_config_dict
from .specs import IMAGENET_MEAN, IMAGENET_STD, PRESET_NAMES, STREAM_NAMES, BackboneSpec, HeadConfig, StreamConfig, VoteConfig

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PRESET_NAMES",
    "STREAM_NAMES",
    "FORMAT_VERSION",
    "MAX_CONFIG_BYTES",
    "BASE_ARCHS",
    "MAX_BASE_PARAMS",
    "ConfigError",
    "check_config_dict",
    "BackboneSpec",
    "HeadConfig",
    "StreamConfig",
    "VoteConfig",
    "ModelConfig",
]
