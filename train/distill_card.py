"""What a distillation's export says: temperatures fitted against the teacher, and the model card's sections.

Each stream's temperature is fitted so that the student's P(fake) matches the *teacher's* P(fake)
on the clean held-out images (the student has no labels to calibrate against, and the teacher's
probabilities are what it imitates): :func:`forensic.calibration.fit_temperature` with the teacher's
probabilities as soft targets, under the rules of labelled calibration (T = 1, with the reason, on
too few images or all-zero margins; a note when the fit ends on a bound of the allowed range).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from forensic.calibration import MIN_CALIBRATION_SAMPLES, TEMPERATURE_RANGE, apply_temperature, fit_temperature, negative_log_likelihood

from .config import DistillConfig
from .export import fmt
from .prepare import SplitData
from .teacher import TeacherSource

__all__ = ["fit_to_teacher", "not_calibrated", "distillation_card_sections"]

log = logging.getLogger(__name__)


def not_calibrated(note: str, n: int = 0) -> dict[str, Any]:
    """The calibration record of a stream whose temperature stays 1, and why."""
    nan = math.nan
    return {"temperature": 1.0, "fitted": False, "note": note, "n": n, "ce_before": nan, "ce_after": nan, "mae_before": nan, "mae_after": nan}


def fit_to_teacher(logits: np.ndarray, teacher_prob: np.ndarray) -> dict[str, Any]:
    """The temperature that makes ``softmax(logits / T)`` closest (cross-entropy) to ``teacher_prob``, and what it changed.

    Returns:
        ``temperature``, ``fitted`` (False: kept at 1), ``note`` (why, or that the fit ended on a
        bound), ``n``, the cross-entropy to the teacher's P(fake) (``ce_before``, ``ce_after``) and
        the mean absolute difference from it (``mae_before``, ``mae_after``) at T = 1 and at T.
    """
    z = np.asarray(logits, dtype=np.float64)
    q = np.clip(np.asarray(teacher_prob, dtype=np.float64), 0.0, 1.0)
    n = len(q)
    low, high = TEMPERATURE_RANGE
    note = None
    if n < MIN_CALIBRATION_SAMPLES:
        note = f"the held-out set is too small to fit a temperature ({n} images; needs {MIN_CALIBRATION_SAMPLES})"
    elif not np.any(z[:, 1] - z[:, 0]):
        note = "all held-out logit margins are zero (every temperature gives the same scores)"
    elif np.all(q == q[0]) and q[0] in (0.0, 1.0):
        note = f"the teacher gives every held-out image P(fake) = {q[0]:g}"
    if note is not None:
        log.warning("temperature kept at 1: %s", note)
        if not n:
            return not_calibrated(note)
        temperature = 1.0
    else:
        temperature = fit_temperature(z, q)
        if temperature <= low * 1.01 or temperature >= high / 1.01:
            note = f"the fit ended on the bound T = {temperature:.3g} of the allowed range [{low:g}, {high:g}]"
    return {
        "temperature": temperature, "fitted": note is None or note.startswith("the fit ended"), "note": note, "n": n,
        "ce_before": negative_log_likelihood(z, q), "ce_after": negative_log_likelihood(z, q, temperature=temperature),
        "mae_before": float(np.mean(np.abs(apply_temperature(z, 1.0) - q))),
        "mae_after": float(np.mean(np.abs(apply_temperature(z, temperature) - q))),
    }


def distillation_card_sections(
    cfg: DistillConfig,
    *,
    split: SplitData,
    teacher: TeacherSource,
    streams: Sequence[str],
    figures: Mapping[str, Mapping[str, Any]],
    calibration: Mapping[str, Mapping[str, Any]],
    best_epoch: int,
    world_size: int,
) -> dict[str, str]:
    """The model card's sections: the teacher, the data, the recipe, agreement, calibration, limitations."""
    skipped = split.skipped
    split = split.split
    counts = split.counts()
    source = Path(cfg.data.path).name if cfg.data.path else "?"

    def described(c: Mapping[str, int]) -> str:
        parts = [f"{c['real']} real", f"{c['fake']} fake"] if c["real"] or c["fake"] else []
        if c.get("unlabelled"):
            parts.append(f"{c['unlabelled']} unlabelled")
        return ", ".join(parts) or "none"

    distillation = "\n".join([
        f"- Teacher: {teacher.describe()}.",
        f"- Student: preset `{cfg.model.preset}`, streams {', '.join(f'`{s}`' for s in streams)}; trained: {cfg.model.trainable} "
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
        *([f"- Left out: {len(skipped)} file(s) that cannot be read."] if skipped else []),
    ])
    recipe = "\n".join([
        f"- {cfg.epochs} epochs, batch {cfg.data.batch_size} x {world_size} process(es) x {cfg.optim.grad_accum} accumulation steps; "
        f"best epoch {best_epoch} (clean held-out Pearson with the teacher).",
        f"- {cfg.optim.name} lr {cfg.optim.lr:g}" + (f" (heads {cfg.optim.head_lr:g})" if cfg.optim.head_lr else "")
        + f", weight decay {cfg.optim.weight_decay:g}, linear warm-up {cfg.optim.warmup_fraction:g} then cosine.",
        f"- Seed {cfg.seed}; precision {cfg.precision}.",
    ])
    rows = ["| held-out set | images | Pearson P(fake) | 0.1-grid vote agreement | label agreement | mean abs. difference | student AUC | teacher AUC |",
            "|---|---|---|---|---|---|---|---|"]
    for name, m in figures.items():
        if not m.get("n"):
            continue
        rows.append(f"| {name} | {m['n']} | {fmt(m['pearson'], 3)} | {fmt(m['vote_agreement'], 3)} | {fmt(m['label_agreement'], 3)} | "
                    f"{fmt(m['mae'], 3)} | {fmt(m['auc'], 3)} | {fmt(m['teacher_auc'], 3)} |")
    per_stream = ["| held-out set | " + " | ".join(f"{s} Pearson" for s in streams) + " |", "|---|" + "---|" * len(streams)]
    for name, m in figures.items():
        if m.get("n"):
            per_stream.append(f"| {name} | " + " | ".join(fmt(m["streams"][s]["pearson"], 3) for s in streams) + " |")
    agreement_text = (
        "The student's calibrated P(fake) against the teacher's on held-out images: Pearson of the vote-weighted "
        "ensemble P(fake), the share of identical 0.1-grid verdicts and of identical labels, and (where the held-out "
        "images have labels) each model's ROC AUC.\n\n" + "\n".join(rows) + "\n\n" + "\n".join(per_stream)
    )
    calib_lines = []
    for stream, c in calibration.items():
        if c["fitted"]:
            calib_lines.append(f"- `{stream}`: T = {c['temperature']:.4g}; cross-entropy to the teacher's P(fake) "
                               f"{c['ce_before']:.4f} -> {c['ce_after']:.4f}, mean abs. difference {c['mae_before']:.4f} -> {c['mae_after']:.4f}"
                               + (f" ({c['note']})" if c["note"] else "") + ".")
        else:
            calib_lines.append(f"- `{stream}`: not calibrated, temperature kept at 1, because {c['note']}.")
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
