"""Base backbones: DINOv2 built with timm and the CLIP visual tower built with open_clip.

Both are created from a :class:`~forensic.config.BackboneSpec` without downloading anything
(weights are loaded separately by :mod:`forensic.weights`), optionally on the ``meta`` device so
that no memory is spent on a random initialisation that is about to be overwritten.

DINOv2 keeps its native 37x37 position-embedding grid (518 px) and resizes it per input grid
(18x18 at 252 px, 16x16 at 224 px) with bicubic interpolation **without antialiasing**, as the
authors' Hugging Face model did; timm's own resize antialiases by default and differs by up to
~0.3 per element. The resized tables are cached, so one shared base serves every resolution.

Both towers' self-attention goes through :func:`attend`: PyTorch's fused SDPA, except on the CPU
in bf16/fp16 while autograd is recording, where the explicit matmul-softmax-matmul makes a whole
gradient pass 12-18% faster (PyTorch's CPU flash-attention backward is slow there;
``bench/attention.py``). That is what the fast Score-CAM's gradient passes run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import open_clip
import timm
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from torch import nn

from .config import BackboneSpec

__all__ = ["DinoOutput", "DinoV2", "ClipVision", "ViTSelfAttention", "attend", "create_backbone"]


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: float | None = None,
    attn_mask: torch.Tensor | None = None,
    explicit: bool | None = None,
    dropout: nn.Module | None = None,
) -> torch.Tensor:
    """Scaled dot-product attention, (B, H, N, d) -> (B, H, N, d).

    Args:
        scale: logit scale (default ``d ** -0.5``).
        attn_mask: additive float mask or boolean keep-mask, broadcastable to (B, H, N, N).
        explicit: materialise the attention weights (True), use SDPA (False), or choose (None):
            explicit on the CPU in bf16/fp16 while autograd records through ``q``/``k``/``v``
            (faster there, measured), SDPA otherwise.
        dropout: applied to the materialised weights (a module, so hooks on it see them); in the
            SDPA path its probability is used while it is in training mode.
    """
    if explicit is None:
        explicit = (
            q.device.type == "cpu"
            and q.dtype in (torch.bfloat16, torch.float16)
            and torch.is_grad_enabled()
            and (q.requires_grad or k.requires_grad or v.requires_grad)
        )
    if not explicit:
        p = dropout.p if dropout is not None and dropout.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p, scale=scale)
    logits = (q * (q.shape[-1] ** -0.5 if scale is None else scale)) @ k.transpose(-2, -1)
    if attn_mask is not None:
        logits = logits.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else logits + attn_mask
    weights = logits.softmax(dim=-1, dtype=torch.float32).to(v.dtype)  # fp32 softmax under autocast
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v


class ViTSelfAttention(nn.Module):
    """timm's ViT ``Attention`` computed through :func:`attend`, sharing its submodules and parameters.

    Same state-dict keys, same ``qkv`` module (so LoRA hooks on it apply), same result.
    ``fused_attn`` keeps timm's meaning: False materialises the weights through ``attn_drop``.
    """

    def __init__(self, attn: nn.Module) -> None:
        super().__init__()
        self.num_heads = attn.num_heads
        self.head_dim = attn.head_dim
        self.scale = attn.scale
        self.fused_attn = attn.fused_attn
        for name in ("qkv", "q_norm", "k_norm", "attn_drop", "norm", "proj", "proj_drop"):
            setattr(self, name, getattr(attn, name))

    @staticmethod
    def supports(attn: nn.Module) -> bool:
        """Whether ``attn`` is a timm attention this class reproduces (no gate, standard layout)."""
        names = ("qkv", "q_norm", "k_norm", "attn_drop", "norm", "proj", "proj_drop", "num_heads", "head_dim", "scale", "fused_attn")
        return all(hasattr(attn, n) for n in names) and getattr(attn, "gate", None) is None

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        if is_causal:
            raise NotImplementedError("ViTSelfAttention does not do causal attention")
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        out = attend(q, k, v, scale=self.scale, attn_mask=attn_mask, explicit=None if self.fused_attn else True, dropout=self.attn_drop)
        return self.proj_drop(self.proj(self.norm(out.transpose(1, 2).reshape(b, n, -1))))


@dataclass
class DinoOutput:
    """What one DINOv2 forward pass returns.

    Attributes:
        cls: pooled CLS token after the final LayerNorm, (B, C).
        tokens: patch tokens after the final LayerNorm, (B, N, C), prefix tokens dropped.
        grid: the patch grid (rows, cols).
        last_norm1: the last block's ``norm1`` output, all tokens (B, 1 + N, C); the layer the
            paper's Score-CAM explains. Only when requested.
        cls_attention: the last block's CLS-to-patch attention, (B, heads, N), each head's row
            renormalised over the patches. Only when requested.
    """

    cls: torch.Tensor
    tokens: torch.Tensor
    grid: tuple[int, int]
    last_norm1: torch.Tensor | None = None
    cls_attention: torch.Tensor | None = None


class DinoV2(nn.Module):
    """A timm DINOv2 ViT with per-grid position embeddings and named outputs."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        for blk in vit.blocks:
            if ViTSelfAttention.supports(blk.attn):
                blk.attn = ViTSelfAttention(blk.attn)
        self.vit = vit
        self._pos_cache: dict[tuple, torch.Tensor] = {}

    @property
    def embed_dim(self) -> int:
        return self.vit.embed_dim

    @property
    def patch_size(self) -> int:
        return self.vit.patch_embed.patch_size[0]

    @property
    def num_prefix_tokens(self) -> int:
        return self.vit.num_prefix_tokens

    @property
    def num_heads(self) -> int:
        return self.vit.blocks[-1].attn.num_heads

    @property
    def target_layer(self) -> nn.Module:
        """The module the paper's Score-CAM explains: the last block's ``norm1``."""
        return self.vit.blocks[-1].norm1

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch_size, width // self.patch_size

    def pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position embedding (1, prefix + rows * cols, C) for ``grid``, resized without antialiasing."""
        pos = self.vit.pos_embed
        # the key includes the tensor's identity and version, so loading new weights invalidates it
        key = (grid, pos.device, pos.dtype, pos.data_ptr(), pos._version)
        cached = self._pos_cache.get(key)
        if cached is None:
            with torch.no_grad():
                cached = resample_abs_pos_embed(
                    pos.detach(),
                    new_size=list(grid),
                    old_size=list(self.vit.patch_embed.grid_size),
                    num_prefix_tokens=self.num_prefix_tokens,
                    interpolation="bicubic",
                    antialias=False,
                )
            self._pos_cache = {k: v for k, v in self._pos_cache.items() if k[3:] == key[3:]}
            self._pos_cache[key] = cached
        return cached

    def set_fused_attention(self, enabled: bool) -> None:
        """Switches timm's fused (SDPA) attention on or off in every block.

        Off, timm materialises the attention weights (the ``attn_drop`` input), for users who want
        to hook them; this module's own ``return_attention`` does not need it.
        """
        for blk in self.vit.blocks:
            blk.attn.fused_attn = enabled

    def forward(self, x: torch.Tensor, *, return_norm1: bool = False, return_attention: bool = False) -> DinoOutput:
        """Runs the ViT on normalised images ``x`` (B, 3, H, W); H and W multiples of the patch size."""
        vit = self.vit
        h = vit.patch_embed(x)  # NHWC (created with dynamic_img_size)
        b, rows, cols, c = h.shape
        h = h.reshape(b, rows * cols, c)
        prefix = [vit.cls_token.expand(b, -1, -1)]
        if vit.reg_token is not None:
            prefix.append(vit.reg_token.expand(b, -1, -1))
        h = torch.cat(prefix + [h], dim=1) + self.pos_embed_for((rows, cols)).to(h.dtype)
        h = vit.norm_pre(vit.patch_drop(vit.pos_drop(h)))

        norm1 = attention = None
        if return_norm1 or return_attention:
            h = vit.blocks[:-1](h)
            h, norm1, attention = self._last_block(h, return_attention=return_attention)
        else:
            h = vit.blocks(h)
        h = vit.norm(h)
        n_prefix = self.num_prefix_tokens
        return DinoOutput(
            cls=h[:, 0],
            tokens=h[:, n_prefix:],
            grid=(rows, cols),
            last_norm1=norm1 if return_norm1 else None,
            cls_attention=attention,
        )

    def _last_block(self, h: torch.Tensor, *, return_attention: bool):
        # timm's Block.forward, unrolled so the norm1 output is at hand without hooks
        blk = self.vit.blocks[-1]
        n1 = blk.norm1(h)
        h = h + blk.drop_path1(blk.ls1(blk.attn(n1)))
        h = h + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(h))))
        attention = self._cls_attention(blk.attn, n1) if return_attention else None
        return h, n1, attention

    def _cls_attention(self, attn: nn.Module, n1: torch.Tensor) -> torch.Tensor:
        # Recompute the CLS query's softmax row explicitly: SDPA never materialises it. The qkv
        # call goes through the same LoRA hooks as the forward pass, so adapters are included.
        b, n, _ = n1.shape
        qkv = attn.qkv(n1[:, :1]), attn.qkv(n1)
        q = qkv[0].reshape(b, 1, 3, attn.num_heads, attn.head_dim)[:, :, 0].transpose(1, 2)  # (B, H, 1, d)
        k = qkv[1].reshape(b, n, 3, attn.num_heads, attn.head_dim)[:, :, 1].transpose(1, 2)  # (B, H, N, d)
        q, k = attn.q_norm(q), attn.k_norm(k)
        weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)[:, :, 0]  # (B, H, N)
        patches = weights[..., self.num_prefix_tokens :]
        return patches / patches.sum(dim=-1, keepdim=True)


class BatchFirstSelfAttention(nn.Module):
    """``nn.MultiheadAttention``'s self-attention on batch-first input, sharing its parameters.

    Why: with gradients enabled, ``nn.MultiheadAttention(batch_first=True)`` transposes its input to
    sequence-first and projects the non-contiguous view, which PyTorch turns into a batched matmul
    against the weight expanded once per token: a 700 MB copy per layer for CLIP ViT-B/16 on a
    CPU, ~10x slower than the math needs. The fast Score-CAM back-propagates through the fusion
    stream's CLIP tower, so this matters. Same parameters (same state-dict keys), same result.
    """

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if not mha.batch_first or not mha._qkv_same_embed_dim:
            raise ValueError("only batch-first self-attention with a packed in-projection is supported")
        self.num_heads = mha.num_heads
        self.in_proj_weight = mha.in_proj_weight
        self.in_proj_bias = mha.in_proj_bias
        self.out_proj = mha.out_proj

    def forward(self, query, key=None, value=None, need_weights: bool = False, attn_mask=None, **kwargs):
        if (key is not None and key is not query) or (value is not None and value is not query) or need_weights:
            raise NotImplementedError("BatchFirstSelfAttention does self-attention without weights only")
        b, n, e = query.shape
        qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.num_heads, e // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, attn_mask=attn_mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, e)), None


class ClipVision(nn.Module):
    """The open_clip visual tower returning the 'pooled' feature: ``ln_post(CLS)`` without projection."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        # the projection into the joint text-image space is unused by the fusion head
        visual.proj = None
        for block in getattr(getattr(visual, "transformer", None), "resblocks", []):
            if isinstance(block.attn, nn.MultiheadAttention) and block.attn.batch_first:
                block.attn = BatchFirstSelfAttention(block.attn)
        self.visual = visual

    @property
    def width(self) -> int:
        return self.visual.ln_post.normalized_shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.visual(x)
        return out[0] if isinstance(out, tuple) else out


def _create_dinov2(spec: BackboneSpec) -> DinoV2:
    kwargs: dict[str, Any] = dict(spec.overrides)
    # keep the native 518 px grid: position embeddings are resized per input grid by DinoV2
    kwargs.setdefault("img_size", 518)
    vit = timm.create_model(spec.arch, pretrained=False, num_classes=0, dynamic_img_size=True, **kwargs)
    return DinoV2(vit)


def _create_clip(spec: BackboneSpec) -> ClipVision:
    cfg = open_clip.get_model_config(spec.arch)
    if cfg is None:
        raise ValueError(f"unknown open_clip model config {spec.arch!r}")
    cfg = _deep_update(cfg, dict(spec.overrides))
    visual = open_clip.model._build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=cfg.get("quick_gelu", False))
    return ClipVision(visual)


def create_backbone(spec: BackboneSpec, *, device: torch.device | str | None = None) -> nn.Module:
    """Builds the architecture of ``spec`` with random (or, on ``meta``, no) weights."""
    factory = {"dinov2": _create_dinov2, "clip": _create_clip}[spec.family]
    with torch.device(device or "cpu"):
        return factory(spec)


def _deep_update(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def init_vit_weights_(module: nn.Module, *, generator: torch.Generator) -> None:
    """Seeded random initialisation of any backbone (fan-in scaled normal weights, unit LayerNorm).

    Used for ``tiny-random`` bases, so that the same seed gives the same model on every machine
    without touching torch's global RNG.
    """
    embeddings = ("pos_embed", "cls_token", "reg_token", "class_embedding", "positional_embedding")
    with torch.no_grad():
        for name, p in module.named_parameters():
            if any(e in name for e in embeddings):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
            elif "norm" in name or "ln_" in name or name.endswith(("gamma", "lambda1")):
                p.fill_(0.0 if name.endswith("bias") else 1.0)
            elif p.ndim >= 2:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(fan_in))
            else:  # biases
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
