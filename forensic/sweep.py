"""Robustness sweep of one image: a degradation family at strengths 0, 0.1, ..., 1.0.

For each strength: the verdict, each stream's P(fake), attention entropy and the cosine between
its pooled feature on the clean image and on the degraded one (the clean pass is computed once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .degrade import at_strength, degrade_result
from .ensemble import vote
from .explain.attention import attention_entropy
from .explain.similarity import cosine
from .images import load_image

__all__ = ["SweepResult", "robustness_sweep", "DEFAULT_STRENGTHS"]

DEFAULT_STRENGTHS = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass
class SweepResult:
    """Rows (one per strength) of a sweep; ``rows[i]`` is JSON-able."""

    family: str
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "seed": self.seed, "rows": self.rows}


def robustness_sweep(
    detector,
    image: Any,
    *,
    family: str = "compound",
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    seed: int = 0,
    keep_images: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> SweepResult:
    """Runs ``detector`` on ``image`` degraded by ``family`` (see :func:`forensic.degrade.at_strength`)."""
    pixels = load_image(image) if not isinstance(image, np.ndarray) else image
    result = SweepResult(family=family, seed=seed)
    clean = detector.run_streams(pixels)
    for i, strength in enumerate(strengths):
        if progress is not None:
            progress(f"{family} at strength {strength:g}", i / len(strengths))
        spec = at_strength(family, float(strength))
        degraded = pixels if spec is None else degrade_result(pixels, spec, seed=seed).image
        run = clean if spec is None else detector.run_streams(degraded)
        probs = {n: float(o.prob_fake[0]) for n, o in run.outputs.items()}
        verdict = vote(probs, detector.config.vote, face_fallback=run.face.mode != "crop")
        streams = {}
        for name, out in run.outputs.items():
            with torch.no_grad():
                stab = cosine(out.features[0].float(), clean.outputs[name].features[0].float())
            streams[name] = {
                "prob_fake": probs[name],
                "attention_entropy": attention_entropy(out.cls_attention[0]).normalized,
                "stability": stab,
            }
        result.rows.append(
            {
                "strength": float(strength),
                "spec": None if spec is None else str(spec),
                "prob_fake": verdict.prob_fake,
                "label": verdict.label,
                "face_mode": run.face.mode,
                "streams": streams,
            }
        )
        if keep_images:
            result.images.append(degraded)
    if progress is not None:
        progress("done", 1.0)
    return result
