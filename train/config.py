"""The training configuration: typed, frozen dataclasses read from YAML, with ``key=value`` overrides.

A run is described by one :class:`TrainConfig` (see ``train/configs/*.yaml``). Every section is a
dataclass, so a typo in a YAML file or an override fails at start-up with a message listing the
valid keys, instead of being silently ignored halfway through a GPU run.

Overrides use dotted keys and YAML values: ``optim.lr=1e-4 epochs=3 eval.degradations=[jpeg-q40]``.
The strict reading of plain data into the dataclasses is :mod:`train.typed_config`'s; the sections,
their ranges and where config files are found are here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .typed_config import ConfigError, build, dotted_keys, parse_items, plain, set_dotted

__all__ = [
    "ConfigError",
    "ModelSection",
    "InitSection",
    "DataSection",
    "AugmentSection",
    "OptimSection",
    "LossSection",
    "EvalSection",
    "ExportSection",
    "DistillSection",
    "TrainConfig",
    "DistillConfig",
    "load_config",
    "parse_overrides",
    "valid_keys",
    "CONFIG_DIR",
]

#: the YAML configs shipped with the package
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class ModelSection:
    """What is trained.

    Attributes:
        preset: the architecture preset (``paper``, ``small``, ``tiny-random``).
        stream: the one stream this run trains (each run trains one stream; merge them afterwards).
        trainable: ``all`` (LoRA adapter and head), ``head`` (fusion phase 1) or ``adapter``.
        random_bases: replace the preset's Hub bases by seeded random ones (smoke tests and
            timing of the ``small``/``paper`` code path offline; the result is not a useful detector).
    """

    preset: str = "tiny-random"
    stream: Literal["texture", "face", "fusion"] = "texture"
    trainable: Literal["all", "head", "adapter"] = "all"
    random_bases: bool = False


@dataclass(frozen=True)
class InitSection:
    """Initialise the stream from an earlier export (fusion phase 2 from phase 1, for example).

    Attributes:
        from_dir: a weights folder written by this trainer (``OUT/export``) or ``hf-hub:owner/repo``.
        stream: the stream of that folder to copy from (default: the stream being trained).
        parts: what to copy: the LoRA ``adapter`` and/or the ``head`` (shapes must match).
    """

    from_dir: str | None = None
    stream: str | None = None
    parts: tuple[Literal["adapter", "head"], ...] = ("adapter", "head")


@dataclass(frozen=True)
class DataSection:
    """Where the images come from and how they are batched.

    Attributes:
        path: a folder with ``real/`` and ``fake/`` (searched recursively) or a CSV manifest
            ``path,label[,split]``; usually given with ``--data``.
        val_fraction: share of each class held out for validation when the manifest has no split.
        pseudo_fakes: every real image also yields a self-blended pseudo-fake (label fake).
        batch_size: images per step and per process.
        eval_batch_size: images per validation batch (default: ``batch_size``).
        num_workers: DataLoader worker processes per training process.
        face_cache: JSON file caching face detections (default ``OUT/face_cache.json``).
        face_device: device of the MTCNN face detector (``auto``: the training device).
        strict: refuse to train when a file cannot be decoded (default: such files are listed in
            the log and left out).
    """

    path: str | None = None
    val_fraction: float = 0.2
    pseudo_fakes: bool = False
    batch_size: int = 32
    eval_batch_size: int | None = None
    num_workers: int = 0
    face_cache: str | None = None
    face_device: str = "auto"
    strict: bool = False


@dataclass(frozen=True)
class AugmentSection:
    """The paper's compound degradation on training images (validation images stay clean).

    Attributes:
        global_p: probability that a training image is degraded at all (the paper: 0.5).
        strength: the engine's overall strength (1.0 with the defaults below = the paper's setting).
        op_p: probability of each of the 15 operations (the paper: 0.3).
        strength_cap: per-operation strengths drawn from Beta(1.2, 1.2) are capped here (0.8).
    """

    global_p: float = 0.5
    strength: float = 1.0
    op_p: float = 0.3
    strength_cap: float = 0.8


@dataclass(frozen=True)
class OptimSection:
    """Optimiser and schedule: Adam(W), linear warm-up then cosine decay, per optimiser step.

    Attributes:
        name: ``adam`` or ``adamw``.
        lr: peak learning rate of the trainable parameters.
        head_lr: peak learning rate of the head, if different.
        weight_decay: decoupled weight decay (AdamW) or L2 (Adam).
        warmup_fraction: share of the optimiser steps spent warming up linearly from 0.
        min_lr_ratio: the cosine decays to ``lr * min_lr_ratio``.
        grad_accum: micro-batches accumulated per optimiser step.
        grad_clip: clip the gradient norm to this (None: no clipping).
    """

    name: Literal["adam", "adamw"] = "adamw"
    lr: float = 1e-4
    head_lr: float | None = None
    weight_decay: float = 0.0
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.0
    grad_accum: int = 1
    grad_clip: float | None = 1.0


@dataclass(frozen=True)
class LossSection:
    """Focal loss: ``gamma = 0`` is cross-entropy; ``alpha`` weights the fake class (None: none)."""

    gamma: float = 2.0
    alpha: float | None = None


@dataclass(frozen=True)
class EvalSection:
    """Validation: always clean, plus each degradation spec listed (each reported separately).

    Attributes:
        degradations: specs or presets of :mod:`forensic.degrade`, e.g. ``jpeg-q40``, ``compound-0.5``.
        seed: seed of the validation degradations and pseudo-fakes (fixed across epochs and runs).
        every: validate every this many epochs (and always after the last).
    """

    degradations: tuple[str, ...] = ()
    seed: int = 0
    every: int = 1


@dataclass(frozen=True)
class ExportSection:
    """After training: temperature calibration and our weights format in ``OUT/export``.

    Attributes:
        enabled: write the export at all.
        calibrate: fit the stream's temperature on the clean validation logits.
        push_to_hub: ``owner/repo`` to upload the export to (usually given with ``--push-to-hub``).
        private: create the Hub repo private.
    """

    enabled: bool = True
    calibrate: bool = True
    push_to_hub: str | None = None
    private: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """One training run (one stream).

    Attributes:
        seed: seeds model init, data order, augmentation, dropout and the train/val split.
        epochs: passes over the training set.
        device: ``auto`` (CUDA when available, one GPU per process under torchrun) or a device.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``bf16`` or ``fp32``.
        threads: torch CPU threads per process (None: torch's default).
        resume: a checkpoint to resume from, or ``auto`` (the latest in OUT/checkpoints, if any); it
            must come from the same run (same config, runtime keys aside, and same data: checked).
        keep_checkpoints: how many epoch checkpoints to keep (0: all); ``best.pt`` is always kept.
        progress: tqdm progress bars on stderr (rank 0 only).
    """

    seed: int = 0
    epochs: int = 10
    device: str = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    threads: int | None = None
    resume: str | None = None
    keep_checkpoints: int = 0
    progress: bool = True
    model: ModelSection = field(default_factory=ModelSection)
    init: InitSection = field(default_factory=InitSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    eval: EvalSection = field(default_factory=EvalSection)
    export: ExportSection = field(default_factory=ExportSection)

    def __post_init__(self) -> None:
        _check_ranges(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with top-level fields changed (sections are replaced whole)."""
        return dataclasses.replace(self, **changes)

    def override(self, overrides: Mapping[str, Any] | Sequence[str]) -> TrainConfig:
        """A copy with dotted-key overrides applied (``{"optim.lr": 1e-4}`` or ``["optim.lr=1e-4"]``)."""
        pairs = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
        raw = self.to_dict()
        for key, value in pairs.items():
            set_dotted(raw, key, value, type(self))
        return from_dict(raw, type(self))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples as lists), as written to ``OUT/train_config.yaml``."""
        return plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


@dataclass(frozen=True)
class DistillSection:
    """Knowledge distillation (``python -m train distill``): where the teacher is and how it teaches.

    Attributes:
        teacher: the teacher's weights folder or ``hf-hub:owner/repo[@revision]`` (usually given
            with ``--teacher``).
        teacher_preset: instead of ``teacher``, a preset with published weights (``paper``; usually
            given with ``--teacher-preset``).
        targets: which image the teacher's soft targets come from: ``degraded`` (the very image the
            student sees) or ``clean`` (its undegraded original); see :mod:`train.distill`.
        temperature: the distillation temperature of the KL loss (Hinton et al.: ``T^2 KL(p_t^T || p_s^T)``).
        views: degradation draws per training image; the teacher is run once per (image, view) and
            epoch ``e`` shows the student view ``(e + offset) mod views`` of each image.
        streams: the streams to distill (default: every stream the teacher has).
        protocol: families of the robustness protocol (:mod:`forensic.degrade.protocol`: ``jpeg``,
            ``gnoise``, ``gblur``, ``motion-blur``, ``resize``, ``compound``) whose every level is a
            held-out set, besides clean and ``eval.degradations``, reported each epoch and in the card.
        cache: folder of the teacher's cached outputs (default ``OUT/teacher_cache``); keyed by
            teacher, file and view, so several runs may share one.
        teacher_batch_size: images per teacher forward pass.
        teacher_device: the teacher's device (``auto``: the training device).
        teacher_dtype: ``auto`` (bf16 on CUDA, float32 on CPU), ``float32`` or ``bfloat16``.
    """

    teacher: str | None = None
    teacher_preset: str | None = None
    # "degraded": the student then follows the teacher more closely at every degradation level we measured
    # (bench/RESULTS.md, 2026-11-27); "clean" traded that for robustness. See train/distill.py.
    targets: Literal["degraded", "clean"] = "degraded"
    temperature: float = 2.0
    views: int = 4
    streams: tuple[Literal["texture", "face", "fusion"], ...] = ()
    protocol: tuple[str, ...] = ()
    cache: str | None = None
    teacher_batch_size: int = 32
    teacher_device: str = "auto"
    teacher_dtype: Literal["auto", "float32", "bfloat16"] = "auto"


@dataclass(frozen=True)
class DistillConfig(TrainConfig):
    """A distillation run: the student's training settings (:class:`TrainConfig`) plus the teacher.

    ``model.preset`` is the student's architecture; ``model.stream`` is unused (the student learns
    the teacher's streams, see ``distill.streams``); ``loss.*`` is unused (the loss is the KL to
    the teacher's soft targets).
    """

    distill: DistillSection = field(default_factory=DistillSection)

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            ("distill.temperature", self.distill.temperature > 0, "must be > 0"),
            ("distill.views", 1 <= self.distill.views <= 64, "must be in 1..64"),
            ("distill.teacher_batch_size", self.distill.teacher_batch_size >= 1, "must be >= 1"),
            ("distill.streams", len(set(self.distill.streams)) == len(self.distill.streams), "must be distinct"),
        ]
        for key, ok, what in checks:
            if not ok:
                raise ConfigError(f"{key} {what}")
        if self.distill.teacher and self.distill.teacher_preset:
            raise ConfigError("give the teacher once: distill.teacher (--teacher) or distill.teacher_preset (--teacher-preset)")
        if self.data.pseudo_fakes:
            raise ConfigError("data.pseudo_fakes is for labelled training; in distillation the teacher labels every image")
        from forensic.degrade import FAMILIES
        from forensic.presets import PRESETS

        unknown = [f for f in self.distill.protocol if f not in FAMILIES]
        if unknown or len(set(self.distill.protocol)) != len(self.distill.protocol):
            raise ConfigError(f"distill.protocol must list distinct families among {', '.join(FAMILIES)}; got {list(self.distill.protocol)}")
        if self.distill.teacher_preset is not None and self.distill.teacher_preset not in PRESETS:
            raise ConfigError(f"distill.teacher_preset {self.distill.teacher_preset!r} is not one of {', '.join(PRESETS)}")


# --------------------------------------------------------------------------------- loading
def load_config(
    path: str | Path | None = None, overrides: Sequence[str] | Mapping[str, Any] = (), *, kind: type[TrainConfig] | None = None
) -> TrainConfig:
    """Reads a YAML config (a path, or the name of a file in ``train/configs``) and applies overrides.

    ``kind`` is :class:`TrainConfig` (the default) or :class:`DistillConfig`; a file with a
    ``distill:`` section is refused as a training config, with the command that runs it.

    Raises:
        ConfigError: unknown keys, wrong types or values out of range (the message lists valid keys).
        FileNotFoundError: no such config file.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file() and (CONFIG_DIR / file).is_file():
            file = CONFIG_DIR / file
        elif not file.is_file() and (CONFIG_DIR / f"{file}.yaml").is_file():
            file = CONFIG_DIR / f"{file}.yaml"
        if not file.is_file():
            shipped = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
            raise FileNotFoundError(f"no config file {path!r} (shipped configs: {shipped})")
        loaded = yaml.safe_load(file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of keys to values")
        raw = loaded
    kind = kind or TrainConfig
    if "distill" in raw and not issubclass(kind, DistillConfig):
        raise ConfigError(f"{path} is a distillation config (it has a distill: section): run it with `python -m train distill --config {path} ...`")
    pairs = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    for key, value in pairs.items():
        set_dotted(raw, key, value, kind)
    return from_dict(raw, kind)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=1e-4", "epochs=3"]`` -> ``{"optim.lr": "1e-4", "epochs": 3}`` (values parsed as YAML)."""
    return parse_items(items, valid_keys())


def valid_keys(cls: type | None = None, prefix: str = "") -> list[str]:
    """All dotted keys of the config (``optim.lr``, ``epochs``, ...)."""
    return dotted_keys(cls or TrainConfig, prefix)


def from_dict(raw: Mapping[str, Any], kind: type[TrainConfig] | None = None) -> TrainConfig:
    """Builds a :class:`TrainConfig` (or ``kind``) from nested plain data, checking every key and type."""
    return build(kind or TrainConfig, raw)


def _check_ranges(cfg: TrainConfig) -> None:
    checks = [
        ("epochs", cfg.epochs >= 1, "must be >= 1"),
        ("threads", cfg.threads is None or cfg.threads >= 1, "must be >= 1"),
        ("keep_checkpoints", cfg.keep_checkpoints >= 0, "must be >= 0 (0 keeps all)"),
        ("data.val_fraction", 0.0 <= cfg.data.val_fraction < 1.0, "must be in [0, 1)"),
        ("data.batch_size", cfg.data.batch_size >= 1, "must be >= 1"),
        ("data.eval_batch_size", cfg.data.eval_batch_size is None or cfg.data.eval_batch_size >= 1, "must be >= 1"),
        ("data.num_workers", cfg.data.num_workers >= 0, "must be >= 0"),
        ("augment.global_p", 0.0 <= cfg.augment.global_p <= 1.0, "must be in [0, 1]"),
        ("augment.strength", 0.0 <= cfg.augment.strength <= 1.0, "must be in [0, 1]"),
        ("augment.op_p", 0.0 <= cfg.augment.op_p <= 1.0, "must be in [0, 1]"),
        ("augment.strength_cap", 0.0 <= cfg.augment.strength_cap <= 1.0, "must be in [0, 1]"),
        ("optim.lr", cfg.optim.lr > 0, "must be > 0"),
        ("optim.head_lr", cfg.optim.head_lr is None or cfg.optim.head_lr > 0, "must be > 0"),
        ("optim.weight_decay", cfg.optim.weight_decay >= 0, "must be >= 0"),
        ("optim.warmup_fraction", 0.0 <= cfg.optim.warmup_fraction < 1.0, "must be in [0, 1)"),
        ("optim.min_lr_ratio", 0.0 <= cfg.optim.min_lr_ratio <= 1.0, "must be in [0, 1]"),
        ("optim.grad_accum", cfg.optim.grad_accum >= 1, "must be >= 1"),
        ("optim.grad_clip", cfg.optim.grad_clip is None or cfg.optim.grad_clip > 0, "must be > 0"),
        ("loss.gamma", cfg.loss.gamma >= 0, "must be >= 0"),
        ("loss.alpha", cfg.loss.alpha is None or 0.0 <= cfg.loss.alpha <= 1.0, "must be in [0, 1]"),
        ("eval.every", cfg.eval.every >= 1, "must be >= 1"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ConfigError(f"{key} {what}")
    from forensic.presets import PRESETS

    if cfg.model.preset not in PRESETS:
        raise ConfigError(f"model.preset {cfg.model.preset!r} is not one of {', '.join(PRESETS)}")
    if cfg.eval.degradations:
        from forensic.degrade import SpecError, parse_spec

        for spec in cfg.eval.degradations:
            try:
                parse_spec(spec)
            except SpecError as exc:
                raise ConfigError(f"eval.degradations: {exc}") from None
        if len(set(cfg.eval.degradations)) != len(cfg.eval.degradations) or "clean" in cfg.eval.degradations:
            raise ConfigError("eval.degradations must be distinct and must not contain 'clean' (always evaluated)")
