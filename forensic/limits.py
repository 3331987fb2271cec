"""What an analysis can and cannot tell you: one text, rendered by the page, the report file and the model card.

:func:`limits_of` reads what the weights say about themselves (the ``meta`` that ``python -m
train`` or ``train distill`` writes into ``config.json``; for the ``paper`` preset's converted
checkpoints, what the authors published: :data:`forensic.presets.PAPER_PUBLISHED`) and adds the
method's known limits. Nothing is invented: a figure the weights do not record is "not measured
for these weights". Given the report of one analysis, it also marks the limits that apply to that
image (no face found, a large photo whose centre crop the texture stream saw, a compound
degradation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .presets import PRESETS

if TYPE_CHECKING:  # pragma: no cover
    from .config import ModelConfig
    from .report import Report

__all__ = ["Limit", "Limits", "limits_of", "TITLE", "NOT_MEASURED", "UNTRAINED_FACTS"]

TITLE = "What this can and cannot tell you"
NOT_MEASURED = "not measured for these weights."
UNTRAINED_FACTS = ("untrained random weights: nothing.", "none: the weights are random.", "none: the weights are random.")


@dataclass(frozen=True)
class Limit:
    """One thing a result does not mean.

    Attributes:
        topic: a few words (``Evidence, not proof``, ``No face``, ...).
        text: one or two sentences.
        here: what it means for the image analysed, when it applies to it (else None).
    """

    topic: str
    text: str
    here: str | None = None


@dataclass(frozen=True)
class Limits:
    """The detector's facts (from its weights) and the method's limits (some applying to this image)."""

    trained_on: str
    validation: str
    calibration: str
    limits: tuple[Limit, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"trained_on": self.trained_on, "validation": self.validation, "calibration": self.calibration,
                "limits": [{"topic": x.topic, "text": x.text, "here": x.here} for x in self.limits]}

    def markdown(self) -> str:
        """The same text as a Markdown list (the model card's section)."""
        lines = [f"- **Trained on**: {self.trained_on}", f"- **Validation**: {self.validation}",
                 f"- **Calibration**: {self.calibration}"]
        lines += [f"- **{x.topic}**: {x.text}" for x in self.limits]
        return "\n".join(lines)


def _fig(x: Any, digits: int = 3) -> str | None:
    return None if not isinstance(x, (int, float)) or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _counts(data: Mapping[str, Any] | None, part: str) -> str | None:
    c = (data or {}).get(part) or {}
    if not c:
        return None
    words = [f"{c[k]} {k}" for k in ("real", "fake", "unlabelled") if c.get(k)]
    return ", ".join(words) if words else None


def _training(stream: str, meta: Mapping[str, Any]) -> tuple[str, str, str]:
    data = meta.get("data") or {}
    source = ((meta.get("config") or {}).get("data") or {}).get("path")
    where = f" from `{Path(str(source)).name}`" if source else ""
    pseudo = " (+ self-blended pseudo-fakes)" if meta.get("pseudo_fakes") else ""
    trained = f"{stream}: {_counts(data, 'train') or 'an unrecorded number of'} images{where}{pseudo}"
    figures = []
    for name, m in (meta.get("metrics") or {}).items():
        parts = [f"{k.upper()} {v}" for k in ("auc", "accuracy", "eer") if (v := _fig((m or {}).get(k))) is not None]
        if parts:
            figures.append(f"{', '.join(parts)} on {name}")
    held = _counts(data, "val")
    validation = (f"{stream}: {'; '.join(figures)}" + (f" ({held} held-out images, same source as training)" if held else "")
                  if figures else "")
    cal = meta.get("calibration")
    if cal and cal.get("fitted"):
        before, after = _fig(cal.get("ece_before")), _fig(cal.get("ece_after"))
        ece = f", ECE {before} -> {after} on the same images (optimistic)" if before and after else ""
        calibration = f"{stream}: temperature T = {float(cal['temperature']):.3g} fitted on the validation images{ece}"
    elif cal:
        calibration = f"{stream}: not calibrated (T = 1): {cal.get('note') or 'no fit'}"
    else:
        calibration = f"{stream}: not calibrated (T = {float(meta.get('temperature', 1.0)):.3g})"
    return trained, validation, calibration


def _distillation(meta: Mapping[str, Any]) -> tuple[str, str, str]:
    streams = ", ".join(meta.get("streams") or []) or "its streams"
    trained = (f"{streams}: distilled from the teacher `{meta.get('teacher')}` (preset {meta.get('teacher_preset')}) "
               f"on {_counts(meta.get('data'), 'train') or 'an unrecorded number of'} images, without labels")
    figures = []
    for name, m in (meta.get("agreement") or {}).items():
        parts = [f"{label} {v}" for key, label in (("pearson", "Pearson with the teacher"), ("auc", "AUC"))
                 if (v := _fig((m or {}).get(key))) is not None]
        if parts:
            figures.append(f"{', '.join(parts)} on {name}")
    cal = {s: c for s, c in (meta.get("calibration") or {}).items() if c}
    fitted = {s: c for s, c in cal.items() if c.get("fitted")}
    temps = ", ".join(f"{s} T = {float(c['temperature']):.3g}" for s, c in fitted.items())
    calibration = f"temperatures fitted to the teacher's P(fake) ({temps})" if fitted else "not calibrated (T = 1)"
    return trained, "; ".join(figures), calibration


def _facts(config: ModelConfig) -> tuple[str, str, str]:
    """(trained on, validation, calibration) as the weights state them."""
    if config.untrained:
        return UNTRAINED_FACTS
    meta = dict(config.meta)
    published = PRESETS[config.preset].published if config.preset in PRESETS else None
    if published is not None and any(k.startswith("converted_") for k in meta):
        return published.trained_on, published.validation, published.calibration
    runs: list[tuple[str, str, str]] = []
    if "training" in meta:
        runs.append(_training(meta["training"].get("stream", "the model"), meta["training"]))
    if "distillation" in meta:
        runs.append(_distillation(meta["distillation"]))
    for name, sub in (meta.get("streams") or {}).items():  # a merged folder: each stream's own run
        if isinstance(sub, Mapping) and "training" in sub:
            runs.append(_training(name, sub["training"]))
        elif isinstance(sub, Mapping) and "distillation" in sub:
            runs.append(_distillation(sub["distillation"]))
    if not runs:
        temps = {s.name: s.temperature for s in config.streams}
        calibration = ("no temperature recorded as fitted (T = 1): P(fake) is the model's own softmax."
                       if all(t == 1 for t in temps.values())
                       else f"temperatures {', '.join(f'{k} {v:g}' for k, v in temps.items())}; how they were fitted is not recorded.")
        return "not stated by these weights (their config.json records no training run).", NOT_MEASURED, calibration
    trained = "; ".join(r[0] for r in runs) + "."
    validation = "; ".join(r[1] for r in runs if r[1])
    return trained, (validation + "." if validation else NOT_MEASURED), "; ".join(r[2] for r in runs) + "."


def _texture_here(config: ModelConfig, report: Report | None) -> tuple[int, str | None]:
    size = next((s.size for s in config.streams if s.input == "center-crop"), 252)
    if report is None:
        return size, None
    w, h = report.image_size
    if w * h == 0:
        return size, None
    share = min(size, w) * min(size, h) / float(w * h)
    if share >= 0.5:
        return size, None
    return size, f"this image is {w}x{h}: the texture stream saw {share:.0%} of it."


def limits_of(config: ModelConfig, report: Report | None = None) -> Limits:
    """What a result of the model ``config`` describes can and cannot tell you; with ``report``, the
    limits that apply to its image say so (``Limit.here``)."""
    trained_on, validation, calibration = _facts(config)
    size, crop_here = _texture_here(config, report)
    no_face = report is not None and report.face.mode == "no-face" and "face" in report.streams
    applied = report.degradation.applied if report is not None and report.degradation is not None else ()
    steps = [a for a in applied if a.get("stage") != "final"]  # the resize back to the input size is no edit
    limits = (
        Limit("Evidence, not proof", "a vote weighs the detector's evidence; it never proves an image real or fake. "
              "Weigh it with the source, the context and the provenance hints."),
        Limit("No face", "out of scope: the detector was trained on faces, so an image without one gets no verdict "
              "(the app's \"Vote even without a face\" or the CLI's --vote-without-face asks for one anyway).",
              "no face was found in this image." if no_face else None),
        Limit("Large photos", f"the texture stream sees only the central {size}x{size} pixels at native resolution, "
              "which on a large photo may miss the face.", crop_here),
        Limit("Compound or unknown degradations", "several edits in a row, or ones never seen in training (platform "
              "re-encoding, filters), can move P(fake) either way; the lab shows how far for one image.",
              f"this analysis applied {len(steps)} degradation steps in a row." if len(steps) > 1 else None),
        Limit("Unseen generators", "fakes made by generators or editing tools not seen in training can go undetected, "
              "and real photos from unusual cameras can be flagged."),
    )
    return Limits(trained_on, validation, calibration, limits)
