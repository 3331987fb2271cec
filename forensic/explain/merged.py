"""The merged stream copy: one stream's LoRA adapter folded into a copy of the base, for Score-CAM's masked passes.

The hooked model routes every pass through its adapters; thousands of masked passes through one
stream are faster on a copy whose adapted weights already hold ``W + scaling * B @ A`` (figures
in bench/RESULTS.md). The explanation plan (:mod:`forensic.explain.plan`) decides when the engine
(:mod:`forensic.explain.engine`) runs on one.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model import ForensicModel

__all__ = ["MergedStreamCopy"]


class MergedStreamCopy:
    """A copy of a :class:`~forensic.model.ForensicModel` that runs one stream at a time with its adapter merged in.

    :meth:`select` makes the copy's adapted weights ``W + scaling * B @ A`` of that stream's LoRA
    (computed from the original's weights each time, so switching streams never accumulates
    rounding) and the copy has no adapter hooks: a forward pass costs what the bare base costs.
    The copy raises if asked for another stream than the selected one. Score-CAM runs its masked
    passes on one, which is faster than the hooked model (figures in bench/RESULTS.md).

    In the source's own dtype the copy shares every tensor with it except the adapted weights
    (``attn.qkv`` and ``attn.proj``), so it costs only those; in another dtype it is a full cast
    copy (:meth:`~forensic.model.ForensicModel.cast_copy`).

    Args:
        source: the model to copy; it is not modified.
        dtype: the copy's floating-point dtype (bf16 on GPUs and CPUs with bf16 matrix instructions).
        keep: keep each stream's merged weights once computed, so that re-selecting a stream only
            swaps tensors (a GPU, whose streams run in lockstep; costs the adapted weights once per
            stream); False writes one set of weights per :meth:`select` (a CPU: less memory).
    """

    def __init__(self, source: ForensicModel, dtype: torch.dtype, *, keep: bool = False) -> None:
        self.source = source
        self.dtype = dtype
        self.keep = keep
        self._source_modules = dict(source.dinov2.vit.named_modules())
        self._targets = sorted({t for bank in source.adapters.values() for t in bank.targets()})
        if all(p.dtype == dtype for p in source.parameters()):
            self.model = ForensicModel(source.config, device="meta")
            self.model.load_state_dict(source.state_dict(), strict=True, assign=True)  # shared tensors
            self.model.eval()
            modules = dict(self.model.dinov2.vit.named_modules())
            for target in self._targets:  # the weights select() writes get their own storage
                modules[target].weight = nn.Parameter(modules[target].weight.detach().clone(), requires_grad=False)
        else:
            self.model = source.cast_copy(dtype)
        self.model.router.remove()
        self._modules = dict(self.model.dinov2.vit.named_modules())
        self._kept: dict[str, dict[str, nn.Parameter]] = {}

    @staticmethod
    def extra_bytes(source: ForensicModel, dtype: torch.dtype, *, streams: int = 1) -> int:
        """Memory a copy takes beyond ``source``: the adapted weights (per kept stream), or a full cast copy."""
        size = torch.empty((), dtype=dtype).element_size()
        modules = dict(source.dinov2.vit.named_modules())
        targets = {t for bank in source.adapters.values() for t in bank.targets()}
        adapted = sum(modules[t].weight.numel() for t in targets) * size * max(1, streams)
        if all(p.dtype == dtype for p in source.parameters()):
            return adapted
        return sum(p.numel() for p in source.parameters()) * size + adapted

    @torch.no_grad()
    def select(self, stream: str) -> ForensicModel:
        """Merges ``stream``'s adapter into the copy's base (a no-op if it is selected) and returns the copy."""
        self.source.config.stream(stream)  # raises on an unknown name
        if self.model.merged_stream == stream:
            return self.model
        kept = self._kept.get(stream)
        if kept is None:
            kept = self._merged_weights(stream)
            if self.keep:
                self._kept[stream] = kept
        for target, weight in kept.items():
            self._modules[target].weight = weight
        self.model.merged_stream = stream
        return self.model

    def _merged_weights(self, stream: str) -> dict[str, nn.Parameter]:
        bank = self.source.adapters[stream] if stream in self.source.adapters else None
        out = {}
        for target in self._targets:
            weight = self._source_modules[target].weight
            lora = bank.get(target) if bank is not None else None
            merged = weight.float() if lora is None else weight.float() + lora.delta_weight().to(weight.device, torch.float32)
            if self.keep:
                out[target] = nn.Parameter(merged.to(self.dtype), requires_grad=False)
            else:  # one set of weights, rewritten in place
                current = self._modules[target].weight
                current.copy_(merged.to(self.dtype))
                out[target] = current
        return out
