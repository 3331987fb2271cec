"""Optimisation: the optimizer, the learning-rate schedule, and one epoch of gradient steps.

:func:`optimise_epoch` is one pass over a process's shard for any loss (training one stream:
:func:`train_one_epoch`; distillation: :mod:`train.distill`), with gradient accumulation,
clipping and DDP's ``no_sync`` between accumulated micro-batches.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from forensic.model import ForensicModel
from forensic.precision import autocast

from .config import TrainConfig
from .distributed import DistInfo, all_gather_objects, all_reduce_sum

__all__ = ["WarmupCosine", "StepLoss", "LossFn", "make_optimizer", "make_scheduler", "optimise_epoch", "train_one_epoch"]


class WarmupCosine:
    """LR factor per optimizer step: linear warm-up from ~0 to 1, then cosine down to ``min_ratio``.

    A callable object rather than a lambda so ``LambdaLR.state_dict()`` records it.
    """

    def __init__(self, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> None:
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps - 1))
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: ForensicModel, stream: str | Sequence[str], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over the trainable parameters; the heads (of ``stream``, or of each of
    several streams) may have their own learning rate."""
    streams = (stream,) if isinstance(stream, str) else tuple(stream)
    head = [p for name in streams for p in model.heads[name].parameters() if p.requires_grad]
    head_ids = {id(p) for p in head}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = []
    if rest:
        groups.append({"params": rest, "lr": cfg.optim.lr, "name": "adapter"})
    if head:
        groups.append({"params": head, "lr": cfg.optim.head_lr or cfg.optim.lr, "name": "head"})
    kind = torch.optim.AdamW if cfg.optim.name == "adamw" else torch.optim.Adam
    return kind(groups, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, batches_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm-up then cosine over the run's optimizer steps (:class:`WarmupCosine`)."""
    total = math.ceil(batches_per_epoch / cfg.optim.grad_accum) * cfg.epochs
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(total, round(cfg.optim.warmup_fraction * total), cfg.optim.min_lr_ratio)
    )


@dataclass
class StepLoss:
    """What one batch contributes: the loss to back-propagate, its sample count, and named parts
    (per-sample means, e.g. each stream's share) to report."""

    loss: torch.Tensor
    count: int
    parts: Mapping[str, float] = field(default_factory=dict)


#: computes a batch's loss: ``loss_fn(net, batch) -> StepLoss`` (forward under autocast inside)
LossFn = Callable[[torch.nn.Module, Mapping[str, Any]], StepLoss]


def optimise_epoch(
    net: torch.nn.Module,
    model: ForensicModel,
    loader: DataLoader,
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    info: DistInfo,
    desc: str = "train",
) -> dict[str, Any]:
    """One pass over this process's shard with gradient accumulation, clipping and DDP's
    ``no_sync`` between accumulated micro-batches; returns the loss (and its parts) and sample
    counts summed over the ranks.

    ``net`` is what runs the forward pass (the DDP wrapper, or ``model`` itself); ``loss_fn``
    says what a batch's loss is (training: focal loss to the labels; distillation: KL to the
    teacher's targets).
    """
    model.train()
    # the frozen bases have no dropout or batch statistics, but eval() keeps it that way for any base
    model.dinov2.eval()
    if model.clip is not None:
        model.clip.eval()
    accum = cfg.optim.grad_accum
    n_batches = len(loader)
    total_loss, seen, steps = 0.0, 0, 0
    part_sums: dict[str, float] = {}
    indices: list[int] = []
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(_progress(loader, cfg, info, desc)):
        group_start = (i // accum) * accum
        group_size = min(accum, n_batches - group_start)
        last_in_group = i == group_start + group_size - 1
        sync = contextlib.nullcontext() if last_in_group or not isinstance(net, DistributedDataParallel) else net.no_sync()
        with sync:
            step = loss_fn(net, batch)
            (step.loss / group_size).backward()
        if last_in_group:
            if cfg.optim.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
        total_loss += float(step.loss.detach()) * step.count
        for name, value in step.parts.items():
            part_sums[name] = part_sums.get(name, 0.0) + float(value) * step.count
        seen += step.count
        indices.extend(batch["index"].tolist())
    names = sorted(part_sums)
    sums = all_reduce_sum(info, [total_loss, float(seen), *(part_sums[n] for n in names)])
    loss_sum, seen_sum = sums[0], max(1.0, sums[1])
    unique = set().union(*map(set, all_gather_objects(info, indices)))
    stats: dict[str, Any] = {"train_loss": loss_sum / seen_sum}
    if names:
        stats["train_loss_parts"] = {n: v / seen_sum for n, v in zip(names, sums[2:])}
    return {**stats, "samples_seen": int(sums[1]), "unique_samples": len(unique), "steps": steps}


def train_one_epoch(
    net: torch.nn.Module,
    model: ForensicModel,
    loader: DataLoader,
    *,
    stream: str,
    criterion: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    info: DistInfo,
    desc: str = "train",
) -> dict[str, Any]:
    """One pass of one stream against the labels (:func:`optimise_epoch` with ``criterion``)."""

    def loss_fn(net: torch.nn.Module, batch: Mapping[str, Any]) -> StepLoss:
        x = batch["x"].to(info.device, non_blocking=True)
        y = batch["label"].to(info.device, non_blocking=True)
        with autocast(info.device, cfg.precision):
            logits = net(x, stream)
        return StepLoss(criterion(logits, y), len(y))

    return optimise_epoch(net, model, loader, loss_fn=loss_fn, optimizer=optimizer, scheduler=scheduler, cfg=cfg, info=info, desc=desc)


def _progress(loader: DataLoader, cfg: TrainConfig, info: DistInfo, desc: str) -> Iterator:
    if not (cfg.progress and info.is_main):
        return iter(loader)
    from tqdm import tqdm

    return iter(tqdm(loader, desc=desc, unit="batch", leave=False, file=sys.stderr, dynamic_ncols=True))
