"""After distillation: temperatures fitted against the teacher, agreement figures, one weights folder.

``OUT/export`` holds every distilled stream in our weights format (ready for
``python -m forensic predict --weights OUT/export`` and the app's ``--weights``), each stream's
temperature fitted so that the student's P(fake) matches the *teacher's* P(fake) on the clean
held-out images (the student has no labels to calibrate against, and the teacher's probabilities
are what it imitates), and a model card naming the teacher, the data and the agreement figures.
``OUT/metrics.json`` and ``OUT/val_predictions.jsonl`` hold the same figures and every held-out
image's probabilities (student and teacher).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_expit

from forensic.calibration import MIN_CALIBRATION_SAMPLES, TEMPERATURE_RANGE, apply_temperature
from forensic.modelcard import render_model_card
from forensic.weights import push_to_hub, save_pretrained

from ._io import atomic_write, atomic_write_text, replace_dir
from ._json import jsonable
from .agreement import ensemble_prob, grid_votes, stream_probs
from .checkpoint import checkpoint_dir, load_checkpoint
from .distill_data import CLEAN
from .distributed import DistInfo

if TYPE_CHECKING:
    from .config import DistillConfig
    from .distill import DistillJob
    from .engine import FitResult
    from .rundir import RunFingerprint

__all__ = ["SoftCalibration", "fit_soft_temperature", "export_distilled", "distillation_card_sections"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class SoftCalibration:
    """A stream's temperature fitted against the teacher's P(fake) (soft targets), and what it changed.

    Attributes:
        temperature: the fitted T (within :data:`forensic.calibration.TEMPERATURE_RANGE`), or 1.
        fitted: False when T was kept at 1 (see ``note``).
        note: why T was kept at 1, or that the fit ended on a bound.
        n: held-out images it was fitted on.
        ce_before, ce_after: cross-entropy of the student's P(fake) against the teacher's, at T = 1 and T.
        mae_before, mae_after: mean |student P(fake) - teacher P(fake)| at T = 1 and T.
    """

    temperature: float
    fitted: bool
    note: str | None
    n: int
    ce_before: float
    ce_after: float
    mae_before: float
    mae_after: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _soft_ce(margin: np.ndarray, target: np.ndarray, temperature: float) -> float:
    z = margin / temperature
    return float(-np.mean(target * log_expit(z) + (1.0 - target) * log_expit(-z)))


def fit_soft_temperature(logits: np.ndarray, target_prob: np.ndarray) -> SoftCalibration:
    """The temperature that makes ``softmax(logits / T)`` closest (cross-entropy) to ``target_prob``.

    Soft-target temperature scaling: :func:`forensic.calibration.fit_temperature` takes 0/1 labels,
    distillation has the teacher's probabilities instead. The same rules hold: T within
    ``TEMPERATURE_RANGE``, and T = 1 (with the reason) on fewer than ``MIN_CALIBRATION_SAMPLES``
    images or when every margin is zero.
    """
    z = np.asarray(logits, dtype=np.float64)
    q = np.clip(np.asarray(target_prob, dtype=np.float64), 0.0, 1.0)
    n = int(len(q))
    margin = z[:, 1] - z[:, 0] if n else np.zeros(0)
    low, high = TEMPERATURE_RANGE
    note = None
    if n < MIN_CALIBRATION_SAMPLES:
        note = f"the held-out set is too small to fit a temperature ({n} images; needs {MIN_CALIBRATION_SAMPLES})"
    elif not np.any(margin):
        note = "all held-out logit margins are zero (every temperature gives the same scores)"
    if note is not None:
        log.warning("temperature kept at 1: %s", note)
        if not n:
            return SoftCalibration(1.0, False, note, 0, math.nan, math.nan, math.nan, math.nan)
        temperature = 1.0
    else:
        found = minimize_scalar(lambda log_t: _soft_ce(margin, q, math.exp(log_t)), bounds=(math.log(low), math.log(high)),
                                method="bounded", options={"xatol": 1e-6})
        temperature = float(min(high, max(low, math.exp(found.x))))
        if temperature <= low * 1.01 or temperature >= high / 1.01:
            note = f"the fit ended on the bound T = {temperature:.3g} of the allowed range [{low:g}, {high:g}]"
    before, after = apply_temperature(z, 1.0), apply_temperature(z, temperature)
    return SoftCalibration(
        temperature=temperature, fitted=note is None or note.startswith("the fit ended"), note=note, n=n,
        ce_before=_soft_ce(margin, q, 1.0), ce_after=_soft_ce(margin, q, temperature),
        mae_before=float(np.mean(np.abs(before - q))), mae_after=float(np.mean(np.abs(after - q))),
    )


# --------------------------------------------------------------------------------- the export
def export_distilled(
    job: DistillJob, cfg: DistillConfig, *, out: Path, info: DistInfo, result: FitResult, fingerprint: RunFingerprint | None = None
) -> Path:
    """Rank 0 after the last epoch: best weights -> held-out outputs -> temperatures -> ``OUT/export``.

    Raises:
        train.rundir.RunFolderError: ``best.pt`` belongs to another run than ``fingerprint``.
    """
    from .rundir import RunFolderError

    best = checkpoint_dir(out) / "best.pt"
    if best.is_file():
        state = load_checkpoint(best)
        if fingerprint is not None and state.config_hash and (state.config_hash, state.data_hash) != (
            fingerprint.config_hash, fingerprint.data_hash,
        ):
            raise RunFolderError(f"{best} belongs to another run: start a new run with --overwrite (or another --out)")
        job.load_stream_state(state.stream_state)
    solo = DistInfo(device=info.device)  # rank 0 alone: no collectives
    logits = {name: job.student_logits(h, info=solo, precision=cfg.precision, loader=job.solo_loader(h, cfg, solo))
              for name, h in job.held_out.items()}
    calibration: dict[str, SoftCalibration] = {}
    clean = job.held_out.get(CLEAN)
    for j, stream in enumerate(job.streams):
        if not cfg.export.calibrate:
            calibration[stream] = SoftCalibration(1.0, False, "export.calibrate is false", 0, math.nan, math.nan, math.nan, math.nan)
        elif clean is None:
            calibration[stream] = SoftCalibration(1.0, False, "no held-out images", 0, math.nan, math.nan, math.nan, math.nan)
        else:
            calibration[stream] = fit_soft_temperature(logits[CLEAN][:, j], apply_temperature(clean.teacher[:, j], 1.0))
    temperatures = {s: c.temperature for s, c in calibration.items()}
    figures = {name: job.agreement(h, logits[name], temperatures) for name, h in job.held_out.items()}
    atomic_write(out / "val_predictions.jsonl", lambda f: _write_predictions(f, job, logits, temperatures))
    summary = {
        "kind": "distill", "streams": list(job.streams), "teacher": job.teacher.ref, "teacher_fingerprint": job.teacher.fingerprint,
        "targets": cfg.distill.targets, "best_epoch": result.best_epoch, "temperatures": temperatures,
        "calibration": {s: c.to_dict() for s, c in calibration.items()}, "agreement": figures,
    }
    atomic_write_text(out / "metrics.json", json.dumps(jsonable(summary), indent=2) + "\n")

    model = job.model
    config = model.config
    for stream, t in temperatures.items():
        config = config.with_stream(dataclasses.replace(config.stream(stream), temperature=float(t)))
    n_train = len(job.split.split.train)
    distillation = {
        "teacher": job.teacher.ref, "teacher_preset": job.teacher.config.preset, "teacher_fingerprint": job.teacher.fingerprint,
        "streams": list(job.streams), "targets": cfg.distill.targets, "kd_temperature": cfg.distill.temperature,
        "views": cfg.distill.views, "best_epoch": result.best_epoch, "epochs": cfg.epochs, "world_size": info.world_size,
        "data": job.split.split.counts(), "temperatures": temperatures,
        "calibration": {s: c.to_dict() for s, c in calibration.items()},
        "agreement": {name: _short(m) for name, m in figures.items()}, "config": cfg.replace(resume=None).to_dict(),
    }
    config = config.replace(
        untrained=False,
        description=(f"A `{cfg.model.preset}` student distilled from the `{job.teacher.config.preset}` teacher "
                     f"{job.teacher.ref} with `python -m train distill` on {n_train} images."),
        meta={**dict(config.meta), "distillation": jsonable(distillation)},
    )
    sections = distillation_card_sections(job, cfg, figures=figures, calibration=calibration, result=result, world_size=info.world_size)
    extra = {"distilled_from": job.teacher.ref, "teacher_preset": job.teacher.config.preset,
             "metrics": ["pearson_with_teacher", "vote_agreement_with_teacher", "roc_auc"]}
    clean_figures = figures.get(CLEAN, {})
    if clean_figures.get("pearson") is not None and not math.isnan(clean_figures["pearson"]):
        extra["pearson_with_teacher"] = round(float(clean_figures["pearson"]), 4)
    card = render_model_card(config, sections=sections, extra_metadata=extra)
    export_dir = replace_dir(out / "export", lambda staging: save_pretrained(model, staging, config=config, model_card=card))
    log.info("wrote %s (%s)", export_dir, ", ".join(f"{s} T={t:.4g}" for s, t in temperatures.items()))
    result.export_dir, result.temperatures = export_dir, temperatures
    result.final_metrics = {name: _short(m) for name, m in figures.items()}
    if cfg.export.push_to_hub:
        url = push_to_hub(export_dir, cfg.export.push_to_hub, private=cfg.export.private,
                          commit_message=f"Upload a {cfg.model.preset} student distilled with python -m train distill")
        log.info("pushed %s to %s", export_dir, url)
    return export_dir


def _short(figures: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("n", "pearson", "vote_agreement", "label_agreement", "mae", "auc", "teacher_auc")
    return {k: (None if isinstance(figures.get(k), float) and math.isnan(figures[k]) else figures.get(k)) for k in keys}


def _write_predictions(f, job: DistillJob, logits: Mapping[str, np.ndarray], temperatures: Mapping[str, float]) -> None:
    for name, held in job.held_out.items():
        student = stream_probs(logits[name], job.streams, temperatures)
        teacher = stream_probs(held.teacher, job.streams, {})
        vote_config = job.model.config.vote
        ps, pt = ensemble_prob(student, vote_config, held.face_fallback), ensemble_prob(teacher, vote_config, held.face_fallback)
        gs, gt = grid_votes(student, vote_config, held.face_fallback), grid_votes(teacher, vote_config, held.face_fallback)
        for i, sample in enumerate(held.dataset.samples):
            f.write((json.dumps({
                "set": name, "path": str(sample.path), "label": None if sample.label is None else int(sample.label),
                "student": {"prob_fake": float(ps[i]), "vote": float(gs[i]), "streams": {s: float(student[s][i]) for s in job.streams}},
                "teacher": {"prob_fake": float(pt[i]), "vote": float(gt[i]), "streams": {s: float(teacher[s][i]) for s in job.streams}},
            }) + "\n").encode())


# --------------------------------------------------------------------------------- the model card
def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def distillation_card_sections(
    job: DistillJob,
    cfg: DistillConfig,
    *,
    figures: Mapping[str, Mapping[str, Any]],
    calibration: Mapping[str, SoftCalibration],
    result: FitResult,
    world_size: int,
) -> dict[str, str]:
    """The model card's sections: the teacher, the data, the recipe, agreement, calibration, limitations."""
    split = job.split.split
    counts = split.counts()
    source = Path(cfg.data.path).name if cfg.data.path else "?"

    def described(c: Mapping[str, int]) -> str:
        parts = [f"{c['real']} real", f"{c['fake']} fake"] if c["real"] or c["fake"] else []
        if c.get("unlabelled"):
            parts.append(f"{c['unlabelled']} unlabelled")
        return ", ".join(parts) or "none"

    teacher = job.teacher
    distillation = "\n".join([
        f"- Teacher: {teacher.describe()}.",
        f"- Student: preset `{cfg.model.preset}`, streams {', '.join(f'`{s}`' for s in job.streams)}; trained: {cfg.model.trainable} "
        "(LoRA on the frozen DINOv2 base + heads), from the teacher's outputs only (no labels).",
        f"- Targets: each stream's P(fake) from the teacher on the {'very degraded view the student sees' if cfg.distill.targets == 'degraded' else 'clean original of each view'} "
        f"(`distill.targets={cfg.distill.targets}`), divided by the teacher's temperature; loss: T^2 KL at T = {cfg.distill.temperature:g}.",
        f"- Views: {cfg.distill.views} per training image, each degraded by the paper's compound engine with probability "
        f"{cfg.augment.global_p:.0%} (strength {cfg.augment.strength:g}, op_p {cfg.augment.op_p:g}, per-op cap {cfg.augment.strength_cap:g}); "
        "the teacher ran once per image and view (cached).",
    ])
    data_text = "\n".join([
        f"- Source: `{source}` ({'CSV manifest' if str(cfg.data.path).endswith('.csv') else 'folder'}); "
        + (f"held out: a seeded {cfg.data.val_fraction:g} share" if split.split_by == "val_fraction" else "held out: the manifest's split") + ".",
        f"- Training: {len(split.train)} images ({described(counts['train'])}).",
        f"- Held out: {len(split.val)} images ({described(counts['val'])}); labels, where known, are used only for the AUC below.",
        *([f"- Left out: {len(job.split.skipped)} file(s) that cannot be read."] if job.split.skipped else []),
    ])
    recipe = "\n".join([
        f"- {cfg.epochs} epochs, batch {cfg.data.batch_size} x {world_size} process(es) x {cfg.optim.grad_accum} accumulation steps; "
        f"best epoch {result.best_epoch} (clean held-out Pearson with the teacher).",
        f"- {cfg.optim.name} lr {cfg.optim.lr:g}" + (f" (heads {cfg.optim.head_lr:g})" if cfg.optim.head_lr else "")
        + f", weight decay {cfg.optim.weight_decay:g}, linear warm-up {cfg.optim.warmup_fraction:g} then cosine.",
        f"- Seed {cfg.seed}; precision {cfg.precision}.",
    ])
    rows = ["| held-out set | images | Pearson P(fake) | 0.1-grid vote agreement | label agreement | mean abs. difference | student AUC | teacher AUC |",
            "|---|---|---|---|---|---|---|---|"]
    for name, m in figures.items():
        if not m.get("n"):
            continue
        rows.append(f"| {name} | {m['n']} | {_fmt(m['pearson'])} | {_fmt(m['vote_agreement'])} | {_fmt(m['label_agreement'])} | "
                    f"{_fmt(m['mae'])} | {_fmt(m['auc'])} | {_fmt(m['teacher_auc'])} |")
    per_stream = ["| held-out set | " + " | ".join(f"{s} Pearson" for s in job.streams) + " |", "|---|" + "---|" * len(job.streams)]
    for name, m in figures.items():
        if m.get("n"):
            per_stream.append(f"| {name} | " + " | ".join(_fmt(m["streams"][s]["pearson"]) for s in job.streams) + " |")
    agreement_text = (
        "The student's calibrated P(fake) against the teacher's on held-out images: Pearson of the vote-weighted "
        "ensemble P(fake), the share of identical 0.1-grid verdicts and of identical labels, and (where the held-out "
        "images have labels) each model's ROC AUC.\n\n" + "\n".join(rows) + "\n\n" + "\n".join(per_stream)
    )
    calib_lines = []
    for stream, c in calibration.items():
        if c.fitted:
            calib_lines.append(f"- `{stream}`: T = {c.temperature:.4g}; cross-entropy to the teacher's P(fake) "
                               f"{c.ce_before:.4f} -> {c.ce_after:.4f}, mean abs. difference {c.mae_before:.4f} -> {c.mae_after:.4f}"
                               + (f" ({c.note})" if c.note else "") + ".")
        else:
            calib_lines.append(f"- `{stream}`: not calibrated, temperature kept at 1, because {c.note}.")
    calib = ("Each stream's temperature is fitted on the clean held-out images against the teacher's P(fake) "
             "(the student imitates the teacher's probabilities; it has no labels to calibrate against):\n\n" + "\n".join(calib_lines))
    n_val = len(split.val)
    limits = [
        f"- Agreement was measured on {n_val} held-out images from the same source as the training images; on other "
        "photos, generators and post-processing the student can follow the teacher less closely.",
        "- The student inherits the teacher's errors and biases; it is at best as good as its teacher, and its AUC is "
        "only as meaningful as the held-out labels.",
        "- The temperatures were fitted and reported on the same held-out images, so the calibrated figures are optimistic.",
    ]
    if cfg.model.random_bases or cfg.model.preset == "tiny-random":
        limits.append("- The student's base backbones are random (not pretrained): a toy or smoke-test model, not a detector.")
    return {
        "Distillation": distillation,
        "Training data": data_text,
        "Training recipe": recipe,
        "Agreement with the teacher": agreement_text,
        "Calibration": calib,
        "Distillation limitations": "\n".join(limits),
    }
