"""The output folder of a run: whose run it holds, and a log that agrees with the checkpoints.

A run is identified by its *fingerprint*: a hash of the settings that decide what it computes (the
resolved config without paths, progress bars, thread counts, export options...) and a hash of its
data manifest (every training and validation file by path relative to the data root, label, split
and size). Checkpoints and ``log.jsonl`` record it, so:

- a resume refuses a checkpoint (or a folder) of another run, in one line naming what differs;
- a fresh run refuses a folder that already holds a run, unless told to overwrite it;
- ``log.jsonl`` is rebuilt on resume from the checkpoint's history: an epoch logged but not
  checkpointed before a kill is dropped, one checkpointed but not logged is added, a half-written
  line is discarded. Every epoch appears once, whatever was interrupted where.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensic.data import Sample

from ._io import atomic_write_text, clean_partial_dirs
from ._json import jsonable
from .checkpoint import CheckpointState, checkpoint_dir
from .config import TrainConfig
from .samples import DataSplit

__all__ = [
    "RunFolderError",
    "RunFingerprint",
    "RUNTIME_KEYS",
    "run_fingerprint",
    "data_root",
    "relative_name",
    "config_identity",
    "run_outputs",
    "check_new_run",
    "clear_run",
    "check_checkpoint",
    "check_log",
    "read_log",
    "rebuild_log",
    "LOG_NAME",
]

log = logging.getLogger(__name__)

LOG_NAME = "log.jsonl"

#: Config keys that say where or how fast a run goes, not what it computes: they may change
#: between a run and its resume (``export.*`` too: the export comes after training).
RUNTIME_KEYS = frozenset({
    "resume", "progress", "threads", "device", "keep_checkpoints",
    "data.path", "data.num_workers", "data.face_cache", "data.face_device", "data.eval_batch_size", "data.strict",
    # distillation: where the teacher is found and how fast it runs (its identity is in the data hash)
    "distill.teacher", "distill.teacher_preset", "distill.cache", "distill.teacher_batch_size",
    "distill.teacher_device", "distill.teacher_dtype",
})
_RUNTIME_SECTIONS = ("export.",)
# what a run writes into OUT (the face cache is keyed by file content and survives --overwrite)
_RUN_FILES = (LOG_NAME, "metrics.json", "val_predictions.jsonl", "train_config.yaml")
_RUN_DIRS = ("export",)
_WHAT_TO_DO = "start a new run with --overwrite (or another --out)"


class RunFolderError(ValueError):
    """The output folder or checkpoint belongs to another run; the message says what to do."""


@dataclass(frozen=True)
class RunFingerprint:
    """What identifies a run: hashes of its config (runtime keys left out) and of its data manifest."""

    config_hash: str
    data_hash: str

    def to_dict(self) -> dict[str, str]:
        return {"config_hash": self.config_hash, "data_hash": self.data_hash}


# --------------------------------------------------------------------------------- fingerprint
def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_identity(config: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The dotted config keys and values that decide what a run computes (:data:`RUNTIME_KEYS` out)."""
    raw = config.to_dict() if isinstance(config, TrainConfig) else _normalised(config)
    return {
        key: value for key, value in sorted(_flatten(raw).items())
        if key not in RUNTIME_KEYS and not key.startswith(_RUNTIME_SECTIONS)
    }


def _normalised(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config dict with today's defaults filled in (an older checkpoint may lack new keys)."""
    from .config import ConfigError, DistillConfig, TrainConfig, from_dict

    try:
        return from_dict(raw, DistillConfig if "distill" in raw else TrainConfig).to_dict()
    except ConfigError:
        return dict(raw)


def _digest(data: Any) -> str:
    text = json.dumps(jsonable(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_root(cfg: TrainConfig) -> Path:
    """The folder data paths are relative to: the data folder, or the manifest's folder."""
    source = Path(cfg.data.path or ".").expanduser()
    return source if source.is_dir() else source.parent


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (absolute when on another drive)."""
    return _relative(path, root)


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_posix()


def _manifest_rows(samples: Sequence[Sample], part: str, root: Path) -> list[list[Any]]:
    rows = []
    for s in samples:
        try:
            size = s.path.stat().st_size
        except OSError:
            size = -1
        rows.append([part, _relative(s.path, root), -1 if s.label is None else int(s.label), size])
    return rows


def run_fingerprint(cfg: TrainConfig, split: DataSplit, *, labeller: Mapping[str, Any] | None = None) -> RunFingerprint:
    """The fingerprint of a run on ``split`` (the samples left after the readability scan).

    Paths are relative to the data folder (or the manifest's folder), so moving the data keeps it.
    ``labeller`` identifies where the targets come from when not from the labels (a distillation
    teacher's hash): it is part of the data, so a resume refuses another teacher.
    """
    root = data_root(cfg)
    rows = sorted(_manifest_rows(split.train, "train", root) + _manifest_rows(split.val, "val", root))
    data = rows if labeller is None else {"files": rows, "labeller": dict(labeller)}
    return RunFingerprint(config_hash=_digest(config_identity(cfg)), data_hash=_digest(data))


def _config_changes(old: Mapping[str, Any], new: TrainConfig, limit: int = 4) -> str:
    before, after = config_identity(old), config_identity(new)
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k, "(unset)") != after.get(k, "(unset)"))
    shown = [f"{k} {before.get(k, '(unset)')!r} -> {after.get(k, '(unset)')!r}" for k in keys[:limit]]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(shown) + more


# --------------------------------------------------------------------------------- the folder
def run_outputs(out: Path) -> list[str]:
    """The files and folders of a training run present in ``out`` (relative names)."""
    found = [name for name in (LOG_NAME, "metrics.json", "val_predictions.jsonl") if (out / name).is_file()]
    found += [f"{name}/" for name in _RUN_DIRS if (out / name).is_dir()]
    found += [f"checkpoints/{p.name}" for p in sorted(checkpoint_dir(out).glob("*.pt"))]
    return found


def check_new_run(out: Path, *, resume: str | None, overwrite: bool) -> None:
    """Refuses to start a fresh run (``resume`` None) in a folder that holds one, unless ``overwrite``.

    Only reads the folder, so every rank can call it.

    Raises:
        RunFolderError: ``out`` holds a run and neither resume nor overwrite was asked for, or both were.
    """
    if overwrite and resume is not None:
        raise RunFolderError("--overwrite starts a new run and --resume continues one: pass only one of them")
    if overwrite or resume is not None:
        return
    found = run_outputs(out)
    if found:
        listed = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise RunFolderError(
            f"{out} already holds a training run ({listed}): continue it with --resume auto, "
            "replace it with --overwrite, or choose another --out"
        )


def clear_run(out: Path) -> list[str]:
    """Deletes an earlier run's outputs from ``out`` (``--overwrite``); the face cache stays."""
    removed = run_outputs(out)
    for name in _RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in _RUN_DIRS:
        clean_partial_dirs(out / name)
        if (out / name).exists():
            shutil.rmtree(out / name)
    if checkpoint_dir(out).exists():
        shutil.rmtree(checkpoint_dir(out))
    if removed:
        log.info("--overwrite: removed the earlier run in %s (%s)", out, ", ".join(removed[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed


def check_checkpoint(path: Path, state: CheckpointState, fingerprint: RunFingerprint, cfg: TrainConfig) -> None:
    """Refuses a checkpoint written by another run (other config or data).

    Checkpoints from before fingerprints (version 1) are checked on their stored config alone.

    Raises:
        RunFolderError: the checkpoint's config or data differ from this run's.
    """
    config_hash = state.config_hash or _digest(config_identity(state.config))
    if config_hash != fingerprint.config_hash:
        changes = _config_changes(state.config, cfg) or "settings"
        raise RunFolderError(
            f"cannot resume from {path}: it belongs to another run (config differs: {changes}); "
            f"resume with the same config and data, or {_WHAT_TO_DO}"
        )
    if not state.data_hash:
        log.warning("%s predates run fingerprints: its config matches, but its data cannot be checked", path)
    elif state.data_hash != fingerprint.data_hash:
        raise RunFolderError(
            f"cannot resume from {path}: it was trained on other data (the files, labels, split or teacher differ); "
            f"resume with the same data, or {_WHAT_TO_DO}"
        )


def check_log(out: Path, fingerprint: RunFingerprint, cfg: TrainConfig) -> None:
    """Refuses a folder whose ``log.jsonl`` was started by another run.

    Raises:
        RunFolderError: the log's latest start record has another fingerprint.
    """
    starts = [r for r in read_log(out / LOG_NAME) if r.get("event") == "start" and isinstance(r.get("run"), Mapping)]
    if not starts:
        return
    recorded = starts[-1]["run"]
    if recorded.get("config_hash") != fingerprint.config_hash:
        what = "another config"
        before = _folder_config(out)
        changes = _config_changes(before, cfg) if before else ""
        if changes:
            what += f": {changes}"
    elif recorded.get("data_hash") != fingerprint.data_hash:
        what = "other data (files, labels, split or teacher)"
    else:
        return
    raise RunFolderError(f"{out} holds another run ({LOG_NAME} records {what}); {_WHAT_TO_DO}")


def _folder_config(out: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load((out / "train_config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


# --------------------------------------------------------------------------------- the log
def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a ``log.jsonl``; lines that do not parse (a write cut short) are skipped."""
    if not path.is_file():
        return []
    records, bad = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad += 1
    if bad:
        log.warning("%s: dropped %d unreadable line(s) (a write cut short?)", path, bad)
    return records


def rebuild_log(path: Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Rewrites ``log.jsonl`` (atomically) so its epoch records are exactly ``history``.

    Non-epoch records (start records of earlier attempts) keep their place; an epoch record is kept
    only if the checkpoint has that epoch (and then as the checkpoint recorded it), once; epochs of
    ``history`` missing from the log are appended.
    """
    by_epoch = {int(r["epoch"]): r for r in history}
    kept: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    records = read_log(path)
    for record in records:
        if record.get("event") != "epoch":
            kept.append(record)
            continue
        epoch = record.get("epoch")
        if epoch in by_epoch and epoch not in seen:
            kept.append(by_epoch[epoch])
            seen.add(epoch)
    kept.extend(by_epoch[e] for e in sorted(by_epoch) if e not in seen)
    dropped = sum(r.get("event") == "epoch" for r in records) - len(seen)
    if dropped:
        log.info("%s: dropped %d epoch record(s) without a checkpoint (they are trained again)", path, dropped)
    if records or kept:
        atomic_write_text(path, "".join(json.dumps(jsonable(r)) + "\n" for r in kept))
