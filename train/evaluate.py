"""Validation: a model's logits on every sample of a loader, gathered over the ranks.

:func:`predict` gives every stream's logits (distillation's held-out sets, :mod:`train.distill`);
:func:`evaluate` one stream's with its loss, after every validated epoch and for the export
report of the best checkpoint (:mod:`train.stream`); :class:`EvalResult` turns them into metrics.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from forensic.calibration import apply_temperature
from forensic.metrics import binary_metrics
from forensic.model import ForensicModel
from forensic.precision import autocast

from .distributed import DistInfo, all_gather_objects
from .views import CLEAN

__all__ = ["EvalResult", "evaluate", "predict"]



@dataclass
class EvalResult:
    """One validation set's outputs, in dataset order.

    Attributes:
        name: ``clean`` or the degradation spec.
        indices: dataset indices (N,).
        labels: 0 real / 1 fake (N,).
        logits: raw logits (N, 2).
        loss: mean loss.
    """

    name: str
    indices: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    loss: float

    def prob_fake(self, temperature: float = 1.0) -> np.ndarray:
        return apply_temperature(self.logits, temperature)

    def metrics(self, temperature: float = 1.0) -> dict[str, float]:
        """loss, auc, ap, accuracy, eer, ece and the counts (forensic.metrics)."""
        return {"loss": self.loss, **binary_metrics(self.prob_fake(temperature), self.labels)}


@torch.no_grad()
def predict(
    model: ForensicModel,
    loader: DataLoader,
    *,
    streams: Sequence[str],
    info: DistInfo,
    precision: str = "auto",
    name: str = CLEAN,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every sample's index (N,), label (N,) and logits (N, S, 2) of ``streams``, in dataset order
    (shards gathered and de-duplicated). Batches hold one stream's ``x`` or ``{stream: x}``."""
    model.eval()
    idx, labels, logits = [], [], []
    bar = loader
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(loader, desc=f"val {name}", unit="batch", leave=False, file=sys.stderr)
    for batch in bar:
        x = batch["x"]
        with autocast(info.device, precision):
            if isinstance(x, Mapping):
                out = model.forward_streams({s: x[s].to(info.device, non_blocking=True) for s in streams})
                logits.append(torch.stack([out[s].logits.float() for s in streams], dim=1).cpu())
            else:
                logits.append(model.forward_stream(streams[0], x.to(info.device, non_blocking=True)).logits.float()[:, None].cpu())
        labels.append(batch["label"])
        idx.append(batch["index"])
    local = (
        torch.cat(idx).numpy() if idx else np.zeros(0, np.int64),
        torch.cat(labels).numpy() if labels else np.zeros(0, np.int64),
        torch.cat(logits).numpy() if logits else np.zeros((0, len(streams), 2), np.float32),
    )
    # DistributedSampler pads the last shard by repeating samples: keep one result per index
    by_index: dict[int, tuple[int, np.ndarray]] = {}
    for part_idx, part_labels, part_logits in all_gather_objects(info, local):
        for i, lab, lo in zip(part_idx.tolist(), part_labels.tolist(), part_logits):
            by_index.setdefault(i, (lab, lo))
    order = sorted(by_index)
    lab_arr = np.array([by_index[i][0] for i in order], dtype=np.int64)
    log_arr = np.stack([by_index[i][1] for i in order]).astype(np.float64) if order else np.zeros((0, len(streams), 2))
    return np.array(order, dtype=np.int64), lab_arr, log_arr


def evaluate(
    model: ForensicModel,
    loader: DataLoader,
    *,
    stream: str,
    criterion: torch.nn.Module,
    info: DistInfo,
    precision: str = "auto",
    name: str = CLEAN,
    progress: bool = False,
) -> EvalResult:
    """One stream's logits of every sample of the loader's dataset (:func:`predict`), and its loss."""
    indices, labels, logits = predict(model, loader, streams=(stream,), info=info, precision=precision, name=name, progress=progress)
    logits = logits[:, 0]
    loss = float(criterion(torch.from_numpy(logits).float(), torch.from_numpy(labels))) if len(indices) else math.nan
    return EvalResult(name=name, indices=indices, labels=labels, logits=logits, loss=loss)
