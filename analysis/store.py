"""Resumable per-image records: JSON Lines files keyed by (image, degradation, seed[, method]).

Every evaluated (image, condition) appends one line as soon as its batch is done, so an interrupted
run loses at most one batch; a rerun with the same ``--out`` reads the lines back and skips what is
there. Rows with an ``error`` are retried, and the retry's row replaces the failed one (the file is
rewritten, atomically, one line per key). A truncated last line (killed mid-write) is ignored.

The output folder remembers which model produced its records (``run.json``); reusing it with
another model is an error, because mixing records of two models would silently corrupt the tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from forensic.folder_lock import FolderBusy, FolderLock, lock_folder

__all__ = ["AnalysisError", "RowStore", "model_identity", "check_run_folder"]

log = logging.getLogger(__name__)


class AnalysisError(RuntimeError):
    """A study cannot run as asked; the message says what to change."""


def _clean_json(value: Any) -> Any:
    # NaN is not JSON: store None, read back as "missing"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


class RowStore:
    """A JSON Lines file of per-image rows, indexed by the fields in ``key_fields``.

    Args:
        path: the ``.jsonl`` file (created with its folder on first append).
        key_fields: the fields that identify a row; a later row with the same key replaces an earlier one.
    """

    def __init__(self, path: str | Path, *, key_fields: Sequence[str]) -> None:
        self.path = Path(path)
        self.key_fields = tuple(key_fields)
        self._rows: dict[tuple, dict[str, Any]] = {}
        self._stale = False  # the file holds more lines than keys (older runs appended reruns): rewritten on the next append
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        bad = lines = 0
        with self.path.open() as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    bad += 1  # a line cut short by an interrupted run: recomputed
                    continue
                lines += 1
                self._rows[self.key(row)] = row  # the last row of a key wins
        self._stale = bool(bad) or lines > len(self._rows)
        if bad:
            log.warning("%s: ignored %d unreadable line(s) (an interrupted run?); they will be recomputed", self.path, bad)
        log.debug("%s: %d rows", self.path, len(self._rows))

    def key(self, row: dict[str, Any]) -> tuple:
        """The row's key (a tuple of its ``key_fields``)."""
        return tuple(row.get(k) for k in self.key_fields)

    def get(self, key: tuple) -> dict[str, Any] | None:
        return self._rows.get(tuple(key))

    def done(self, key: tuple) -> bool:
        """Whether a row without error exists for ``key``."""
        row = self._rows.get(tuple(key))
        return row is not None and row.get("error") is None

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Writes rows (one line each, flushed) and indexes them; returns how many."""
        rows = [_clean_json(r) for r in rows]
        if not rows:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        replaces = self._stale or any(self.key(row) in self._rows for row in rows)
        for row in rows:
            self._rows[self.key(row)] = row
        if replaces:  # a rerun's row for a key already there (a failed one): one row per key, not another line
            self._rewrite()
            return len(rows)
        with self.path.open("a") as f:
            for row in rows:
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
            f.flush()
        return len(rows)

    def _rewrite(self) -> None:
        """Writes the file afresh, one line per key, to a temporary sibling renamed over it (a kill
        leaves the old file or the new one)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("w") as f:
                f.writelines(json.dumps(row, separators=(",", ":")) + "\n" for row in self._rows.values())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._stale = False

    def rows(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)


def model_identity(detector) -> dict[str, Any]:
    """What identifies a detector's outputs: preset, weights and a hash of config, adapters and heads.

    The bases are identified by the config (hub ids, revisions, init seeds); the trainable parts
    are hashed, so two differently trained models of one preset never share an output folder.
    """
    model = detector.model
    h = hashlib.sha1(model.config.to_json().encode())
    for module in (getattr(model, "adapters", None), getattr(model, "heads", None)):
        if module is None:
            continue
        for name, tensor in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return {
        "preset": detector.preset,
        "weights": detector.weights,
        "untrained": bool(detector.untrained),
        "fingerprint": h.hexdigest()[:16],
    }


#: the output folders this process holds (:func:`forensic.folder_lock.lock_folder`), for as long as it runs
_HELD: dict[Path, FolderLock] = {}


def _hold(out: Path) -> None:
    """Locks ``out`` for this process (once; released when it exits): two analyses never append to one folder."""
    key = out.resolve()
    if key not in _HELD:
        try:
            _HELD[key] = lock_folder(out, what="analysis")
        except FolderBusy as exc:
            raise AnalysisError(str(exc)) from None


def check_run_folder(out: Path, identity: dict[str, Any], *, fresh: bool = False, records: str = "records") -> None:
    """Makes ``out`` ready for this model: creates it, or checks that its records are this model's.

    Args:
        out: the output folder.
        identity: :func:`model_identity` of the detector.
        fresh: delete earlier records instead of resuming.
        records: the sub-folder holding the records.

    The folder stays locked for this process (:mod:`forensic.folder_lock`): another process running
    into it at the same time is refused, naming this one's PID.

    Raises:
        AnalysisError: ``out`` holds records of another model (and ``fresh`` is false), or another
            process is writing there.
    """
    _hold(out)
    meta = out / "run.json"
    if fresh and (out / records).exists():
        log.info("--fresh: removing earlier records in %s", out / records)
        shutil.rmtree(out / records)
    if meta.is_file() and (out / records).exists():
        try:
            earlier = json.loads(meta.read_text()).get("model", {})
        except (OSError, json.JSONDecodeError):
            earlier = {}
        if earlier.get("fingerprint") != identity["fingerprint"]:
            raise AnalysisError(
                f"{out} holds records of another model (preset {earlier.get('preset')!r}, weights "
                f"{earlier.get('weights')!r}, fingerprint {earlier.get('fingerprint')!r}; this one is "
                f"{identity['preset']!r}, {identity['weights']!r}, {identity['fingerprint']!r}): "
                "use another --out, or add --fresh to delete them"
            )
    meta.write_text(json.dumps({"model": identity}, indent=2) + "\n")
