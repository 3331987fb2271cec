"""LoRA adapters applied on top of a shared, frozen base model, several adapters per base.

Why our own and not ``peft``: the three streams share one DINOv2 base (held once in memory) and
each applies its own adapter without merging it into the shared tensors; a batch may even mix
streams (texture and face run together at 252 px). ``peft`` would make ``transformers`` a runtime
dependency and has no per-sample routing for timm models. The mechanism here is small: forward
hooks on the base ``nn.Linear`` modules add ``scaling * B @ A @ x`` for the adapter(s) routed to
the current call. The base model's state dict stays exactly timm's.

Grouped adapters: timm fuses the attention's query, key and value into one ``qkv`` Linear. The
authors trained three separate rank-r adapters on separate q, k, v Linears (Hugging Face DINOv2).
Their exact equivalent on the fused Linear is one rank-3r adapter whose ``B`` is block-diagonal;
we store it as ``groups=3`` blocks (``A``: (3r, in), ``B``: (3, out/3, r)) so the zeros are never
stored or multiplied. ``groups=1`` is a plain LoRA.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["LoRA", "AdapterBank", "AdapterRouter", "LoraConfig"]


@dataclass(frozen=True)
class LoraConfig:
    """Hyper-parameters of one stream's adapter (the paper: rank 32, alpha 64, dropout 0.15)."""

    rank: int = 32
    alpha: float = 64.0
    dropout: float = 0.15
    #: names of the adapted Linear modules inside each ViT block, e.g. ``attn.qkv``, ``attn.proj``
    targets: tuple[str, ...] = ("attn.qkv", "attn.proj")

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def to_dict(self) -> dict:
        return {"rank": self.rank, "alpha": self.alpha, "dropout": self.dropout, "targets": list(self.targets)}

    @classmethod
    def from_dict(cls, data: dict) -> LoraConfig:
        return cls(
            rank=int(data["rank"]),
            alpha=float(data["alpha"]),
            dropout=float(data.get("dropout", 0.0)),
            targets=tuple(data.get("targets", cls.targets)),
        )


class LoRA(nn.Module):
    """One low-rank update ``delta(x) = scaling * B @ A @ x`` for one Linear, in ``groups`` blocks.

    Args:
        in_features: input width of the adapted Linear.
        out_features: output width of the adapted Linear (divisible by ``groups``).
        rank: rank per group.
        groups: number of independent output blocks (3 for a fused qkv Linear).
        scaling: ``alpha / rank``.
        dropout: dropout on the adapter's input during training.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rank: int,
        groups: int = 1,
        scaling: float = 1.0,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if out_features % groups:
            raise ValueError(f"out_features={out_features} is not divisible by groups={groups}")
        self.in_features, self.out_features = in_features, out_features
        self.rank, self.groups, self.scaling = rank, groups, scaling
        self.lora_A = nn.Parameter(torch.empty(groups * rank, in_features, device=device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.empty(groups, out_features // groups, rank, device=device, dtype=dtype))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if self.lora_A.device.type != "meta":
            self.reset_parameters()

    def reset_parameters(self, *, zero_b: bool = True) -> None:
        """Standard LoRA init: Kaiming-uniform A, zero B (the adapter starts as the identity)."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        if zero_b:
            nn.init.zeros_(self.lora_B)
        else:
            nn.init.normal_(self.lora_B, std=1.0 / self.rank)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(x) @ self.lora_A.t()  # (..., groups * rank)
        h = h.unflatten(-1, (self.groups, self.rank))  # (..., groups, rank)
        out = torch.einsum("...gr,gor->...go", h, self.lora_B)  # (..., groups, out/groups)
        return out.flatten(-2) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The dense (out, in) update this adapter adds to the base weight."""
        a = self.lora_A.unflatten(0, (self.groups, self.rank))  # (g, r, in)
        return torch.einsum("gor,gri->goi", self.lora_B, a).flatten(0, 1) * self.scaling

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, rank={self.rank}, groups={self.groups}, scaling={self.scaling}"


def _key(target: str) -> str:
    # ModuleDict keys may not contain dots
    return target.replace(".", "__")


class AdapterBank(nn.Module):
    """All LoRA modules of one stream, keyed by the dotted path of the Linear they adapt."""

    def __init__(self, loras: dict[str, LoRA]) -> None:
        super().__init__()
        self.loras = nn.ModuleDict({_key(name): lora for name, lora in loras.items()})

    def get(self, target: str) -> LoRA | None:
        key = _key(target)
        return self.loras[key] if key in self.loras else None

    def targets(self) -> list[str]:
        return [k.replace("__", ".") for k in self.loras.keys()]

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        config: LoraConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> AdapterBank:
        """Creates one adapter per Linear of ``model`` whose path ends with one of ``config.targets``.

        A target ending in ``qkv`` gets ``groups=3`` (separate q, k and v adapters, see module doc).
        """
        loras: dict[str, LoRA] = {}
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and any(name.endswith(t) for t in config.targets):
                loras[name] = LoRA(
                    module.in_features,
                    module.out_features,
                    rank=config.rank,
                    groups=3 if name.endswith("qkv") else 1,
                    scaling=config.scaling,
                    dropout=config.dropout,
                    device=device,
                    dtype=dtype,
                )
        if not loras:
            raise ValueError(f"no Linear module matches the LoRA targets {config.targets}")
        return cls(loras)


Route = str | tuple[str, ...] | None


class AdapterRouter:
    """Routes each forward call of a shared base to the adapter(s) of the calling stream.

    The route lives in a ``ContextVar``, so concurrent threads (a web server) each see their own.
    A route is ``None`` (base only), one adapter name for the whole batch, or one name per sample.
    """

    def __init__(self, base: nn.Module, banks: nn.ModuleDict) -> None:
        self._banks = banks
        self._route: contextvars.ContextVar[Route] = contextvars.ContextVar(f"lora_route_{id(self)}", default=None)
        self._handles = []
        targets = set()
        for bank in banks.values():
            targets.update(bank.targets())
        modules = dict(base.named_modules())
        for target in sorted(targets):
            if target not in modules:
                raise KeyError(f"adapter target {target!r} is not a module of the base model")
            self._handles.append(modules[target].register_forward_hook(self._make_hook(target)))

    @contextlib.contextmanager
    def route(self, route: Route) -> Iterator[None]:
        """Within the block, base forward calls add the adapter(s) named by ``route``."""
        names = (route,) if isinstance(route, str) else (route or ())
        for name in names:
            if name not in self._banks:
                raise KeyError(f"no adapter named {name!r}; have {sorted(self._banks.keys())}")
        token = self._route.set(route)
        try:
            yield
        finally:
            self._route.reset(token)

    def _make_hook(self, target: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            route = self._route.get()
            if route is None:
                return output
            x = inputs[0]
            if isinstance(route, str):
                lora = self._banks[route].get(target)
                return output if lora is None else output + lora(x)
            return output + self._mixed_delta(target, route, x, output)

        return hook

    def _mixed_delta(self, target: str, route: Sequence[str], x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        if len(route) != x.shape[0]:
            raise ValueError(f"route names {len(route)} samples but the batch has {x.shape[0]}")
        delta = torch.zeros_like(output)
        for name in dict.fromkeys(route):  # distinct names, in order
            lora = self._banks[name].get(target)
            if lora is None:
                continue
            idx = torch.tensor([i for i, n in enumerate(route) if n == name], device=x.device)
            delta = delta.index_copy(0, idx, lora(x.index_select(0, idx)).to(delta.dtype))
        return delta

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
