"""Face analyses of the training images: detected once, kept in a JSON cache keyed by file identity.

Detection (MTCNN, ~60 ms per image on a CPU) runs once per image; later epochs, resumed runs and
other streams trained on the same data read :class:`FaceCache`. :func:`ensure_faces` fills it for
the datasets that crop faces, shared out over the ranks.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from forensic.faces import CropRegion, FaceBox, FaceResult
from forensic.images import load_image

from ._io import atomic_write_text
from .distributed import DistInfo, all_gather_objects

__all__ = ["file_key", "scan_key", "face_result_from_dict", "FaceCache", "FaceUser", "ensure_faces"]

log = logging.getLogger(__name__)

# the readability verdicts of train.data.scan_samples are kept in the same file, under keys ending so (scan_key)
_SCAN = "|scan"
_RECT = ("x0", "y0", "x1", "y1")
_BOX = (*_RECT, "score")
# images per face-detection call (bounds the decoded images held at once)
_FACE_BATCH = 8


def file_key(path: Path) -> str:
    """Identifies a file's content cheaply: resolved path, size and modification time."""
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def scan_key(path: Path) -> str:
    """The key of ``path``'s readability verdict in a :class:`FaceCache`."""
    return file_key(path) + _SCAN


def _numbers(data: Mapping[str, Any], fields: Sequence[str]) -> dict[str, float]:
    values = {k: data[k] for k in fields}
    if len(data) != len(fields) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                           for v in values.values()):
        raise ValueError(f"expected the finite numbers {', '.join(fields)}, got {dict(data)!r}")
    return values


def face_result_from_dict(data: Mapping[str, Any]) -> FaceResult:
    """Rebuilds a :class:`FaceResult` from :meth:`FaceResult.to_dict` (the cache format).

    Raises:
        KeyError, TypeError, ValueError: ``data`` is not of that shape (a damaged cache entry).
    """
    box, size = data.get("box"), data["image_size"]
    if not isinstance(data["mode"], str) or not isinstance(data["reason"], str) or len(size) != 2:
        raise ValueError("mode and reason must be strings and image_size a pair")
    return FaceResult(
        mode=data["mode"],
        box=FaceBox(**_numbers(box, _BOX)) if box else None,
        region=CropRegion(**_numbers(data["region"], _RECT)),
        faces=tuple(FaceBox(**_numbers(f, _BOX)) for f in data.get("faces", ())),
        found_by=data.get("found_by"),
        reason=data["reason"],
        image_size=(int(size[0]), int(size[1])),
    )


class FaceCache:
    """Face analyses (and readability verdicts) keyed by file identity and view, persisted as JSON.

    Detection (MTCNN, ~60 ms per image on a CPU) runs once per image; later epochs, resumed runs
    and other streams trained on the same data read the cache. The readability scan of
    :func:`train.data.scan_samples` is kept in the same file, under keys ending in ``|scan``.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._raw: dict[str, dict] = {}
        self.results: dict[str, FaceResult] = {}
        self.scans: dict[str, str | None] = {}
        if path is not None and path.is_file():
            self._load(path)

    def _load(self, path: Path) -> None:
        """Reads the cache; a damaged one (not JSON, not an object, entries of the wrong shape) is
        discarded with a warning, entry by entry: what is dropped is detected again and saved."""
        try:
            raw = json.loads(path.read_text(errors="replace"))
        except (json.JSONDecodeError, OSError, RecursionError) as exc:
            log.warning("the face cache %s is unreadable (%s); it is rebuilt", path, type(exc).__name__)
            return
        if not isinstance(raw, dict):
            log.warning("the face cache %s holds a JSON %s, not an object; it is rebuilt", path, type(raw).__name__)
            return
        bad = 0
        for key, value in raw.items():
            try:
                if key.endswith(_SCAN):
                    error = value["error"]
                    if error is not None and not isinstance(error, str):
                        raise TypeError("error is not a string")
                    self.scans[key] = error
                else:
                    self.results[key] = face_result_from_dict(value)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                bad += 1
                continue
            self._raw[key] = value
        if bad:
            log.warning("the face cache %s has %d damaged entr%s; discarded, they are detected again",
                        path, bad, "y" if bad == 1 else "ies")

    def __contains__(self, key: str) -> bool:
        return key in self.results

    def put(self, key: str, data: Mapping[str, Any]) -> None:
        self._raw[key] = dict(data)
        self.results[key] = face_result_from_dict(data)

    def put_scan(self, key: str, error: str | None) -> None:
        """Records whether the file of ``key`` (:func:`scan_key`) decodes (None) or why not."""
        self._raw[key] = {"error": error}
        self.scans[key] = error

    def save(self) -> None:
        if self.path is None:
            return
        # atomic, under a unique temporary name: an interrupted run never leaves half a cache, and two
        # runs sharing the cache never write into each other's temporary file
        atomic_write_text(self.path, json.dumps(self._raw))


class FaceUser(Protocol):
    """A dataset whose images are cropped with face analyses (:class:`train.datasets.StreamDataset`)."""

    faces: Mapping[str, Any]

    def face_requests(self) -> tuple[dict[str, Path], dict[str, int]]:
        """``({key: file}, {key: index})``: analyses of clean files, and of renderings of an index."""

    def render(self, index: int) -> np.ndarray:
        """The rendering of ``index`` its analysis is detected on."""


def ensure_faces(
    datasets: Sequence[FaceUser],
    cache: FaceCache,
    *,
    info: DistInfo,
    detector_factory: Callable[[], Any],
    progress: bool = False,
) -> int:
    """Detects the faces the datasets need and are not cached, shared out over the ranks.

    Clean files first (pseudo-fake boxes depend on them), then rendered evaluation images. Rank 0
    saves the cache. Afterwards every dataset's ``faces`` points at the cache.

    Returns:
        The number of detections this call ran (over all ranks).
    """
    detector = None
    ran = 0
    for phase in ("clean", "rendered"):
        todo: dict[str, Callable[[], np.ndarray]] = {}
        for ds in datasets:
            ds.faces = cache.results
            clean, rendered = ds.face_requests()
            if phase == "clean":
                todo.update({k: (lambda p=p: load_image(p)) for k, p in clean.items() if k not in cache})
            else:
                todo.update({k: (lambda d=ds, i=i: d.render(i)) for k, i in rendered.items() if k not in cache})
        keys = sorted(todo)[info.rank :: info.world_size]
        results: dict[str, dict] = {}
        if keys:
            detector = detector or detector_factory()
            bar = None
            if progress and info.is_main:
                from tqdm import tqdm

                bar = tqdm(total=len(keys), desc=f"faces ({phase})", unit="img", leave=False)
            # FaceDetector.analyze_batch runs MTCNN on several images at once, as inference does
            batched = getattr(detector, "analyze_batch", None)
            for start in range(0, len(keys), _FACE_BATCH):
                chunk = keys[start : start + _FACE_BATCH]
                images = [todo[key]() for key in chunk]
                found = batched(images) if batched is not None else [detector.analyze(image) for image in images]
                results.update((key, face.to_dict()) for key, face in zip(chunk, found))
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        gathered = all_gather_objects(info, results)
        for part in gathered:
            for key, data in part.items():
                cache.put(key, data)
        ran += sum(len(p) for p in gathered)
    if ran and info.is_main:
        cache.save()
    for ds in datasets:
        ds.faces = cache.results
    return ran
