"""The assemble stage: an image's report from its stream outputs (CPU).

Calibrated stream probabilities, the vote on the 0.1 grid, the inter-stream CLS similarity, and,
when the clean twin's outputs are given, each stream's stability (feature cosine, clean vs degraded).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..config import ModelConfig
from ..ensemble import vote
from ..explain.attention import attention_entropy
from ..explain.similarity import cosine, feature_similarity
from ..report import Report, StreamReport
from .forwarding import HostOutput
from .preparing import Prepared
from .timing import timed

__all__ = ["assemble", "stability"]


def stability(clean: Mapping[str, np.ndarray], degraded: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per stream, the cosine between its pooled feature on the clean and on the degraded image."""
    return {name: cosine(clean[name], degraded[name]) for name in degraded if name in clean}


def assemble(
    prepared: Prepared,
    host: Mapping[str, HostOutput],
    *,
    config: ModelConfig,
    weights: str | None,
    device: str,
    clean: Mapping[str, HostOutput] | None = None,
) -> Report:
    """The report of one image: calibrated stream probabilities, the vote, similarity, stability.

    Args:
        prepared: the image, its face analysis and stream inputs.
        host: each stream's outputs on the host (see :func:`~forensic.pipeline.to_host`).
        config: the model's configuration (vote rules, preset, untrained flag).
        weights: where the weights came from, for the report.
        device: the device the streams ran on, for the report.
        clean: the same streams' outputs on the clean twin, when stability is wanted.
    """
    loaded = prepared.loaded
    timings = loaded.timings
    with timed(timings, "vote"):
        probs = {n: o.prob_fake for n, o in host.items()}
        verdict = vote(probs, config.vote, face_fallback=prepared.face.mode != "crop")
    stable = stability({n: o.features for n, o in clean.items()}, {n: o.features for n, o in host.items()}) if clean else {}
    streams = {
        name: StreamReport(
            name=name,
            prob_fake=probs[name],
            vote_prob=verdict.stream_probs[name],
            weight=float(verdict.weights.get(name, 0.0)),
            logits=out.logits,
            input=prepared.inputs[name],
            attention=None if out.cls_attention is None else attention_entropy(out.cls_attention),
            stability=stable.get(name),
            cls=out.cls,
            features=out.features,
        )
        for name, out in host.items()
    }
    decoded = loaded.decoded
    return Report(
        source=loaded.source,
        prob_fake=verdict.prob_fake,
        vote=verdict,
        streams=streams,
        face=prepared.face,
        preset=config.preset,
        untrained=config.untrained,
        weights=weights,
        device=device,
        image_size=(decoded.width, decoded.height),
        image_notes=decoded.notes,
        degradation=loaded.degradation,
        feature_similarity=feature_similarity({n: s.cls for n, s in streams.items()}),
        timings=timings,
        provenance=loaded.provenance,
        image=loaded.image,
        original=loaded.clean,
    )
