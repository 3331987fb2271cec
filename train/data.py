"""The readability scan: every data file decoded once, before any dataset is built.

:func:`scan_samples` decodes every file with the decoder training uses (the verdicts are cached
with the faces, :mod:`train.face_cache`): unreadable files are listed and left out, or refused with
``data.strict``, so one bad file never stops a run halfway through an epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from forensic.data import Sample
from forensic.images import ImageError, load_image

from .distributed import DistInfo, all_gather_objects
from .face_cache import FaceCache, scan_key

__all__ = ["BadFile", "ScanResult", "scan_samples"]


@dataclass(frozen=True)
class BadFile:
    """A data file that cannot be used, and why (one line)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_samples` found.

    Attributes:
        readable: the samples whose files decode, in the given order.
        bad: the others, with the reason.
        decoded: files decoded by this call (the rest came from the cache).
    """

    readable: tuple[Sample, ...]
    bad: tuple[BadFile, ...]
    decoded: int


# the scan stays in this module: it decodes with the load_image looked up here (tests count the
# decodes by patching train.data.load_image)
def _unreadable_reason(path: Path) -> str | None:
    """None when ``path`` decodes as training will decode it, else the reason."""
    try:
        load_image(path)
    except ImageError as exc:
        return str(exc).rstrip(".") or exc.__class__.__name__
    return None


def scan_samples(
    samples: Sequence[Sample],
    cache: FaceCache,
    *,
    info: DistInfo,
    threads: int = 1,
    progress: bool = False,
) -> ScanResult:
    """Decodes every file once (with :func:`forensic.images.load_image`, as training does).

    Verdicts are cached by file identity (path, size, modification time), so a file is decoded
    again only after it changed. The files to decode are shared out over the ranks and gathered;
    rank 0 saves the cache.
    """
    keys: dict[Path, str] = {}
    missing: dict[Path, str] = {}
    for s in samples:
        try:
            keys[s.path] = scan_key(s.path)
        except OSError as exc:  # gone since it was listed, or no permission
            missing[s.path] = f"cannot open it ({exc.strerror or exc.__class__.__name__})"
    todo = sorted({key: path for path, key in keys.items() if key not in cache.scans}.items())
    mine = todo[info.rank :: info.world_size]
    found: dict[str, str | None] = {}
    if mine:
        paths = [path for _, path in mine]
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # decoding releases the GIL
            verdicts: Iterable[str | None] = pool.map(_unreadable_reason, paths)
            if progress and info.is_main:
                from tqdm import tqdm

                verdicts = tqdm(verdicts, total=len(paths), desc="scan images", unit="img", leave=False)
            found = {key: reason for (key, _), reason in zip(mine, verdicts)}
    gathered = all_gather_objects(info, found)
    for part in gathered:
        for key, reason in part.items():
            cache.put_scan(key, reason)
    if todo and info.is_main:
        cache.save()
    readable, bad = [], []
    for s in samples:
        reason = missing[s.path] if s.path in missing else cache.scans.get(keys[s.path])
        if reason:
            bad.append(BadFile(s.path, reason))
        else:
            readable.append(s)
    return ScanResult(readable=tuple(readable), bad=tuple(bad), decoded=len(todo))
