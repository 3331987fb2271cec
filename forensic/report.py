"""What an analysis returns: :class:`Report` and its parts. ``Report.to_dict()`` is JSON-able.

Arrays (the analysed image, stream inputs, maps in image coordinates) stay on the objects for the
UI and figures but are left out of ``to_dict()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ensemble import VoteResult
from .explain.attention import EntropyResult
from .explain.similarity import SimilarityMatrix
from .explain.types import CamResult
from .faces import FaceResult
from .provenance import Provenance
from .streams import StreamInput
from .verdict import Verdict, verdict_of

__all__ = ["StreamReport", "DegradationInfo", "Report", "error_record"]


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), digits)


@dataclass(frozen=True)
class StreamReport:
    """One stream's result on one image.

    Attributes:
        name: the stream.
        prob_fake: calibrated P(fake) (softmax of logits / temperature), full precision.
        vote_prob: ``prob_fake`` rounded to the vote's grid.
        weight: the weight it had in the vote (0 if it abstained).
        logits: the raw head logits (real, fake).
        input: what the stream saw and where in the image that is.
        attention: entropy of the last block's CLS attention (head-averaged).
        cam: its Score-CAM, if explanations were asked for (a fast map carries ``cam.fidelity``,
            its expected agreement with the exact map).
        cam_image: the Score-CAM in image coordinates (H, W) in [0, 1] (zero outside the region).
        cam_entropy: entropy of the Score-CAM over the token grid.
        stability: cosine between the clean and the degraded image's pooled feature, if degraded.
        cls: the DINOv2 CLS feature (for inter-stream similarity).
        features: the pooled feature the head saw.
    """

    name: str
    prob_fake: float
    vote_prob: float
    weight: float
    logits: tuple[float, float]
    input: StreamInput
    attention: EntropyResult | None = None
    cam: CamResult | None = None
    cam_image: np.ndarray | None = None
    cam_entropy: EntropyResult | None = None
    stability: float | None = None
    cls: np.ndarray | None = field(default=None, repr=False)
    features: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prob_fake": _num(self.prob_fake),
            "vote_prob": self.vote_prob,
            "weight": self.weight,
            "logits": [_num(v) for v in self.logits],
            "input": self.input.to_dict(),
            "attention_entropy": self.attention.to_dict() if self.attention else None,
            # method, passes, seconds and, for a fast map, its fidelity estimate (CamFidelity.to_dict)
            "cam": None if self.cam is None else self.cam.to_dict(),
            "cam_entropy": self.cam_entropy.to_dict() if self.cam_entropy else None,
            "stability": _num(self.stability),
        }


@dataclass(frozen=True)
class DegradationInfo:
    """The degradation applied before analysis."""

    spec: str | None
    compound: float | None
    seed: int
    applied: tuple[dict[str, Any], ...]
    psnr: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "compound": self.compound,
            "seed": self.seed,
            "applied": list(self.applied),
            "psnr": _num(self.psnr, 3),
        }


@dataclass(frozen=True)
class Report:
    """The result of analysing one image (:meth:`forensic.pipeline.Detector.run`) (immutable: an
    explanation makes a new report with ``dataclasses.replace``).

    Its :attr:`verdict` (and :attr:`label`) is what every output says about the image;
    ``vote_without_face=True`` gives the vote even when no face was found (see :mod:`forensic.verdict`)."""

    source: str | None
    prob_fake: float
    vote: VoteResult
    streams: dict[str, StreamReport]
    face: FaceResult
    preset: str
    untrained: bool
    weights: str | None
    device: str
    image_size: tuple[int, int]
    image_notes: tuple[str, ...] = ()
    degradation: DegradationInfo | None = None
    cam_similarity: SimilarityMatrix | None = None
    feature_similarity: SimilarityMatrix | None = None
    explain: str = "none"
    timings: dict[str, float] = field(default_factory=dict)
    #: the file's metadata hints (EXIF, C2PA): never part of the vote
    provenance: Provenance | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    original: np.ndarray | None = field(default=None, repr=False)
    #: the clean original's report, when a degraded image was analysed paired with it (not in to_dict)
    twin: Report | None = field(default=None, repr=False)
    #: give the vote even when no face was found (out of scope otherwise)
    vote_without_face: bool = False

    @property
    def verdict(self) -> Verdict:
        """The verdict every output renders (:func:`forensic.verdict.verdict_of`)."""
        no_face = self.face.mode == "no-face" and "face" in self.streams  # a model without a face stream never searched
        return verdict_of(self.prob_fake, threshold=self.vote.threshold, untrained=self.untrained, no_face=no_face,
                          vote_without_face=self.vote_without_face)

    @property
    def label(self) -> str | None:
        """``"fake"`` or ``"real"``, or None when no verdict is given (untrained weights, no face)."""
        return self.verdict.label

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``python -m forensic predict --format json`` (the README's "JSON output" section)."""
        face = self.face
        return {
            "path": self.source,
            "prob_fake": self.prob_fake,
            **self.verdict.to_dict(),
            "streams": {name: s.to_dict() for name, s in self.streams.items()},
            "vote": self.vote.to_dict(),
            "face": {
                "mode": face.mode,
                "box": None if face.box is None else face.box.to_dict(),
                "region": face.region.to_dict(),
                "reason": face.reason,
                "found_by": face.found_by,
                "faces": len(face.faces),
            },
            "preset": self.preset,
            "untrained": self.untrained,
            "weights": self.weights,
            "device": self.device,
            "image": {"width": self.image_size[0], "height": self.image_size[1], "notes": list(self.image_notes)},
            "degradation": self.degradation.to_dict() if self.degradation else None,
            "explain": self.explain,
            "similarity": {
                "cam": self.cam_similarity.to_dict() if self.cam_similarity else None,
                "features": self.feature_similarity.to_dict() if self.feature_similarity else None,
            },
            "timings": {k: _num(v, 4) for k, v in self.timings.items()},
            "provenance": self.provenance.to_dict() if self.provenance else None,
            "error": None,
        }


def error_record(source: str | None, message: str, *, preset: str | None = None, untrained: bool | None = None) -> dict[str, Any]:
    """The JSON line for a file that could not be analysed (same top-level keys, values null)."""
    return {
        "path": source,
        "prob_fake": None,
        "label": None,
        "verdict": None,
        "verdict_reason": None,
        "verdict_rule": None,
        "streams": {},
        "face": None,
        "preset": preset,
        "untrained": untrained,
        "error": message,
    }
