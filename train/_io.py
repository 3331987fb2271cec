"""Atomic file and folder writes: a run killed at any moment leaves each file old or new, never half.

Every writer goes to a temporary sibling (same folder, so the same file system), flushes it to disk
and renames it over the target with :func:`os.replace`, which is atomic on POSIX and Windows. The
temporary name is unique (PID and random suffix, created exclusively), so two processes writing one file at once
(a face cache shared by two runs) never write into each other's temporary file: the last rename wins.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_text", "atomic_copy", "replace_dir", "clean_partial_dirs"]

_PARTIAL, _OLD = ".partial", ".old"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Calls ``write(file)`` on a temporary sibling of ``path``, then renames it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    f = tmp.open("xb")  # exclusive: never another writer's file
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_copy(src: Path, dst: Path) -> Path:
    """Copies ``src`` to ``dst`` atomically (``dst`` is the old file or the full copy, never a part)."""
    with Path(src).open("rb") as source:
        return atomic_write(dst, lambda f: shutil.copyfileobj(source, f, 1 << 20))


def replace_dir(folder: Path, fill: Callable[[Path], object]) -> Path:
    """Writes a folder whole: ``fill(staging)`` builds it beside ``folder``, then it takes its place.

    A kill while filling leaves the old folder untouched (plus a ``.partial`` sibling that the next
    call removes). The swap is two renames; a kill between them leaves ``folder.old``, which
    :func:`clean_partial_dirs` puts back.
    """
    folder = Path(folder)
    clean_partial_dirs(folder)
    staging = folder.with_name(folder.name + _PARTIAL)
    staging.mkdir(parents=True)
    try:
        fill(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = folder.with_name(folder.name + _OLD)
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def clean_partial_dirs(folder: Path) -> None:
    """Removes what an interrupted :func:`replace_dir` left beside ``folder`` (restoring ``.old``)."""
    folder = Path(folder)
    staging, old = folder.with_name(folder.name + _PARTIAL), folder.with_name(folder.name + _OLD)
    if staging.exists():
        shutil.rmtree(staging)
    if old.exists():
        if folder.exists():
            shutil.rmtree(old)
        else:
            os.replace(old, folder)
