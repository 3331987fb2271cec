"""The run: :func:`fit` trains one stream; :func:`drive` runs any :class:`Job` with the same guarantees.

:func:`drive` runs a job (one stream against labels here; several streams against a teacher in
:mod:`train.distill`) with the same folder, resume, checkpoint and log guarantees. The pieces live
in their own modules and stay importable from here: the data (:mod:`train.prepare`), the
optimisation (:mod:`train.loop`), validation (:mod:`train.evaluate`) and the export
(:mod:`train.export`).

Reproducibility: data order is ``DistributedSampler(seed).set_epoch(e)``; image randomness is per
sample (see :mod:`train.data`); dropout draws from torch's global generator, which is reseeded at
the start of every epoch from ``(seed, epoch, rank)``. So a run resumed from the checkpoint of
epoch ``e`` computes exactly what the uninterrupted run computed.

Safety of the output folder (see :mod:`train.rundir`): a fresh run refuses a folder holding another
run unless ``overwrite``; a resume refuses a checkpoint of another config or data; every file is
written atomically, and ``log.jsonl`` is rebuilt from the checkpoint on resume, so an epoch is
logged once whatever was interrupted where.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from forensic.model import ForensicModel

from . import rundir
from ._io import atomic_write_text
from ._json import jsonable
from .checkpoint import (
    CheckpointError,
    CheckpointState,
    checkpoint_dir,
    copy_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    remove_checkpoints_after,
    restore_rng,
    rng_states,
    save_checkpoint,
    sync_best,
)
from .config import TrainConfig
from .data import make_loader
from .distributed import DistInfo, barrier, setup_distributed, teardown_distributed
from .evaluate import CLEAN, EvalResult, evaluate
from .export import export_run
from .loop import StepLoss, WarmupCosine, make_optimizer, make_scheduler, optimise_epoch, train_one_epoch
from .losses import FocalLoss
from .modeling import build_training_model, training_model_config
from .prepare import (
    RunData,
    SplitData,
    build_datasets,
    face_detector_factory,
    prepare_data,
    prepare_split,
    scan_split,
    skipped_files,
)

# the data, loop and evaluation pieces live in their own modules; they stay importable from here
__all__ = [
    "EvalResult", "FitResult", "RunData", "SplitData", "WarmupCosine", "Job", "StepLoss",
    "fit", "drive", "prepare_data", "prepare_split", "scan_split", "build_datasets", "train_one_epoch", "optimise_epoch",
    "evaluate", "make_optimizer", "make_scheduler", "face_detector_factory",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------- results
@dataclass
class FitResult:
    """What a run produced.

    Attributes:
        out: the output folder.
        best_epoch: the epoch of the best validation AUC (the last epoch without validation).
        history: one record per epoch (as in ``log.jsonl``).
        export_dir: the exported weights folder, if written.
        temperature: the fitted calibration temperature, if any (one stream).
        final_metrics: per validation set, metrics of the best checkpoint (calibrated).
        temperatures: per stream, the fitted temperatures (distillation: several streams).
    """

    out: Path
    best_epoch: int
    history: list[dict[str, Any]]
    export_dir: Path | None = None
    temperature: float | None = None
    final_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank, 0xD50]).generate_state(1)[0])


# --------------------------------------------------------------------------------- the run
def _metrics_line(epoch: int, epochs: int, record: Mapping[str, Any]) -> str:
    parts = [f"epoch {epoch}/{epochs}", f"loss {record['train_loss']:.4f}"]
    for name, m in (record.get("val") or {}).items():
        label = "val" if name == CLEAN else name
        parts.append(f"{label} auc {m['auc']:.3f} acc {m['accuracy']:.3f} eer {m['eer']:.3f} ap {m['ap']:.3f} loss {m['loss']:.4f}")
    parts.append(f"{record['time_s']:.1f}s")
    return " | ".join(parts)


def _better(auc: float, best: float) -> bool:
    """Whether a validation score (higher is better; NaN: undefined) beats the best so far."""
    if math.isnan(auc):
        return math.isnan(best)  # without a usable AUC, the latest epoch is kept
    return math.isnan(best) or auc >= best


def _resolve_resume(cfg: TrainConfig, out: Path) -> Path | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "auto":
        return latest_checkpoint(out)
    return Path(cfg.resume)


def _write_json_line(path: Path, record: Mapping[str, Any]) -> None:
    """Appends one record; a kill mid-line leaves a partial line that the next resume drops."""
    with path.open("a") as f:
        f.write(json.dumps(jsonable(record)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def fit(cfg: TrainConfig, *, out: str | Path, info: DistInfo | None = None, overwrite: bool = False) -> FitResult:
    """Trains ``cfg.model.stream`` and (rank 0) writes checkpoints, ``log.jsonl`` and the export.

    Works unchanged as one process or under ``torchrun`` (one process per GPU or CPU slot).

    Args:
        cfg: the run's config (``cfg.resume``: continue from a checkpoint of the *same* run).
        out: the output folder.
        info: the process group (default: set up from the environment).
        overwrite: replace an earlier run in ``out`` (otherwise a fresh run there is refused).

    Raises:
        train.data.DataError: unusable data.
        train.rundir.RunFolderError: ``out`` or the checkpoint belongs to another run.
        train.checkpoint.CheckpointError: the checkpoint cannot be read.
        forensic.weights.WeightsUnavailable: the preset's base weights cannot be had.
    """
    return drive(cfg, out=out, info=info, overwrite=overwrite, prepare=_prepare_stream_run, build=_StreamJob.build)


# --------------------------------------------------------------------------------- the driver
class Job(Protocol):
    """One kind of run, as :func:`drive` sees it: training one stream (:class:`_StreamJob`) or
    distilling several (:class:`train.distill.DistillJob`).

    Attributes:
        label: the checkpoint's ``stream`` field (a resume refuses a checkpoint of another label).
        model, optimizer, scheduler: what a checkpoint saves (with :meth:`stream_state`).
        has_validation: whether epochs are validated at all (without, every epoch is the best).
    """

    label: str
    model: ForensicModel
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    has_validation: bool

    def stream_state(self) -> dict[str, torch.Tensor]:
        """The trained tensors a checkpoint holds."""

    def load_stream_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Loads :meth:`stream_state` back (resume)."""

    def run_epoch(self, cfg: TrainConfig, info: DistInfo, epoch: int) -> tuple[dict[str, Any], float | None]:
        """Trains (and maybe validates) epoch ``epoch`` (0-based): the record's fields (with
        ``steps``: optimizer steps taken) and the validation score (higher is better; None: not
        validated this epoch)."""

    def start_fields(self, cfg: TrainConfig, info: DistInfo) -> dict[str, Any]:
        """What the ``start`` record of ``log.jsonl`` says about this run (data, model, ...)."""

    def metrics_line(self, epoch: int, epochs: int, record: Mapping[str, Any]) -> str:
        """One log line for an epoch record."""

    def export(self, cfg: TrainConfig, *, out: Path, info: DistInfo, result: FitResult, fingerprint: rundir.RunFingerprint) -> None:
        """Rank 0 after the last epoch: the weights folder (sets ``result.export_dir``)."""


#: reads and scans the data, and says whose run it is: ``prepare(cfg, out=, info=) -> (split, fingerprint)``
Prepare = Callable[..., tuple[SplitData, rundir.RunFingerprint]]
#: builds the job (data sets, model, optimizer, ...): ``build(cfg, split, info) -> Job``
Build = Callable[[TrainConfig, SplitData, DistInfo], Job]


def drive(
    cfg: TrainConfig, *, out: str | Path, info: DistInfo | None = None, overwrite: bool = False, prepare: Prepare, build: Build
) -> FitResult:
    """Runs a job with this package's guarantees, whatever it trains.

    One output folder per run (refused when it holds another, unless ``overwrite``), a resume
    only from a checkpoint of the same config and data, checkpoints and the log written by rank 0
    only, atomically and checkpoint first, ``log.jsonl`` rebuilt from the checkpoint on resume,
    ``best.pt`` by the job's validation score, then the job's export.
    """
    out = Path(out)
    own_group = info is None
    info = info or setup_distributed(cfg.device)
    try:
        return _drive(cfg, out, info, overwrite=overwrite, prepare=prepare, build=build)
    finally:
        if own_group:
            teardown_distributed(info)


@dataclass
class _Progress:
    """Where the run stands (restored from a checkpoint when resuming)."""

    epoch: int = 0
    step: int = 0
    best_epoch: int = 0
    best_auc: float = math.nan  # the best validation score (AUC when training, agreement when distilling)
    history: list[dict[str, Any]] = field(default_factory=list)


def _restore(job: Job, path: Path, ckpt: CheckpointState) -> _Progress:
    if ckpt.stream != job.label:
        raise CheckpointError(f"{path} is a checkpoint of the {ckpt.stream} stream; this run trains {job.label}")
    job.load_stream_state(ckpt.stream_state)
    job.optimizer.load_state_dict(ckpt.optimizer)
    job.scheduler.load_state_dict(ckpt.scheduler)
    restore_rng(ckpt.rng)
    log.info("resumed from %s after epoch %d", path, ckpt.epoch)
    return _Progress(epoch=ckpt.epoch, step=ckpt.step, best_epoch=ckpt.best_epoch, best_auc=ckpt.best_auc, history=list(ckpt.history))


def _run_epoch(job: Job, cfg: TrainConfig, info: DistInfo, epoch: int, progress: _Progress) -> bool:
    """Runs epoch ``epoch`` (0-based) of the job; updates ``progress``; returns whether it is the best."""
    t0 = time.perf_counter()
    torch.manual_seed(_epoch_seed(cfg.seed, epoch, info.rank))  # dropout: the only draw from torch's generator
    fields, score = job.run_epoch(cfg, info, epoch)
    progress.step += fields.pop("steps")
    record: dict[str, Any] = {"event": "epoch", "epoch": epoch + 1, "step": progress.step, **fields}
    record["time_s"] = time.perf_counter() - t0
    is_best = _better(score, progress.best_auc) if score is not None else not job.has_validation
    if is_best:
        progress.best_epoch, progress.best_auc = epoch + 1, score if score is not None else math.nan
    record["best_epoch"] = progress.best_epoch
    progress.epoch = epoch + 1
    progress.history.append(record)
    return is_best


def _save_epoch(job: Job, cfg: TrainConfig, out: Path, progress: _Progress, fingerprint: rundir.RunFingerprint, *, is_best: bool) -> None:
    state = CheckpointState(
        epoch=progress.epoch, step=progress.step, stream=job.label, stream_state=job.stream_state(),
        optimizer=job.optimizer.state_dict(), scheduler=job.scheduler.state_dict(), best_epoch=progress.best_epoch,
        best_auc=progress.best_auc, history=progress.history, config=cfg.to_dict(), rng=rng_states(),
        config_hash=fingerprint.config_hash, data_hash=fingerprint.data_hash,
    )
    path = save_checkpoint(checkpoint_dir(out) / f"epoch_{progress.epoch:03d}.pt", state)
    if is_best:
        copy_checkpoint(path, checkpoint_dir(out) / "best.pt")
    prune_checkpoints(out, cfg.keep_checkpoints)


def _open_folder(cfg: TrainConfig, out: Path, info: DistInfo, *, overwrite: bool) -> None:
    """Refuses a folder holding another run (every rank checks before rank 0 writes anything)."""
    rundir.check_new_run(out, resume=cfg.resume, overwrite=overwrite)
    barrier(info)
    if info.is_main:
        if overwrite:
            rundir.clear_run(out)
        out.mkdir(parents=True, exist_ok=True)
    barrier(info)


def _checked_resume(cfg: TrainConfig, out: Path, fingerprint: rundir.RunFingerprint) -> tuple[Path, CheckpointState] | None:
    """The checkpoint to resume from, after checking it (and the folder) belong to this run."""
    path = _resolve_resume(cfg, out)
    state = None
    if path is not None:
        state = load_checkpoint(path)
        rundir.check_checkpoint(path, state, fingerprint, cfg)  # first: its message names the differences
    if cfg.resume is not None:
        rundir.check_log(out, fingerprint, cfg)
    if path is None:
        if cfg.resume is not None:
            log.info("resume=auto: no checkpoint in %s, starting fresh", checkpoint_dir(out))
        return None
    return path, state


def _drive(cfg: TrainConfig, out: Path, info: DistInfo, *, overwrite: bool, prepare: Prepare, build: Build) -> FitResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _open_folder(cfg, out, info, overwrite=overwrite)
    split, fingerprint = prepare(cfg, out=out, info=info)
    resume = _checked_resume(cfg, out, fingerprint)  # before the faces and the model: fail fast
    job = build(cfg, split, info)
    progress = _restore(job, *resume) if resume is not None else _Progress()
    log_path = out / rundir.LOG_NAME
    if info.is_main:
        atomic_write_text(out / "train_config.yaml", cfg.to_yaml())
        if resume is not None:  # epochs after the checkpoint are trained again: drop their leftovers
            for stale in remove_checkpoints_after(out, progress.epoch):
                log.info("removed %s (after the resumed epoch %d)", stale, progress.epoch)
            sync_best(out, progress.best_epoch)
        rundir.rebuild_log(log_path, progress.history)
        start = {
            "event": "start", **job.start_fields(cfg, info), "world_size": info.world_size, "device": str(info.device),
            "resume": str(resume[0]) if resume else None, "start_epoch": progress.epoch, "run": fingerprint.to_dict(),
        }
        _write_json_line(log_path, start)
    barrier(info)
    for epoch in range(progress.epoch, cfg.epochs):
        is_best = _run_epoch(job, cfg, info, epoch, progress)
        if info.is_main:
            # checkpoint first: a kill before the log line is repaired on resume from the checkpoint's history
            _save_epoch(job, cfg, out, progress, fingerprint, is_best=is_best)
            _write_json_line(log_path, progress.history[-1])
            log.info(job.metrics_line(epoch + 1, cfg.epochs, progress.history[-1]))
        barrier(info)

    result = FitResult(out=out, best_epoch=progress.best_epoch, history=progress.history)
    if cfg.export.enabled and info.is_main:
        job.export(cfg, out=out, info=info, result=result, fingerprint=fingerprint)
    barrier(info)
    return result


# --------------------------------------------------------------------------------- one stream
def _prepare_stream_run(cfg: TrainConfig, *, out: Path, info: DistInfo) -> tuple[SplitData, rundir.RunFingerprint]:
    split = prepare_split(cfg, out=out, info=info)
    return split, rundir.run_fingerprint(cfg, split.split)


@dataclass
class _StreamJob:
    """Training one stream against the labels (``python -m train``)."""

    label: str
    data: RunData
    model: ForensicModel
    net: torch.nn.Module
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_loader: DataLoader
    val_loaders: dict[str, DataLoader]

    @classmethod
    def build(cls, cfg: TrainConfig, split: SplitData, info: DistInfo) -> _StreamJob:
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

    @property
    def has_validation(self) -> bool:
        return bool(self.val_loaders)

    def stream_state(self) -> dict[str, torch.Tensor]:
        return self.model.stream_state_dict(self.label)

    def load_stream_state(self, state: Mapping[str, torch.Tensor]) -> None:
        self.model.load_stream_state_dict(self.label, state)

    def run_epoch(self, cfg: TrainConfig, info: DistInfo, epoch: int) -> tuple[dict[str, Any], float | None]:
        self.data.train.set_epoch(epoch)
        self.train_loader.sampler.set_epoch(epoch)
        stats = train_one_epoch(
            self.net, self.model, self.train_loader, stream=self.label, criterion=self.criterion,
            optimizer=self.optimizer, scheduler=self.scheduler, cfg=cfg, info=info, desc=f"epoch {epoch + 1}/{cfg.epochs}",
        )
        record: dict[str, Any] = {**stats, "lr": [g["lr"] for g in self.optimizer.param_groups]}
        if not (self.val_loaders and ((epoch + 1) % cfg.eval.every == 0 or epoch + 1 == cfg.epochs)):
            return record, None
        record["val"] = {
            name: evaluate(
                self.model, loader, stream=self.label, criterion=self.criterion, info=info,
                precision=cfg.precision, name=name, progress=cfg.progress,
            ).metrics()
            for name, loader in self.val_loaders.items()
        }
        return record, record["val"][CLEAN]["auc"]

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
        return _metrics_line(epoch, epochs, record)

    def export(self, cfg: TrainConfig, *, out: Path, info: DistInfo, result: FitResult, fingerprint: rundir.RunFingerprint) -> None:
        export_run(cfg, self.model, data=self.data, out=out, info=info, criterion=self.criterion, result=result,
                   fingerprint=fingerprint)
