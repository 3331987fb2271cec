"""Checkpoints: what a run needs to continue exactly where it stopped.

A checkpoint (``OUT/checkpoints/epoch_NNN.pt``, and ``best.pt``) holds the trained stream's weights
(adapter + head, in the export's naming), the optimizer and scheduler states, the number of
completed epochs and optimizer steps, the best validation AUC so far, the log history, the
torch RNG states, the config and the run's fingerprint (hashes of the training config and of the
data manifest, see :mod:`train.rundir`), so a resume can refuse another run's checkpoint. It
contains only tensors and plain data, so it loads with ``torch.load(weights_only=True)``: no
pickled code. Every write is atomic (:mod:`train._io`).
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ._io import atomic_copy, atomic_write

__all__ = [
    "CheckpointError",
    "CheckpointState",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "epoch_checkpoints",
    "checkpoint_dir",
    "prune_checkpoints",
    "copy_checkpoint",
    "remove_checkpoints_after",
    "sync_best",
]

log = logging.getLogger(__name__)

FORMAT = "forensic-train-checkpoint"
VERSION = 2  # 2: config_hash and data_hash
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.pt")


class CheckpointError(ValueError):
    """A checkpoint cannot be used: not one of ours, newer, another stream or another run."""


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
        config_hash, data_hash: the run's fingerprint (empty in checkpoints of version 1).
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
    config_hash: str = ""
    data_hash: str = ""


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
    try:
        return atomic_write(path, lambda f: torch.save(payload, f))
    except (OSError, RuntimeError) as exc:
        raise _disk_full(path, exc) or exc


def copy_checkpoint(src: Path, dst: Path) -> Path:
    """Copies a checkpoint atomically (``best.pt`` is always a whole checkpoint)."""
    try:
        return atomic_copy(src, dst)
    except OSError as exc:
        raise _disk_full(dst, exc) or exc


#: errno values of a full disk, a file-size limit or a full quota
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _disk_full(path: Path, exc: BaseException) -> CheckpointError | None:
    """A one-line :class:`CheckpointError` when ``exc`` (or what caused it: torch.save wraps the
    OSError in a RuntimeError) is a full disk; None otherwise. The temporary file is already gone."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return CheckpointError(f"cannot write {path}: no space left on the device "
                                   "(free some space, then continue with --resume auto)")
        seen = seen.__cause__ or seen.__context__
    return None


def load_checkpoint(path: str | os.PathLike) -> CheckpointState:
    """Reads a checkpoint written by :func:`save_checkpoint` (``weights_only``: no code is unpickled).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a checkpoint of this trainer (or a truncated one).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:  # truncated or not a torch file
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc.__class__.__name__}): delete it or resume from another one") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of `python -m train` (export folders are loaded with init.from_dir)")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer trainer (version {payload['version']}): update this package")
    fields = CheckpointState.__dataclass_fields__
    return CheckpointState(**{k: v for k, v in payload.items() if k in fields})


def epoch_checkpoints(out: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the epoch checkpoints in ``OUT/checkpoints``, by epoch."""
    folder = checkpoint_dir(out)
    return sorted((int(m.group(1)), p) for p in folder.glob("epoch_*.pt") if (m := _EPOCH_FILE.fullmatch(p.name)))


def latest_checkpoint(out: Path) -> Path | None:
    """The epoch checkpoint with the highest epoch number in ``OUT/checkpoints``, or None."""
    found = epoch_checkpoints(out)
    return found[-1][1] if found else None


def prune_checkpoints(out: Path, keep: int) -> None:
    """Deletes all but the ``keep`` latest epoch checkpoints (``keep = 0`` keeps all)."""
    if keep <= 0:
        return
    for _, path in epoch_checkpoints(out)[:-keep]:
        path.unlink(missing_ok=True)


def remove_checkpoints_after(out: Path, epoch: int) -> list[Path]:
    """Deletes the epoch checkpoints later than ``epoch`` (a resume re-runs those epochs); returns them."""
    removed = [path for e, path in epoch_checkpoints(out) if e > epoch]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def sync_best(out: Path, best_epoch: int) -> None:
    """Makes ``best.pt`` the checkpoint of ``best_epoch`` again, if it is not.

    It can differ after a kill between an epoch's checkpoint and its ``best.pt`` copy, or after a
    resume from an earlier epoch than the folder's latest.
    """
    folder = checkpoint_dir(out)
    best = folder / "best.pt"
    if best.is_file():
        try:
            if load_checkpoint(best).epoch == best_epoch:
                return
        except CheckpointError:
            pass  # unreadable: replaced below
    if best_epoch <= 0:
        best.unlink(missing_ok=True)
        return
    source = folder / f"epoch_{best_epoch:03d}.pt"
    if source.is_file():
        copy_checkpoint(source, best)
        log.info("best.pt restored from %s", source.name)
    else:
        best.unlink(missing_ok=True)
        log.warning("the checkpoint of the best epoch %d was pruned (keep_checkpoints): best.pt starts again from the resumed epochs", best_epoch)
