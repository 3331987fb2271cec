"""The three-stream model: one shared DINOv2 base (+ one CLIP tower), per-stream LoRA adapters and heads.

The base weights are held once however many streams use them, at whatever resolution: the
streams differ only by their adapter (routed per call, see :mod:`forensic.lora`), their head and
their input. ``forward_streams`` runs streams that share an input size in one batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .backbones import ClipVision, DinoV2, create_backbone, init_vit_weights_
from .config import HeadConfig, ModelConfig, StreamConfig
from .lora import AdapterBank, AdapterRouter

__all__ = ["StreamOutput", "ForensicModel", "make_head"]


@dataclass
class StreamOutput:
    """One stream's forward pass over a batch.

    Attributes:
        name: the stream.
        logits: raw head logits (B, 2); index 0 = real, 1 = fake.
        prob_fake: calibrated P(fake) = softmax(logits / temperature)[:, 1], (B,).
        features: what the head saw (B, F): DINOv2's CLS, or [CLS, CLIP pooled] for fusion.
        cls: DINOv2's CLS feature (B, C), comparable across streams.
        tokens: DINOv2 patch tokens after the final norm (B, N, C).
        grid: the patch grid (rows, cols).
        last_norm1: the last block's norm1 output (B, 1 + N, C), if requested.
        cls_attention: CLS-to-patch attention of the last block (B, heads, N), if requested.
    """

    name: str
    logits: torch.Tensor
    prob_fake: torch.Tensor
    features: torch.Tensor
    cls: torch.Tensor
    tokens: torch.Tensor
    grid: tuple[int, int]
    last_norm1: torch.Tensor | None = None
    cls_attention: torch.Tensor | None = None


def make_head(in_features: int, config: HeadConfig) -> nn.Module:
    """``linear``: Linear(D, 2). ``mlp``: Linear(D, h) -> GELU -> Dropout -> Linear(h, 2) (the authors' fusion head)."""
    if config.kind == "linear":
        return nn.Linear(in_features, 2)
    if config.kind == "mlp":
        if not config.hidden:
            raise ValueError("an mlp head needs 'hidden'")
        return nn.Sequential(
            nn.Linear(in_features, config.hidden), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, 2)
        )
    raise ValueError(f"unknown head kind {config.kind!r}; use 'linear' or 'mlp'")


class ForensicModel(nn.Module):
    """All streams of one detector over shared bases.

    Args:
        config: the model configuration.
        device: where to build it; ``"meta"`` builds the structure without allocating weights
            (load them afterwards with ``load_state_dict(..., assign=True)``).
    """

    def __init__(self, config: ModelConfig, *, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.config = config
        self.dinov2: DinoV2 = create_backbone(config.dinov2, device=device)
        uses_clip = any(s.uses_clip for s in config.streams)
        if uses_clip and config.clip is None:
            raise ValueError("a stream uses CLIP but the config has no 'clip' backbone")
        self.clip: ClipVision | None = create_backbone(config.clip, device=device) if uses_clip else None
        self.dinov2.requires_grad_(False)
        if self.clip is not None:
            self.clip.requires_grad_(False)
        with torch.device(device or "cpu"):
            self.adapters = nn.ModuleDict(
                {s.name: AdapterBank.for_model(self.dinov2.vit, config.lora) for s in config.streams} if config.lora else {}
            )
            self.heads = nn.ModuleDict({s.name: make_head(self._head_in(s), s.head) for s in config.streams})
        self.router = AdapterRouter(self.dinov2.vit, self.adapters)
        #: set on a :class:`~forensic.explain.merged.MergedStreamCopy`'s model: the one stream whose adapter is folded into the base
        self.merged_stream: str | None = None

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def random(cls, config: ModelConfig, *, seed: int = 0) -> ForensicModel:
        """A fully random model (bases, adapters with non-zero B, heads), reproducible from ``seed``."""
        model = cls(config)
        model.init_random_(seed=seed)
        return model

    def init_random_(self, *, seed: int = 0, bases: bool = True) -> None:
        """Re-initialises the weights from ``seed`` without touching torch's global RNG."""
        gen = torch.Generator().manual_seed(seed)
        if bases:
            init_vit_weights_(self.dinov2, generator=torch.Generator().manual_seed(self.config.dinov2.init_seed or seed))
            if self.clip is not None:
                clip_seed = self.config.clip.init_seed if self.config.clip.init_seed is not None else seed + 1
                init_vit_weights_(self.clip, generator=torch.Generator().manual_seed(clip_seed))
        with torch.no_grad():
            for bank in self.adapters.values():
                for lora in bank.loras.values():
                    # non-zero B so that each stream's adapter really changes the base
                    lora.lora_A.copy_(torch.randn(lora.lora_A.shape, generator=gen) / lora.in_features**0.5)
                    lora.lora_B.copy_(torch.randn(lora.lora_B.shape, generator=gen) / lora.rank)
            for head in self.heads.values():
                for p in head.parameters():
                    fan_in = p.shape[-1] if p.ndim == 2 else 1
                    p.copy_(torch.randn(p.shape, generator=gen) / fan_in**0.5)

    def cast_copy(self, dtype: torch.dtype) -> ForensicModel:
        """An eval-mode copy whose floating-point tensors are in ``dtype``; ``self`` is untouched.

        Built on the meta device and filled by assignment (no random initialisation, no second
        float32 copy). CPU Score-CAM uses a bf16 copy: no per-pass weight casts, hence faster
        gradient passes than bf16 autocast over float32 weights (figures in bench/RESULTS.md);
        see :class:`~forensic.explain.merged.MergedStreamCopy`.
        """
        copy = ForensicModel(self.config, device="meta")
        device = next(self.parameters()).device
        state = {k: v.to(dtype if v.is_floating_point() else v.dtype, copy=True) for k, v in self.state_dict().items()}
        copy.load_state_dict(state, strict=True, assign=True)
        return copy.to(device).eval()

    def _head_in(self, stream: StreamConfig) -> int:
        return self.dinov2.embed_dim + (self.clip.width if stream.uses_clip else 0)

    # ----------------------------------------------------------------------------- forward
    @property
    def stream_names(self) -> tuple[str, ...]:
        return self.config.stream_names

    def forward_stream(
        self, name: str, x: torch.Tensor, *, return_norm1: bool = False, return_attention: bool = False
    ) -> StreamOutput:
        """Runs stream ``name`` on a batch of normalised inputs ``x`` (B, 3, S, S)."""
        return self._run(name, (name,) * x.shape[0], x, return_norm1=return_norm1, return_attention=return_attention)[name]

    def forward_streams(
        self, inputs: Mapping[str, torch.Tensor], *, return_norm1: bool = False, return_attention: bool = False
    ) -> dict[str, StreamOutput]:
        """Runs several streams; those with the same input size share one batched base pass."""
        by_size: dict[tuple[int, ...], list[str]] = {}
        for name, x in inputs.items():
            by_size.setdefault(tuple(x.shape[1:]), []).append(name)
        out: dict[str, StreamOutput] = {}
        for names in by_size.values():
            x = torch.cat([inputs[n] for n in names])
            route = tuple(n for n in names for _ in range(inputs[n].shape[0]))
            out.update(self._run(names, route, x, return_norm1=return_norm1, return_attention=return_attention))
        return {name: out[name] for name in inputs}

    def forward(self, x: torch.Tensor, stream: str) -> torch.Tensor:
        """Logits of ``stream`` for ``x`` (what training and pytorch-grad-cam call)."""
        return self.forward_stream(stream, x).logits

    def _run(self, names, route: tuple[str, ...], x: torch.Tensor, **kw) -> dict[str, StreamOutput]:
        names = (names,) if isinstance(names, str) else tuple(names)
        adapter_route = route if self.adapters else None
        if adapter_route is not None and len(set(route)) == 1:
            adapter_route = route[0]
        if self.merged_stream is not None:
            if set(names) != {self.merged_stream}:
                raise ValueError(f"this copy has the {self.merged_stream!r} adapter merged into its base; it cannot run {names}")
            adapter_route = None  # the adapter is in the weights; its hooks were removed
        with self.router.route(adapter_route):
            dino = self.dinov2(x, **kw)
        clip_feats = None
        if any(self.config.stream(n).uses_clip for n in names) and self.clip is not None:
            clip_feats = self.clip(x)
        out = {}
        start = 0
        for name in names:
            count = sum(1 for r in route if r == name)
            sl = slice(start, start + count)
            start += count
            cfg = self.config.stream(name)
            cls_tok = dino.cls[sl]
            features = torch.cat([cls_tok, clip_feats[sl].to(cls_tok.dtype)], dim=-1) if cfg.uses_clip else cls_tok
            logits = self.heads[name](features)
            prob = torch.softmax(logits.float() / cfg.temperature, dim=-1)[:, 1]
            out[name] = StreamOutput(
                name=name,
                logits=logits,
                prob_fake=prob,
                features=features,
                cls=cls_tok,
                tokens=dino.tokens[sl],
                grid=dino.grid,
                last_norm1=None if dino.last_norm1 is None else dino.last_norm1[sl],
                cls_attention=None if dino.cls_attention is None else dino.cls_attention[sl],
            )
        return out

    # ----------------------------------------------------------------------------- state
    def stream_state_dict(self, name: str) -> dict[str, torch.Tensor]:
        """What one stream adds to the shared bases: ``adapter.<target>.lora_{A,B}`` and ``head.*``."""
        state = {f"head.{k}": v for k, v in self.heads[name].state_dict().items()}
        if name in self.adapters:
            for key, value in self.adapters[name].state_dict().items():
                _, target, param = key.split(".", 2)  # loras.<target with __>.<param>
                state[f"adapter.{target.replace('__', '.')}.{param}"] = value
        return state

    def stream_keys_to_model(self, name: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Maps a stream file's keys (see :meth:`stream_state_dict`) to this model's state-dict keys."""
        out = {}
        for key, value in state.items():
            kind, rest = key.split(".", 1)
            if kind == "head":
                out[f"heads.{name}.{rest}"] = value
            elif kind == "adapter":
                target, param = rest.rsplit(".", 1)
                out[f"adapters.{name}.loras.{target.replace('.', '__')}.{param}"] = value
            else:
                raise KeyError(f"unexpected key {key!r} in the weights of stream {name!r}")
        return out

    def load_stream_state_dict(self, name: str, state: Mapping[str, torch.Tensor], *, parts: tuple[str, ...] = ("adapter", "head")) -> None:
        """Loads one stream's adapter and/or head from a stream file's tensors, strictly.

        Every key of the chosen ``parts`` must be present and nothing else; shapes must match.
        The shared bases and the other streams are untouched.
        """
        wanted = {k: v for k, v in state.items() if k.split(".", 1)[0] in parts}
        unknown = sorted(k for k in state if k.split(".", 1)[0] not in ("adapter", "head"))
        expected = {k: v for k, v in self.stream_state_dict(name).items() if k.split(".", 1)[0] in parts}
        missing, unexpected = sorted(set(expected) - set(wanted)), sorted(set(wanted) - set(expected)) + unknown
        if missing or unexpected:
            raise ValueError(f"weights of the {name} stream do not match: missing {missing[:8]}, unexpected {unexpected[:8]}")
        for key, value in wanted.items():
            if tuple(expected[key].shape) != tuple(value.shape):
                raise ValueError(f"{name} stream, {key}: the weights have shape {tuple(value.shape)}, the model {tuple(expected[key].shape)}")
        with torch.no_grad():
            own = dict(self.named_parameters())
            own.update(dict(self.named_buffers()))
            for key, value in self.stream_keys_to_model(name, wanted).items():
                own[key].copy_(value)

    def base_state_dict(self, family: str) -> dict[str, torch.Tensor]:
        """The shared base weights of ``family`` (``dinov2`` or ``clip``) in timm / open_clip naming."""
        module = self.dinov2.vit if family == "dinov2" else self.clip.visual
        return dict(module.state_dict())

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]
