"""Files the app hands out for download (reports, CSV tables), in one bounded scratch folder.

Gradio copies a returned file into its own cache (cleaned by ``delete_cache``) as soon as the
handler returns, so our copy is only needed for a moment. Each new file removes the scratch
entries older than :data:`KEEP_SECONDS`, and the folder goes when the process exits: a
long-running Space never accumulates them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

__all__ = ["KEEP_SECONDS", "ScratchDir"]

#: how long a written file stays (Gradio has copied it long before)
KEEP_SECONDS = 600


class ScratchDir:
    """A private temporary folder; :meth:`write` puts each file in its own sub-folder (its name kept).

    Args:
        root: where to create it (default: the system temp folder).
        keep_seconds: entries older than this are removed on the next write.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, keep_seconds: float = KEEP_SECONDS) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="forensic-app-", dir=root))
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        atexit.register(shutil.rmtree, self.path, ignore_errors=True)

    def write(self, name: str, data: str | bytes) -> Path:
        """Writes ``data`` to a new ``<scratch>/<unique>/<name>`` and returns its path."""
        self.prune()
        folder = self.path / uuid.uuid4().hex
        folder.mkdir(parents=True)
        target = folder / Path(name).name
        if isinstance(data, str):
            target.write_text(data, encoding="utf-8")
        else:
            target.write_bytes(data)
        return target

    def prune(self, now: float | None = None) -> int:
        """Removes entries older than ``keep_seconds``; returns how many went."""
        now = time.time() if now is None else now
        removed = 0
        with self._lock:
            for entry in list(self.path.iterdir()) if self.path.exists() else []:
                try:
                    old = now - entry.stat().st_mtime > self.keep_seconds
                except OSError:
                    continue
                if old:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
        return removed
