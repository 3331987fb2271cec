"""The authors' ``peft`` LoRA adapters as ours.

peft keeps one rank-r adapter per projection (``query``, ``key``, ``value``, ``output.dense``);
our stream file keeps one adapter on the fused ``qkv`` projection and one on ``proj``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from .errors import ConversionError

__all__ = ["LORA_KEY", "layer_adapters", "one_rank"]

# a peft adapter matrix: <module>.lora_A.<adapter name>.weight (and lora_B)
LORA_KEY = re.compile(r"^(?P<mod>.+?)\.lora_(?P<ab>[AB])\.[^.]+\.weight$")


def layer_adapters(attn: Mapping[tuple[int, str, str], torch.Tensor], n: int) -> tuple[dict[str, torch.Tensor], set[int]]:
    """Layer ``n``'s adapters in our names, and their ranks.

    Args:
        attn: the attention tensors by ``(layer, q/k/v/o, weight|bias|A|B)``.
        n: the layer.
    """
    adapter: dict[str, torch.Tensor] = {}
    ranks: set[int] = set()
    lora_a = [attn.get((n, p, "A")) for p in "qkv"]
    lora_b = [attn.get((n, p, "B")) for p in "qkv"]
    if any(t is not None for t in lora_a + lora_b):
        if not all(t is not None for t in lora_a + lora_b):
            raise ConversionError(f"layer {n}: LoRA on query/key/value is incomplete (all three are needed)")
        # three rank-r adapters == one rank-3r adapter with block-diagonal B (groups=3)
        adapter[f"adapter.blocks.{n}.attn.qkv.lora_A"] = torch.cat(lora_a, dim=0)
        adapter[f"adapter.blocks.{n}.attn.qkv.lora_B"] = torch.stack(lora_b, dim=0)
        ranks.update(t.shape[0] for t in lora_a)
    if (n, "o", "A") in attn or (n, "o", "B") in attn:
        a, b = attn.get((n, "o", "A")), attn.get((n, "o", "B"))
        if a is None or b is None:
            raise ConversionError(f"layer {n}: LoRA on the attention output is incomplete")
        adapter[f"adapter.blocks.{n}.attn.proj.lora_A"] = a
        adapter[f"adapter.blocks.{n}.attn.proj.lora_B"] = b.unsqueeze(0)
        ranks.add(a.shape[0])
    return adapter, ranks


def one_rank(ranks: set[int]) -> int:
    """The adapters' rank (0 without adapters); several ranks in one stream are an error."""
    if len(ranks) > 1:
        raise ConversionError(f"the LoRA adapters have different ranks {sorted(ranks)}; one rank per stream is supported")
    return ranks.pop() if ranks else 0
