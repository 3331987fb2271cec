"""Validation: one stream's logits on every sample of a loader, gathered over the ranks.

:func:`evaluate` is used after every validated epoch (:mod:`train.engine`) and by the export on
the best checkpoint (:mod:`train.export`); :class:`EvalResult` turns the logits into metrics.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from forensic.calibration import apply_temperature
from forensic.metrics import binary_metrics
from forensic.model import ForensicModel
from forensic.precision import autocast

from .distributed import DistInfo, all_gather_objects

__all__ = ["CLEAN", "EvalResult", "evaluate"]

#: the name of the undegraded validation set
CLEAN = "clean"


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
    """Logits of every sample of the loader's dataset (shards gathered and de-duplicated)."""
    model.eval()
    idx, labels, logits = [], [], []
    bar = loader
    if progress and info.is_main:
        from tqdm import tqdm

        bar = tqdm(loader, desc=f"val {name}", unit="batch", leave=False, file=sys.stderr)
    for batch in bar:
        x = batch["x"].to(info.device, non_blocking=True)
        with autocast(info.device, precision):
            out = model.forward_stream(stream, x).logits
        logits.append(out.float().cpu())
        labels.append(batch["label"])
        idx.append(batch["index"])
    local = (
        torch.cat(idx).numpy() if idx else np.zeros(0, np.int64),
        torch.cat(labels).numpy() if labels else np.zeros(0, np.int64),
        torch.cat(logits).numpy() if logits else np.zeros((0, 2), np.float32),
    )
    parts = all_gather_objects(info, local)
    # DistributedSampler pads the last shard by repeating samples: keep one result per index
    by_index: dict[int, tuple[int, np.ndarray]] = {}
    for part_idx, part_labels, part_logits in parts:
        for i, lab, lo in zip(part_idx.tolist(), part_labels.tolist(), part_logits):
            by_index.setdefault(i, (lab, lo))
    order = sorted(by_index)
    lab_arr = np.array([by_index[i][0] for i in order], dtype=np.int64)
    log_arr = np.stack([by_index[i][1] for i in order]).astype(np.float64) if order else np.zeros((0, 2))
    loss = float(criterion(torch.from_numpy(log_arr).float(), torch.from_numpy(lab_arr))) if order else math.nan
    return EvalResult(name=name, indices=np.array(order, dtype=np.int64), labels=lab_arr, logits=log_arr, loss=loss)
