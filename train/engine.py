"""The run: :func:`drive` runs any :class:`Job` with the same guarantees; :func:`fit` trains one stream.

A job is one kind of run: training one stream against labels (:class:`train.stream.StreamJob`,
``python -m train``) or distilling a teacher's streams (:class:`train.distill.DistillJob`,
``python -m train distill``). :func:`drive` owns what they share: the folder, resume, checkpoints,
``log.jsonl``, when to validate and which epoch is the best, and the export (:func:`train.export.export`).

Reproducibility: data order is ``DistributedSampler(seed).set_epoch(e)``; image randomness is per
sample (see :mod:`train.views`); dropout draws from torch's global generator, which is reseeded at
the start of every epoch from ``(seed, epoch, rank)``. So a run resumed from the checkpoint of
epoch ``e`` computes exactly what the uninterrupted run computed.

Safety of the output folder (see :mod:`train.rundir`): one run at a time holds it (an exclusive lock,
:mod:`forensic.folder_lock`: a second run, even of the same config, is refused naming the holder's
PID); a fresh run refuses a folder holding another run unless ``overwrite``; a resume refuses a checkpoint of another config or data; every file is
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

from forensic.folder_lock import FolderBusy, FolderLock, lock_folder
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
from .distributed import DistInfo, all_gather_objects, barrier, setup_distributed, teardown_distributed
from .export import ExportReport, export
from .prepare import SplitData
from .stream import StreamJob

__all__ = ["FitResult", "Job", "fit", "drive"]

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
        forensic.data.DataError: unusable data.
        train.rundir.RunFolderError: ``out`` or the checkpoint belongs to another run.
        train.checkpoint.CheckpointError: the checkpoint cannot be read.
        forensic.weights.WeightsUnavailable: the preset's base weights cannot be had.
    """
    return drive(cfg, out=out, info=info, overwrite=overwrite, prepare=StreamJob.prepare, build=StreamJob.build)


# --------------------------------------------------------------------------------- the driver
class Job(Protocol):
    """One kind of run, as :func:`drive` sees it: training one stream (:class:`train.stream.StreamJob`)
    or distilling several (:class:`train.distill.DistillJob`).

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
        """Loads :meth:`stream_state` back (resume, and the export of the best checkpoint)."""

    def train_epoch(self, cfg: TrainConfig, info: DistInfo, epoch: int) -> dict[str, Any]:
        """Trains epoch ``epoch`` (0-based): the record's fields, with ``steps`` (optimizer steps taken)."""

    def validate(self, cfg: TrainConfig, info: DistInfo) -> tuple[dict[str, dict[str, Any]], float]:
        """Every held-out set's figures (the record's ``val``) and the score that picks the best
        epoch (higher is better; NaN: undefined)."""

    def start_fields(self, cfg: TrainConfig, info: DistInfo) -> dict[str, Any]:
        """What the ``start`` record of ``log.jsonl`` says about this run (data, model, ...)."""

    def metrics_line(self, epoch: int, epochs: int, record: Mapping[str, Any]) -> str:
        """One log line for an epoch record."""

    def report(self, cfg: TrainConfig, *, info: DistInfo, best_epoch: int, world_size: int) -> ExportReport:
        """The export's contents for the loaded best weights (see :class:`train.export.Exportable`)."""


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
        with _hold_folder(out, info):
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
    fields = job.train_epoch(cfg, info, epoch)
    progress.step += fields.pop("steps")
    record: dict[str, Any] = {"event": "epoch", "epoch": epoch + 1, "step": progress.step, **fields,
                              "lr": [g["lr"] for g in job.optimizer.param_groups]}
    score = None
    if job.has_validation and ((epoch + 1) % cfg.eval.every == 0 or epoch + 1 == cfg.epochs):
        record["val"], score = job.validate(cfg, info)
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


def _hold_folder(out: Path, info: DistInfo) -> FolderLock:
    """Locks ``out`` for this run (rank 0 holds it; every rank learns whether another run has it).

    Raises:
        train.rundir.RunFolderError: another process is running in ``out`` (its PID named).
    """
    lock, refusal = FolderLock(out, None), None
    if info.is_main:
        try:
            lock = lock_folder(out, what="training run")
        except FolderBusy as exc:
            refusal = str(exc)
    refusal = all_gather_objects(info, refusal)[0]
    if refusal is not None:
        raise rundir.RunFolderError(refusal)
    return lock


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
        done = export(job, cfg, out=out, info=info, best_epoch=progress.best_epoch, fingerprint=fingerprint)
        result.export_dir, result.temperatures, result.final_metrics = done.folder, done.temperatures, done.final_metrics
        result.temperature = next(iter(done.temperatures.values())) if len(done.temperatures) == 1 else None
    barrier(info)
    return result
