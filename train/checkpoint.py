"""Checkpoints: what a run needs to continue exactly where it stopped.

A checkpoint (``OUT/checkpoints/epoch_NNN.pt``, and ``best.pt``) holds the trained stream's weights
(adapter + head, in the export's naming), the optimizer and scheduler states, the number of
completed epochs and optimizer steps, the best validation AUC so far, the log history, the
torch RNG states and the config. It contains only tensors and plain data, so it loads with
``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointState", "save_checkpoint", "load_checkpoint", "latest_checkpoint", "checkpoint_dir", "prune_checkpoints"]

log = logging.getLogger(__name__)

FORMAT = "forensic-train-checkpoint"
VERSION = 1
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.pt")


@dataclass
class CheckpointState:
    """The contents of a checkpoint.

    Attributes:
        epoch: completed epochs.
        step: completed optimizer steps.
        stream: the stream's name.
        stream_state: the stream's adapter and head (``ForensicModel.stream_state_dict``).
        optimizer, scheduler: their ``state_dict()``.
        best_epoch, best_auc: the best validation so far (epoch 0 / NaN: none yet).
        history: the per-epoch log records so far.
        config: the run's config (``TrainConfig.to_dict()``).
        rng: torch's RNG states when the checkpoint was written.
    """

    epoch: int
    step: int
    stream: str
    stream_state: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    best_epoch: int = 0
    best_auc: float = float("nan")
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(states["cuda"])
        except (RuntimeError, ValueError):  # another number of GPUs: the per-epoch reseed covers it
            log.debug("could not restore the CUDA RNG states", exc_info=True)


def save_checkpoint(path: Path, state: CheckpointState) -> Path:
    """Writes ``state`` atomically (a crash mid-write never leaves a truncated checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **state.__dict__}
    payload["stream_state"] = {k: v.detach().to("cpu").contiguous() for k, v in state.stream_state.items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> CheckpointState:
    """Reads a checkpoint written by :func:`save_checkpoint` (``weights_only``: no code is unpickled).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a checkpoint of this trainer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a checkpoint of `python -m train` (export folders are loaded with init.from_dir)")
    if payload.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer trainer (version {payload['version']})")
    fields = CheckpointState.__dataclass_fields__
    return CheckpointState(**{k: v for k, v in payload.items() if k in fields})


def latest_checkpoint(out: Path) -> Path | None:
    """The epoch checkpoint with the highest epoch number in ``OUT/checkpoints``, or None."""
    folder = checkpoint_dir(out)
    found = [(int(m.group(1)), p) for p in folder.glob("epoch_*.pt") if (m := _EPOCH_FILE.fullmatch(p.name))]
    return max(found)[1] if found else None


def prune_checkpoints(out: Path, keep: int) -> None:
    """Deletes all but the ``keep`` latest epoch checkpoints (``keep = 0`` keeps all)."""
    if keep <= 0:
        return
    folder = checkpoint_dir(out)
    found = sorted((int(m.group(1)), p) for p in folder.glob("epoch_*.pt") if (m := _EPOCH_FILE.fullmatch(p.name)))
    for _, path in found[:-keep]:
        path.unlink(missing_ok=True)
