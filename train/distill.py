"""Knowledge distillation: a student of any preset learns a teacher's answers, from unlabelled images.

``python -m train distill --teacher REF --config FILE --data DIR_OR_CSV --out DIR`` (see
``python -m train distill -h``). A GPU-sized teacher (the ``paper`` preset) labels any pile of
photos under the compound degradations it was trained for, and a CPU-sized student (``small``)
learns to give the same answers; no labelled data is needed (labels, where the data has them,
serve only for reporting).

- The student has every stream the teacher has (or ``distill.streams``), with inference's
  preprocessing (:class:`train.datasets.StreamDataset`, cycling through fixed views:
  :class:`train.views.CycledViews`), and learns each stream's soft targets with the
  temperature-scaled KL of :func:`train.losses.distillation_loss`, on training views degraded
  by the paper's compound engine.
- The teacher runs once per (image, view), before the first epoch, and its outputs are cached on
  disk (:mod:`train.teacher_cache`); epochs, resumed runs and runs sharing the cache read them.
- The run goes through :func:`train.engine.drive`, like ``python -m train``: one run per folder,
  ``--resume auto`` refusing another config, data or teacher, atomic checkpoints and log, DDP
  under ``torchrun``.
- Every epoch reports the student's agreement with the teacher on held-out images
  (:mod:`train.agreement`), clean and under ``eval.degradations`` and the protocol levels of
  ``distill.protocol``; the export (:func:`train.export.export`, like every job's) is one weights
  folder with all streams, temperatures fitted against the teacher's probabilities
  (:mod:`train.distill_card`) and a model card.

Targets from the degraded or the clean image (``distill.targets``): with ``degraded`` (the
default) the teacher sees the very view the student sees; with ``clean`` it sees the undegraded
original, once per image. Consistent targets (Beyer et al., "Knowledge distillation: a good teacher
is patient and consistent", CVPR 2022) are a function of the student's input, which it can learn;
the measured comparison (the student follows the teacher more closely with ``degraded`` at every
level, ``clean`` gives a student more robust than its teacher but no longer a copy of it) is in the
README and ``bench/RESULTS.md`` (2026-11-27).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from forensic.calibration import apply_temperature
from forensic.config import ModelConfig
from forensic.data import DataError
from forensic.model import ForensicModel
from forensic.precision import autocast

from . import rundir
from ._json import jsonable
from .agreement import agreement, ensemble_votes, stream_probs
from .config import ConfigError, DistillConfig
from .datasets import StreamDataset, make_loader
from .distill_card import distillation_card_sections, fit_to_teacher, not_calibrated
from .distributed import DistInfo
from .engine import FitResult, drive
from .evaluate import predict
from .export import ExportReport, fmt
from .face_cache import ensure_faces
from .loop import StepLoss, make_optimizer, make_scheduler, optimise_epoch
from .losses import distillation_loss
from .modeling import build_training_model, check_bases, training_model_config
from .prepare import SplitData, face_detector_factory, scan_split, skipped_files
from .samples import expand_items
from .teacher import TeacherSource, resolve_teacher
from .teacher_cache import TeacherCache, TeacherPass, TeacherTargets
from .views import CLEAN, CycledViews, eval_sets, eval_views, sample_id, training_views

__all__ = ["distill", "DistillJob", "AllStreams", "distilled_streams"]

log = logging.getLogger(__name__)


def distill(cfg: DistillConfig, *, out: str | Path, info: DistInfo | None = None, overwrite: bool = False) -> FitResult:
    """Distils the teacher of ``cfg.distill`` into a student of ``cfg.model.preset``; (rank 0) writes
    checkpoints, ``log.jsonl``, the teacher cache and the export.

    Works unchanged as one process or under ``torchrun``.

    Raises:
        train.config.ConfigError: no teacher, or streams the teacher lacks.
        forensic.data.DataError: unusable data.
        train.rundir.RunFolderError: ``out`` or the checkpoint belongs to another run (or teacher).
        train.checkpoint.CheckpointError: the checkpoint cannot be read.
        forensic.weights.WeightsUnavailable: the teacher's or the student's base weights cannot be had.
    """
    if not isinstance(cfg, DistillConfig):
        raise TypeError("distill() takes a DistillConfig: load_config(..., kind=DistillConfig)")
    run = _DistillRun()
    return drive(cfg, out=out, info=info, overwrite=overwrite, prepare=run.prepare, build=run.build)


def distilled_streams(cfg: DistillConfig, teacher: ModelConfig) -> tuple[str, ...]:
    """``distill.streams``, or every stream of the teacher, in the teacher's order.

    Raises:
        ConfigError: a stream the teacher does not have.
    """
    wanted = cfg.distill.streams or teacher.stream_names
    lacking = [s for s in wanted if s not in teacher.stream_names]
    if lacking:
        raise ConfigError(f"distill.streams: the teacher has no {', '.join(lacking)} stream (it has {', '.join(teacher.stream_names)})")
    return tuple(s for s in teacher.stream_names if s in wanted)


class _DistillRun:
    """The two steps :func:`train.engine.drive` asks for; the teacher found in the first is used in the second."""

    def __init__(self) -> None:
        self.teacher: TeacherSource | None = None
        self.out: Path | None = None

    def prepare(self, cfg: DistillConfig, *, out: Path, info: DistInfo) -> tuple[SplitData, rundir.RunFingerprint]:
        self.out = out
        # everything that can fail without data first: the teacher (found, its files' headers checked),
        # its streams, the student's bases (a missing one would otherwise surface after the teacher pass)
        self.teacher = resolve_teacher(cfg.distill, info=info)
        check_bases(cfg, training_model_config(cfg, distilled_streams(cfg, self.teacher.config)))
        split = scan_split(cfg, out=out, info=info, labels="optional")
        if not split.split.train:
            raise DataError("no training images after the split: give more images or a smaller data.val_fraction")
        # the teacher is the run's labeller: another teacher is other data to a resume
        fingerprint = rundir.run_fingerprint(cfg, split.split, labeller={"teacher": self.teacher.fingerprint})
        return split, fingerprint

    def build(self, cfg: DistillConfig, split: SplitData, info: DistInfo) -> DistillJob:
        assert self.teacher is not None and self.out is not None
        cache = Path(cfg.distill.cache) if cfg.distill.cache else self.out / "teacher_cache"
        return DistillJob.build(cfg, split, info, teacher=self.teacher, cache=cache)


class AllStreams(nn.Module):
    """The student's streams in one forward call, ``{stream: x} -> {stream: logits}``, so DDP
    sees one forward (and all-reduces every stream's gradients once) per backward."""

    def __init__(self, model: ForensicModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: out.logits for name, out in self.model.forward_streams(inputs).items()}


@dataclass
class HeldOut:
    """One held-out set: the student's inputs, the teacher's (calibrated) logits, labels and face fallbacks."""

    name: str
    dataset: StreamDataset
    loader: DataLoader
    teacher: np.ndarray  # (N, S, 2) teacher logits divided by its temperatures
    labels: np.ndarray
    face_fallback: np.ndarray


@dataclass
class DistillJob:
    """Distilling a teacher's streams into a student (a :class:`train.engine.Job`)."""

    label: str
    streams: tuple[str, ...]
    teacher: TeacherSource
    split: SplitData
    model: ForensicModel
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_set: StreamDataset
    train_loader: DataLoader
    train_targets: torch.Tensor  # (N, views or 1, S, 2) calibrated teacher logits
    held_out: dict[str, HeldOut]
    teacher_pass: TeacherPass
    cache: TeacherCache
    temperature: float
    clean_targets: bool = False

    # ------------------------------------------------------------------------------- building
    @classmethod
    def build(cls, cfg: DistillConfig, split: SplitData, info: DistInfo, *, teacher: TeacherSource, cache: Path) -> DistillJob:
        """Data sets (faces detected), the teacher's targets (computed where the cache lacks them),
        the student, its optimizer and loaders."""
        streams = distilled_streams(cfg, teacher.config)
        student_config = training_model_config(cfg, streams)
        train_set, val_sets = _datasets(cfg, split, student_config, teacher.config, info)
        targets = TeacherTargets(cfg, teacher, streams, TeacherCache(cache), info)
        teacher_pass = targets.fill(train_set, val_sets)

        loader_kw = {"seed": cfg.seed, "info": info, "num_workers": cfg.data.num_workers}
        eval_bs = cfg.data.eval_batch_size or cfg.data.batch_size
        held_out = {
            name: HeldOut(
                name=name, dataset=ds, loader=make_loader(ds, batch_size=eval_bs, shuffle=False, **loader_kw),
                teacher=targets.held_out(ds).numpy().astype(np.float64),
                labels=np.array([-1 if s.label is None else s.label for s in ds.samples]), face_fallback=ds.face_fallbacks(),
            )
            for name, ds in val_sets.items()
        }
        train_loader = make_loader(train_set, batch_size=cfg.data.batch_size, shuffle=True, **loader_kw)

        model = build_training_model(cfg, student_config, device=info.device)
        optimizer = make_optimizer(model, streams, cfg)
        net: nn.Module = AllStreams(model)
        if info.distributed:  # only the streams' adapters and heads require grad, so only they are all-reduced
            net = DistributedDataParallel(net, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        return cls(
            label="distill:" + "+".join(streams), streams=streams, teacher=teacher, split=split, model=model, net=net,
            optimizer=optimizer, scheduler=make_scheduler(optimizer, cfg, len(train_loader)), train_set=train_set,
            train_loader=train_loader, train_targets=targets.training(train_set), held_out=held_out, teacher_pass=teacher_pass,
            cache=targets.cache, temperature=cfg.distill.temperature, clean_targets=targets.clean,
        )

    # ------------------------------------------------------------------------------- the Job protocol
    @property
    def has_validation(self) -> bool:
        return bool(self.held_out)

    def stream_state(self) -> dict[str, torch.Tensor]:
        return {f"{s}/{k}": v for s in self.streams for k, v in self.model.stream_state_dict(s).items()}

    def load_stream_state(self, state: Mapping[str, torch.Tensor]) -> None:
        for s in self.streams:
            prefix = f"{s}/"
            self.model.load_stream_state_dict(s, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def _loss(self, net: nn.Module, batch: Mapping[str, Any], device: torch.device, precision: str) -> StepLoss:
        x = {s: batch["x"][s].to(device, non_blocking=True) for s in self.streams}
        views = torch.zeros_like(batch["view"]) if self.clean_targets else batch["view"]
        targets = self.train_targets[batch["index"], views].to(device, non_blocking=True)  # (B, S, 2)
        with autocast(device, precision):
            logits = net(x)
        parts = {s: distillation_loss(logits[s], targets[:, j], temperature=self.temperature) for j, s in enumerate(self.streams)}
        loss = torch.stack(list(parts.values())).mean()
        return StepLoss(loss, len(views), {s: float(v.detach()) for s, v in parts.items()})

    def train_epoch(self, cfg: DistillConfig, info: DistInfo, epoch: int) -> dict[str, Any]:
        self.train_set.set_epoch(epoch)
        self.train_loader.sampler.set_epoch(epoch)
        return optimise_epoch(
            self.net, self.model, self.train_loader, optimizer=self.optimizer, scheduler=self.scheduler, cfg=cfg, info=info,
            loss_fn=lambda net, batch: self._loss(net, batch, info.device, cfg.precision), desc=f"epoch {epoch + 1}/{cfg.epochs}",
        )

    def validate(self, cfg: DistillConfig, info: DistInfo) -> tuple[dict[str, dict[str, Any]], float]:
        """Agreement with the teacher on every held-out set (the student uncalibrated); the score is the clean Pearson."""
        figures = {name: self._agreement(h, self._student_logits(h, info=info, precision=cfg.precision), {})
                   for name, h in self.held_out.items()}
        return figures, figures[CLEAN]["pearson"]

    def _student_logits(self, held: HeldOut, *, info: DistInfo, precision: str, loader: DataLoader | None = None) -> np.ndarray:
        return predict(self.model, loader or held.loader, streams=self.streams, info=info, precision=precision)[2]

    def _agreement(self, held: HeldOut, logits: np.ndarray, temperatures: Mapping[str, float]) -> dict[str, Any]:
        figures = agreement(
            stream_probs(logits, self.streams, temperatures), stream_probs(held.teacher, self.streams, {}),
            config=self.model.config.vote, face_fallback=held.face_fallback, labels=held.labels,
        )
        scaled = torch.from_numpy(logits / np.array([temperatures.get(s, 1.0) for s in self.streams])[:, None])
        figures["kd_loss"] = float(np.mean([
            float(distillation_loss(scaled[:, j], torch.from_numpy(held.teacher[:, j]), temperature=self.temperature))
            for j in range(len(self.streams))
        ])) if len(logits) else math.nan
        return figures

    def start_fields(self, cfg: DistillConfig, info: DistInfo) -> dict[str, Any]:
        split = self.split
        return {
            "kind": "distill", "streams": list(self.streams), "preset": cfg.model.preset,
            "teacher": {"ref": self.teacher.ref, "preset": self.teacher.config.preset, "fingerprint": self.teacher.fingerprint,
                        "streams": list(self.teacher.config.stream_names),
                        "temperatures": {s: self.teacher.config.stream(s).temperature for s in self.streams}},
            "targets": cfg.distill.targets,
            "data": {**split.split.counts(), "split_by": split.split.split_by, "train_items": len(self.train_set),
                     "views": cfg.distill.views, "held_out_sets": list(self.held_out),
                     "val_items": len(next(iter(self.held_out.values())).dataset) if self.held_out else 0,
                     "skipped": len(split.skipped), "skipped_files": skipped_files(split.skipped)},
            "teacher_pass": {**self.teacher_pass.to_dict(), "cache": str(self.cache.folder), "cache_bytes": self.cache.disk_bytes()},
            "trainable_parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
        }

    def metrics_line(self, epoch: int, epochs: int, record: Mapping[str, Any]) -> str:
        parts = [f"epoch {epoch}/{epochs}", f"kd loss {record['train_loss']:.4f}"]
        for name, m in (record.get("val") or {}).items():
            text = f"{'val' if name == CLEAN else name} r {fmt(m['pearson'], 3)} vote {m['vote_agreement']:.3f}"
            if not math.isnan(m["auc"]):
                text += f" auc {m['auc']:.3f} (teacher {fmt(m['teacher_auc'], 3)})"
            parts.append(text)
        parts.append(f"{record['time_s']:.1f}s")
        return " | ".join(parts)

    def report(self, cfg: DistillConfig, *, info: DistInfo, best_epoch: int, world_size: int) -> ExportReport:
        """Held-out outputs of the best student -> temperatures fitted to the teacher -> agreement figures."""
        eval_bs = cfg.data.eval_batch_size or cfg.data.batch_size
        logits = {
            name: self._student_logits(h, info=info, precision=cfg.precision, loader=make_loader(
                h.dataset, batch_size=eval_bs, shuffle=False, seed=cfg.seed, info=info, num_workers=cfg.data.num_workers))
            for name, h in self.held_out.items()
        }
        clean = self.held_out.get(CLEAN)
        calibration = {
            s: (not_calibrated("export.calibrate is false") if not cfg.export.calibrate
                else not_calibrated("no held-out images") if clean is None
                else fit_to_teacher(logits[CLEAN][:, j], apply_temperature(clean.teacher[:, j], 1.0)))
            for j, s in enumerate(self.streams)
        }
        temperatures = {s: c["temperature"] for s, c in calibration.items()}
        figures = {name: self._agreement(h, logits[name], temperatures) for name, h in self.held_out.items()}
        short = {name: _short(m) for name, m in figures.items()}
        teacher = self.teacher
        meta = {
            "teacher": teacher.ref, "teacher_preset": teacher.config.preset, "teacher_fingerprint": teacher.fingerprint,
            "streams": list(self.streams), "targets": cfg.distill.targets, "kd_temperature": cfg.distill.temperature,
            "views": cfg.distill.views, "best_epoch": best_epoch, "epochs": cfg.epochs, "world_size": world_size,
            "data": self.split.split.counts(), "temperatures": temperatures, "calibration": calibration,
            "agreement": short, "config": cfg.replace(resume=None).to_dict(),
        }
        extra: dict[str, Any] = {"distilled_from": teacher.ref, "teacher_preset": teacher.config.preset,
                                 "metrics": ["pearson_with_teacher", "vote_agreement_with_teacher", "roc_auc"]}
        clean_pearson = figures.get(CLEAN, {}).get("pearson")
        if clean_pearson is not None and not math.isnan(clean_pearson):
            extra["pearson_with_teacher"] = round(float(clean_pearson), 4)
        return ExportReport(
            temperatures=temperatures,
            summary={"kind": "distill", "streams": list(self.streams), "teacher": teacher.ref, "teacher_fingerprint": teacher.fingerprint,
                     "targets": cfg.distill.targets, "best_epoch": best_epoch, "temperatures": temperatures,
                     "calibration": calibration, "agreement": figures},
            predictions=self._predictions(logits, temperatures),
            meta_key="distillation", meta=meta,
            description=(f"A `{cfg.model.preset}` student distilled from the `{teacher.config.preset}` teacher "
                         f"{teacher.ref} with `python -m train distill` on {len(self.split.split.train)} images."),
            sections=distillation_card_sections(cfg, split=self.split, teacher=teacher, streams=self.streams, figures=figures,
                                                calibration=calibration, best_epoch=best_epoch, world_size=world_size),
            card_metadata=extra, final_metrics=short,
            commit_message=f"Upload a {cfg.model.preset} student distilled with python -m train distill",
        )

    def _predictions(self, logits: Mapping[str, np.ndarray], temperatures: Mapping[str, float]) -> Iterator[dict[str, Any]]:
        """Per held-out image and set: the student's and the teacher's P(fake), vote and streams."""
        vote_config = self.model.config.vote
        for name, held in self.held_out.items():
            student, teacher = stream_probs(logits[name], self.streams, temperatures), stream_probs(held.teacher, self.streams, {})
            (ps, gs), (pt, gt) = ensemble_votes(student, vote_config, held.face_fallback), ensemble_votes(teacher, vote_config, held.face_fallback)
            for i, sample in enumerate(held.dataset.samples):
                yield {
                    "set": name, "path": str(sample.path), "label": None if sample.label is None else int(sample.label),
                    "student": {"prob_fake": float(ps[i]), "vote": float(gs[i]), "streams": {s: float(student[s][i]) for s in self.streams}},
                    "teacher": {"prob_fake": float(pt[i]), "vote": float(gt[i]), "streams": {s: float(teacher[s][i]) for s in self.streams}},
                }


def _datasets(
    cfg: DistillConfig, split: SplitData, student: ModelConfig, teacher: ModelConfig, info: DistInfo
) -> tuple[StreamDataset, dict[str, StreamDataset]]:
    """The training views and the held-out sets, with the faces they need detected (and cached)."""
    # the teacher runs all its streams (one batched pass), so its face stream needs faces too
    needs_faces = any(s.input == "face-crop" for s in (*student.streams, *teacher.streams))
    root = rundir.data_root(cfg)
    train_ids = [sample_id(s, root) for s in split.split.train]
    train_set = StreamDataset(expand_items(split.split.train, pseudo_fakes=False), student, needs_faces=needs_faces,
                              views=CycledViews.of(training_views(train_ids, cfg), ids=train_ids))
    val_ids = [sample_id(s, root) for s in split.split.val]
    val_items = expand_items(split.split.val, pseudo_fakes=False)
    val_sets = {
        name: StreamDataset(val_items, student, needs_faces=needs_faces,
                            views=CycledViews.of(eval_views(val_ids, spec, cfg.eval.seed), faces_on_view=True))
        for name, spec in (eval_sets(cfg).items() if split.split.val else ())
    }
    if needs_faces:
        ran = ensure_faces([train_set, *val_sets.values()], split.cache, info=info,
                           detector_factory=face_detector_factory(cfg, info), progress=cfg.progress)
        if ran:
            log.info("detected faces on %d images (cached in %s)", ran, split.cache.path)
    return train_set, val_sets


def _short(figures: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("n", "pearson", "vote_agreement", "label_agreement", "mae", "auc", "teacher_auc")
    return {k: jsonable(figures.get(k)) for k in keys}
