"""One writer per output folder: an exclusive lock on a file inside it, held while a run writes there.

A training run (``python -m train``, ``train distill``) or an analysis (``python -m analysis``)
appends to files of its output folder for minutes or hours; two of them at once in one folder
interleave their logs and records. :func:`lock_folder` takes an advisory ``flock`` on
``FOLDER/.lock`` (the kernel releases it when the process ends, however it ends: a kill -9 leaves
no stale lock) and writes the holder's PID into it, so the second run is refused in one line
naming that PID. Where ``fcntl`` does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderBusy", "FolderLock", "lock_folder", "LOCK_NAME"]

LOCK_NAME = ".lock"


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock; the message names its PID and what to do.

    Attributes:
        folder: the folder.
        pid: the holder's PID, if it could be read.
    """

    def __init__(self, folder: Path, pid: int | None, what: str) -> None:
        self.folder, self.pid = folder, pid
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{folder} is in use by {holder} (another {what} writing there): "
                         f"wait for it to finish, or choose another output folder")


class FolderLock:
    """A held folder lock; :meth:`release` (or leaving the ``with`` block, or the process ending) frees it."""

    def __init__(self, folder: Path, handle: IO[str] | None) -> None:
        self.folder = folder
        self._handle = handle

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # closing the last descriptor releases the flock

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(handle: IO[str], *, wait: float = 2.0) -> int | None:
    """The PID the holder wrote; it writes it just after taking the lock, so a run refused in
    that instant waits up to ``wait`` seconds for it."""
    deadline = time.monotonic() + wait
    while True:
        handle.seek(0)
        text = handle.read(32).strip()
        if text.isdigit() or time.monotonic() >= deadline:
            return int(text) if text.isdigit() else None
        time.sleep(0.02)


def lock_folder(folder: str | os.PathLike, *, what: str = "run") -> FolderLock:
    """Creates ``folder`` if needed and locks it for this process (without waiting).

    Args:
        folder: the output folder.
        what: what holds it, for the message (``training run``, ``analysis``).

    Raises:
        FolderBusy: another process (or another open lock in this one) holds it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover - Windows
        return FolderLock(folder, None)
    handle = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(handle)
        handle.close()
        raise FolderBusy(folder, pid, what) from None
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return FolderLock(folder, handle)
