"""The forward stage: one batched pass of every stream over several images (the device)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..model import ForensicModel, StreamOutput
from ..streams import StreamInput, to_tensor

__all__ = ["Forwarded", "HostOutput", "forward", "to_host"]


@dataclass(frozen=True)
class HostOutput:
    """One stream's outputs for one image, on the host in float32."""

    prob_fake: float
    logits: tuple[float, ...]
    cls: np.ndarray
    features: np.ndarray
    cls_attention: torch.Tensor | None


@dataclass(frozen=True)
class Forwarded:
    """One batched forward pass: the device tensors (Score-CAM needs them) and outputs."""

    tensors: dict[str, torch.Tensor]
    outputs: dict[str, StreamOutput]

    def host(self) -> list[dict[str, HostOutput]]:
        """Per image, each stream's outputs on the host (one transfer per tensor kind and stream)."""
        return to_host(self.outputs)

    def item(self, index: int) -> Forwarded:
        """The pass of the batch's ``index``-th image alone (views, no copies)."""
        def one(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[index : index + 1]

        outputs = {
            name: StreamOutput(
                name=o.name, logits=one(o.logits), prob_fake=one(o.prob_fake), features=one(o.features), cls=one(o.cls),
                tokens=one(o.tokens), grid=o.grid, last_norm1=one(o.last_norm1), cls_attention=one(o.cls_attention),
            )
            for name, o in self.outputs.items()
        }
        return Forwarded(tensors={n: t[index : index + 1] for n, t in self.tensors.items()}, outputs=outputs)


def forward(
    model: ForensicModel,
    inputs: Sequence[Mapping[str, StreamInput]],
    *,
    return_norm1: bool = False,
    return_attention: bool = True,
    run: Callable[..., dict[str, StreamOutput]] | None = None,
) -> Forwarded:
    """One batched pass of every stream over several images' inputs (no host synchronisation).

    ``return_norm1`` keeps Score-CAM's target layer (the explain stage uses it instead of another
    pass). ``return_attention=False`` skips the CLS attention (and so the reports' attention
    entropy), for callers that only want probabilities (a distillation teacher). ``run`` replaces
    ``model.forward_streams`` (e.g. its compiled form, :mod:`forensic.compiled`).
    """
    p = next(model.parameters())
    tensors = {
        s.name: to_tensor([inp[s.name].pixels for inp in inputs], s, device=p.device, dtype=p.dtype) for s in model.config.streams
    }
    with torch.inference_mode():
        outputs = (run or model.forward_streams)(tensors, return_attention=return_attention, return_norm1=return_norm1)
    return Forwarded(tensors=tensors, outputs=outputs)


def to_host(outputs: Mapping[str, StreamOutput]) -> list[dict[str, HostOutput]]:
    """Splits a batch's outputs per image, on the host in float32."""
    per_stream = {}
    for name, out in outputs.items():
        att = None if out.cls_attention is None else out.cls_attention.float().cpu()
        per_stream[name] = (
            out.prob_fake.float().cpu().numpy(),
            out.logits.float().cpu().numpy(),
            out.cls.float().cpu().numpy(),
            out.features.float().cpu().numpy(),
            att,
        )
    n = len(next(iter(per_stream.values()))[0]) if per_stream else 0
    return [
        {
            name: HostOutput(
                prob_fake=float(prob[i]),
                logits=tuple(float(v) for v in logits[i]),
                cls=cls[i],
                features=feats[i],
                cls_attention=None if att is None else att[i],
            )
            for name, (prob, logits, cls, feats, att) in per_stream.items()
        }
        for i in range(n)
    ]
