"""Labelled image data on disk: a folder with ``real/`` and ``fake/``, or a CSV manifest.

One reader for everything that runs on a data set: ``python -m train`` (and distillation) and
``python -m analysis`` read the same layouts with :func:`read_samples`, and see the same image
files as ``python -m forensic predict`` (:data:`IMAGE_EXTENSIONS`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DataError", "IMAGE_EXTENSIONS", "Sample", "read_samples"]

#: the file suffixes (lower case) read as images when a folder is listed
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif", ".ppm", ".avif"}
)
_LABELS = {"real": 0, "fake": 1, "0": 0, "1": 1}
_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class DataError(ValueError):
    """The data is missing, malformed or unusable; the message says what to fix."""


@dataclass(frozen=True)
class Sample:
    """One image file with its label (0 = real, 1 = fake, None = unknown) and, from a manifest, its split.

    Unlabelled samples come only from ``read_samples(..., labels="optional")`` (distillation,
    where the teacher labels the images and true labels serve only for reporting).
    """

    path: Path
    label: int | None
    split: str | None = None


def read_samples(source: str | os.PathLike, *, labels: Literal["required", "optional"] = "required") -> list[Sample]:
    """Reads a folder with ``real/`` and ``fake/`` subfolders (recursively) or a CSV manifest.

    A manifest has columns ``path,label[,split]`` (a header row is optional); labels are
    ``real``/``fake`` or ``0``/``1``; splits ``train``/``val`` (``test`` rows are skipped);
    relative paths are relative to the CSV file.

    With ``labels="optional"`` (distillation) a folder without ``real/`` and ``fake/`` is read
    whole (every image at any depth, unlabelled), a manifest may be a single ``path`` column
    (or have a header naming its columns, e.g. ``path,split``), and an empty label cell means
    unlabelled.

    Raises:
        DataError: no such folder or file, a file that is not a text CSV, no images, bad labels or splits.
    """
    path = Path(source).expanduser()
    if labels not in ("required", "optional"):
        raise ValueError(f"labels must be 'required' or 'optional', got {labels!r}")
    optional = labels == "optional"
    if path.is_dir():
        if optional and not (path / "real").is_dir() and not (path / "fake").is_dir():
            return _read_unlabelled_folder(path)
        return _read_folder(path)
    if path.is_file():
        return _read_manifest(path, labels_optional=optional)
    raise DataError(f"no such data folder or manifest: {path}")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _read_unlabelled_folder(folder: Path) -> list[Sample]:
    samples = [Sample(p, None) for p in _image_files(folder)]
    if not samples:
        raise DataError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {folder}")
    return samples


def _read_folder(folder: Path) -> list[Sample]:
    samples = []
    for name, label in (("real", 0), ("fake", 1)):
        sub = folder / name
        if sub.is_dir():
            samples.extend(Sample(p, label) for p in _image_files(sub))
    if not (folder / "real").is_dir() and not (folder / "fake").is_dir():
        raise DataError(
            f"{folder} has neither a real/ nor a fake/ subfolder: put the images in DATA/real/ and DATA/fake/ "
            "(any depth), or pass a CSV manifest path,label[,split]"
        )
    if not samples:
        raise DataError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {folder}/real or {folder}/fake")
    return samples


def _manifest_rows(path: Path) -> list[list[str]]:
    """The non-empty rows of a CSV manifest; a file that is not CSV text is one :class:`DataError`."""
    not_text = f"{path} is not a CSV manifest"
    fix = "pass a folder of images, or a UTF-8 CSV file with path,label[,split] rows"
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # stops at the first bad byte
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise DataError(f"{not_text}: byte {exc.start} is not UTF-8 text (an image or binary file?); {fix}") from None
    except csv.Error as exc:
        raise DataError(f"{not_text} ({exc}); {fix}") from None
    if any("\x00" in cell for row in rows for cell in row):
        raise DataError(f"{not_text}: it holds NUL bytes (a binary file?); {fix}")
    return rows


def _read_manifest(path: Path, *, labels_optional: bool = False) -> list[Sample]:
    rows = _manifest_rows(path)
    first = [c.strip().lower() for c in rows[0]] if rows else []
    if first[:2] == ["path", "label"] or (labels_optional and first[:1] == ["path"]):
        header = first
        rows = rows[1:]
    else:
        header = ["path", "label", "split"][: max(len(row) for row in rows)] if rows else []
    unknown = set(header) - {"path", "label", "split"}
    if unknown:
        raise DataError(f"{path}: unknown manifest column(s) {sorted(unknown)}; use path,label[,split]")
    samples = []
    for line, row in enumerate(rows, start=2 if header is first else 1):
        record = dict(zip(header, (c.strip() for c in row)))
        if (len(row) < 2 and not labels_optional) or not record.get("path"):
            raise DataError(f"{path}, row {line}: expected path,label[,split], got {row}")
        text = record.get("label", "")
        if labels_optional and not text:
            label = None  # unlabelled: the teacher labels it
        else:
            label = _LABELS.get(text.lower())
            if label is None:
                raise DataError(f"{path}, row {line}: label {text!r} is not real, fake, 0 or 1")
        split = record.get("split") or None
        if split is not None:
            if split.lower() not in _SPLITS:
                raise DataError(f"{path}, row {line}: split {split!r} is not one of train, val, test")
            split = _SPLITS[split.lower()]
            if split == "test":
                continue
        file = Path(record["path"]).expanduser()
        file = file if file.is_absolute() else path.parent / file
        samples.append(Sample(file, label, split))
    if not samples:
        raise DataError(f"{path}: the manifest lists no train/val images")
    missing = [s.path for s in samples if not s.path.is_file()]
    if missing:
        raise DataError(f"{path}: {len(missing)} listed file(s) do not exist, e.g. {missing[0]}")
    with_split = sum(s.split is not None for s in samples)
    if 0 < with_split < len(samples):
        raise DataError(f"{path}: give a split for every row or for none ({with_split} of {len(samples)} have one)")
    return samples
