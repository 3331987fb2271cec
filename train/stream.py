"""Training one stream against the labels (``python -m train``): the job :func:`train.engine.fit` drives.

Each epoch trains the stream on the compound-degraded training images with the focal loss
(:mod:`train.loop`) and validates it on the clean and degraded validation sets (:mod:`train.evaluate`,
best epoch by the clean AUC). Its export report calibrates the best weights on the clean
validation logits (:func:`forensic.calibration.calibrate`: one rule with inference tools) and
describes the run in the model card.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from forensic.calibration import CalibrationResult, calibrate
from forensic.model import ForensicModel

from . import rundir
from ._json import jsonable
from .config import TrainConfig
from .datasets import make_loader
from .distributed import DistInfo
from .evaluate import EvalResult, evaluate
from .export import ExportReport, fmt
from .loop import make_optimizer, make_scheduler, train_one_epoch
from .losses import FocalLoss
from .modeling import build_training_model, check_bases, training_model_config
from .prepare import RunData, SplitData, build_datasets, prepare_split, skipped_files
from .views import CLEAN

__all__ = ["StreamJob", "training_card_sections"]

log = logging.getLogger(__name__)

_METRIC_KEYS = ("auc", "ap", "accuracy", "eer", "ece")


@dataclass
class StreamJob:
    """Training one stream against the labels (a :class:`train.engine.Job`)."""

    label: str
    data: RunData
    model: ForensicModel
    net: torch.nn.Module
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_loader: DataLoader
    val_loaders: dict[str, DataLoader]

    @staticmethod
    def prepare(cfg: TrainConfig, *, out: Path, info: DistInfo) -> tuple[SplitData, rundir.RunFingerprint]:
        """Reads, scans and splits the labelled data; the run's fingerprint. The bases are found first:
        a missing one fails the run before the data is read."""
        check_bases(cfg, training_model_config(cfg))
        split = prepare_split(cfg, out=out, info=info)
        return split, rundir.run_fingerprint(cfg, split.split)

    @classmethod
    def build(cls, cfg: TrainConfig, split: SplitData, info: DistInfo) -> StreamJob:
        """The datasets (faces detected), the model, its optimizer and loaders.""" 
        stream = cfg.model.stream
        model_config = training_model_config(cfg)
        data = build_datasets(cfg, split, model_config.stream(stream), info=info)
        model = build_training_model(cfg, model_config, device=info.device)
        loader_kw = {"seed": cfg.seed, "info": info, "num_workers": cfg.data.num_workers}
        train_loader = make_loader(data.train, batch_size=cfg.data.batch_size, shuffle=True, **loader_kw)
        eval_bs = cfg.data.eval_batch_size or cfg.data.batch_size
        val_loaders = {name: make_loader(ds, batch_size=eval_bs, shuffle=False, **loader_kw) for name, ds in data.val.items()}
        optimizer = make_optimizer(model, stream, cfg)
        net: torch.nn.Module = model
        if info.distributed:  # only the stream's adapter and head require grad, so only they are all-reduced
            net = DistributedDataParallel(model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        return cls(
            label=stream, data=data, model=model, net=net, criterion=FocalLoss(gamma=cfg.loss.gamma, alpha=cfg.loss.alpha),
            optimizer=optimizer, scheduler=make_scheduler(optimizer, cfg, len(train_loader)), train_loader=train_loader,
            val_loaders=val_loaders,
        )

    # ------------------------------------------------------------------------------- the Job protocol
    @property
    def has_validation(self) -> bool:
        return bool(self.val_loaders)

    def stream_state(self) -> dict[str, torch.Tensor]:
        return self.model.stream_state_dict(self.label)

    def load_stream_state(self, state: Mapping[str, torch.Tensor]) -> None:
        self.model.load_stream_state_dict(self.label, state)

    def train_epoch(self, cfg: TrainConfig, info: DistInfo, epoch: int) -> dict[str, Any]:
        self.data.train.set_epoch(epoch)
        self.train_loader.sampler.set_epoch(epoch)
        return train_one_epoch(
            self.net, self.model, self.train_loader, stream=self.label, criterion=self.criterion,
            optimizer=self.optimizer, scheduler=self.scheduler, cfg=cfg, info=info, desc=f"epoch {epoch + 1}/{cfg.epochs}",
        )

    def _evaluate(self, cfg: TrainConfig, info: DistInfo, loaders: Mapping[str, DataLoader], *, progress: bool) -> dict[str, EvalResult]:
        return {
            name: evaluate(self.model, loader, stream=self.label, criterion=self.criterion, info=info, precision=cfg.precision,
                           name=name, progress=progress)
            for name, loader in loaders.items()
        }

    def validate(self, cfg: TrainConfig, info: DistInfo) -> tuple[dict[str, dict[str, Any]], float]:
        figures = {name: ev.metrics() for name, ev in self._evaluate(cfg, info, self.val_loaders, progress=cfg.progress).items()}
        return figures, figures[CLEAN]["auc"]

    def start_fields(self, cfg: TrainConfig, info: DistInfo) -> dict[str, Any]:
        data = self.data
        return {
            "stream": self.label, "preset": cfg.model.preset,
            "data": {**data.split.counts(), "split_by": data.split.split_by, "train_items": len(data.train),
                     "val_items": len(data.val.get(CLEAN, ())), "skipped": len(data.skipped),
                     "skipped_files": skipped_files(data.skipped)},
            "trainable_parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
        }

    def metrics_line(self, epoch: int, epochs: int, record: Mapping[str, Any]) -> str:
        parts = [f"epoch {epoch}/{epochs}", f"loss {record['train_loss']:.4f}"]
        for name, m in (record.get("val") or {}).items():
            label = "val" if name == CLEAN else name
            parts.append(f"{label} auc {m['auc']:.3f} acc {m['accuracy']:.3f} eer {m['eer']:.3f} ap {m['ap']:.3f} loss {m['loss']:.4f}")
        parts.append(f"{record['time_s']:.1f}s")
        return " | ".join(parts)

    def report(self, cfg: TrainConfig, *, info: DistInfo, best_epoch: int, world_size: int) -> ExportReport:
        """Validation logits of the best weights -> temperature (clean set) -> metrics before and after."""
        stream, data = self.label, self.data
        eval_bs = cfg.data.eval_batch_size or cfg.data.batch_size
        loaders = {name: make_loader(ds, batch_size=eval_bs, shuffle=False, seed=cfg.seed, info=info, num_workers=cfg.data.num_workers)
                   for name, ds in data.val.items()}
        evals = self._evaluate(cfg, info, loaders, progress=False)
        calibration: CalibrationResult | None = None
        temperature = 1.0
        clean = evals.get(CLEAN)
        if cfg.export.calibrate and clean is not None:
            # one rule with inference tools: T within forensic.calibration.TEMPERATURE_RANGE, and T = 1
            # (with the reason, logged by calibrate) on a set too small or without errors
            calibration = calibrate(clean.logits, clean.labels)
            temperature = calibration.temperature
        elif cfg.export.calibrate:
            log.warning("no validation set: the temperature stays 1.0 (uncalibrated)")
        metrics = {name: {"uncalibrated": ev.metrics(1.0), "calibrated": ev.metrics(temperature)} for name, ev in evals.items()}
        training = {
            "stream": stream, "preset": cfg.model.preset, "best_epoch": best_epoch, "epochs": cfg.epochs, "world_size": world_size,
            "init_from": cfg.init.from_dir, "data": data.split.counts(), "pseudo_fakes": cfg.data.pseudo_fakes,
            "temperature": float(temperature), "calibration": calibration.to_dict() if calibration else None,
            "metrics": {name: {k: m["calibrated"][k] for k in _METRIC_KEYS} for name, m in metrics.items()},
            "config": cfg.replace(resume=None).to_dict(),
        }
        n_train = sum(data.split.counts()["train"].values())
        extra = {"metrics": ["roc_auc", "average_precision", "accuracy", "equal_error_rate"], "trained_stream": stream}
        if CLEAN in metrics:
            extra["val_auc"] = jsonable(metrics[CLEAN]["calibrated"].get("auc"))
        return ExportReport(
            temperatures={stream: temperature},
            summary={"stream": stream, "best_epoch": best_epoch, "temperature": temperature,
                     "calibration": calibration.to_dict() if calibration else None, "metrics": metrics},
            predictions=_predictions(evals, data, temperature),
            meta_key="training", meta=training,
            description=f"The {stream} stream of preset `{cfg.model.preset}`, trained with `python -m train` on {n_train} images.",
            sections=training_card_sections(cfg, metrics=metrics, calibration=calibration, temperature=temperature, data=data,
                                            best_epoch=best_epoch, world_size=world_size),
            card_metadata=extra,
            final_metrics={name: m["calibrated"] for name, m in metrics.items()},
            commit_message=f"Upload the {stream} stream trained with python -m train",
        )


def _predictions(evals: Mapping[str, EvalResult], data: RunData, temperature: float) -> Iterator[dict[str, Any]]:
    """Per validation image: logits and P(fake) before and after calibration."""
    for name, ev in evals.items():
        items = data.val[name].items
        raw, cal = ev.prob_fake(1.0), ev.prob_fake(temperature)
        for k, index in enumerate(ev.indices.tolist()):
            item = items[index]
            yield {"set": name, "path": str(item.sample.path), "pseudo": item.pseudo, "label": int(ev.labels[k]),
                   "logits": [float(v) for v in ev.logits[k]], "prob_fake": float(raw[k]), "prob_fake_calibrated": float(cal[k])}


def training_card_sections(
    cfg: TrainConfig,
    *,
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
    calibration: CalibrationResult | None,
    temperature: float,
    data: RunData,
    best_epoch: int,
    world_size: int,
) -> dict[str, str]:
    """The model card's training sections: data, recipe, validation metrics, calibration, limitations."""
    counts = data.split.counts()
    source = Path(cfg.data.path).name if cfg.data.path else "?"
    data_text = (
        f"- Source: `{source}` ({'CSV manifest' if str(cfg.data.path).endswith('.csv') else 'folder with real/ and fake/'}); "
        f"split by {'the manifest' if data.split.split_by == 'manifest' else f'a seeded stratified {cfg.data.val_fraction:g} hold-out'}.\n"
        f"- Training: {counts['train']['real']} real, {counts['train']['fake']} fake images"
        + (f" (+{counts['train']['real']} self-blended pseudo-fakes)" if cfg.data.pseudo_fakes else "")
        + f".\n- Validation: {counts['val']['real']} real, {counts['val']['fake']} fake images"
        + (f" (+{counts['val']['real']} pseudo-fakes)" if cfg.data.pseudo_fakes else "")
        + "."
        + (f"\n- Left out: {len(data.skipped)} file(s) that cannot be read." if data.skipped else "")
    )
    aug = cfg.augment
    recipe = "\n".join([
        f"- Stream: `{cfg.model.stream}` of preset `{cfg.model.preset}`; trained: {cfg.model.trainable} "
        f"(LoRA on the frozen DINOv2 base + head)" + (f"; initialised from `{cfg.init.from_dir}`" if cfg.init.from_dir else ""),
        f"- {cfg.epochs} epochs, batch {cfg.data.batch_size} x {world_size} process(es) x {cfg.optim.grad_accum} accumulation steps; "
        f"best epoch {best_epoch} (validation AUC).",
        f"- {cfg.optim.name} lr {cfg.optim.lr:g}" + (f" (head {cfg.optim.head_lr:g})" if cfg.optim.head_lr else "")
        + f", weight decay {cfg.optim.weight_decay:g}, linear warm-up {cfg.optim.warmup_fraction:g} then cosine; "
        f"focal loss gamma {cfg.loss.gamma:g}" + (f", alpha {cfg.loss.alpha:g}" if cfg.loss.alpha is not None else "") + ".",
        f"- Augmentation: the paper's compound degradation on {aug.global_p:.0%} of training images "
        f"(strength {aug.strength:g}, op_p {aug.op_p:g}, per-op strength cap {aug.strength_cap:g}); validation clean"
        + (f" and degraded by {', '.join(f'`{d}`' for d in cfg.eval.degradations)}" if cfg.eval.degradations else "") + ".",
        f"- Seed {cfg.seed}; precision {cfg.precision}.",
    ])
    rows = ["| validation set | AUC | AP | accuracy | EER | ECE (calibrated) |", "|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        c = m["calibrated"]
        rows.append(f"| {name} | {fmt(c['auc'])} | {fmt(c['ap'])} | {fmt(c['accuracy'])} | {fmt(c['eer'])} | {fmt(c['ece'])} |")
    if calibration is not None and calibration.fitted:
        calib = (
            f"Temperature scaling fitted on the clean validation logits: T = {temperature:.4g}. "
            f"ECE {calibration.ece_before:.4f} -> {calibration.ece_after:.4f}, "
            f"NLL {calibration.nll_before:.4f} -> {calibration.nll_after:.4f} (on the fitting set itself)."
            + (f" Note: {calibration.note}." if calibration.note else "")
        )
    elif calibration is not None:
        calib = (
            f"Not calibrated: temperature kept at 1, because {calibration.note}. "
            "P(fake) is the model's own softmax; fit a temperature on a larger held-out set before relying on it as a probability."
        )
    else:
        calib = "Not calibrated (no validation set): temperature 1."
    n_val = counts["val"]["real"] + counts["val"]["fake"]
    limits = [
        f"- Validated on {n_val} held-out images from the same source as the training data; "
        "other generators, cameras and post-processing can score very differently.",
        "- The temperature was fitted and reported on the same validation images, so the calibrated ECE is optimistic.",
    ]
    if cfg.model.random_bases or cfg.model.preset == "tiny-random":
        limits.append("- The base backbones are random (not pretrained): a toy or smoke-test model, not a detector.")
    return {
        "Training data": data_text,
        "Training recipe": recipe,
        "Validation metrics": "\n".join(rows),
        "Calibration": calib,
        "Training limitations": "\n".join(limits),
    }
