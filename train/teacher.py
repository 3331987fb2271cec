"""The teacher of a distillation run: found and loaded as inference loads it, identified by its files.

The teacher is any weights folder or ``hf-hub:`` reference (``--teacher``), or a preset's published
weights (``--teacher-preset paper``: the authors' checkpoints, converted once by
:func:`forensic.convert.paper_seed_weights`). It is loaded with
:meth:`forensic.pipeline.Detector.from_pretrained`, the inference loader, so its preprocessing,
calibration temperatures and vote are exactly those of ``python -m forensic predict --weights``.

Its *fingerprint* hashes the folder's ``config.json`` and weight files: the distillation run's
data hash includes it (a resume refuses another teacher) and so does every key of the teacher
cache (another teacher never reads this one's outputs).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from forensic.config import ModelConfig
from forensic.pipeline import Detector, resolve_dtype
from forensic.presets import get_preset
from forensic.weights import WeightsInvalid, WeightsUnavailable, read_config, resolve_weights

from .config import ConfigError, DistillSection
from .distributed import DistInfo, barrier
from .modeling import RunWeightsUnavailable, find_hub_bases

__all__ = ["TeacherSource", "resolve_teacher", "load_teacher", "teacher_fingerprint", "teacher_device", "check_teacher_files", "TEACHER_HINT"]

log = logging.getLogger(__name__)

#: what to do when the teacher cannot be had (not when it is damaged: that error names the file)
TEACHER_HINT = ("The teacher's weights must be local or in the Hugging Face cache: download them once with network "
                "access, or give a local weights folder with --teacher DIR.")
# the safetensors header dtypes a weights file may hold (as forensic.weights.read_tensors checks)
_DTYPES = {"F32", "F16", "BF16"}
# files up to this size are hashed whole; bigger ones (an embedded giant base) by name, size and time
_HASH_LIMIT = 512 << 20


@dataclass(frozen=True)
class TeacherSource:
    """Where the teacher comes from, before it is loaded.

    Attributes:
        ref: what was asked for: the folder or ``hf-hub:`` reference, or ``preset:NAME``.
        folder: the local weights folder.
        config: its (checked) ``config.json``.
        fingerprint: a hash of its files (see :func:`teacher_fingerprint`).
    """

    ref: str
    folder: Path
    config: ModelConfig
    fingerprint: str

    def describe(self) -> str:
        """One line for logs and the model card."""
        where = f"the `{self.ref[len('preset:'):]}` preset's published weights" if self.ref.startswith("preset:") else f"`{self.ref}`"
        return f"{where} (preset `{self.config.preset}`, streams {', '.join(self.config.stream_names)}; fingerprint {self.fingerprint})"


def teacher_fingerprint(folder: Path, config: ModelConfig) -> str:
    """A hash of a weights folder: ``config.json`` and the files it names (stream files, embedded bases).

    Files up to 512 MB are hashed whole; larger ones by name, size and modification time (hashing
    an embedded 4 GB giant base at every start would cost more than it guards). Bases taken from
    the Hub are identified by their repo and pinned revision, which are in ``config.json``.
    """
    digest = hashlib.sha256()
    for name in ["config.json", *_weight_names(config)]:
        path = folder / name
        st = path.stat()
        digest.update(f"{name}:{st.st_size}".encode())
        if st.st_size > _HASH_LIMIT:
            digest.update(f":{st.st_mtime_ns}".encode())
            continue
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _weight_names(config: ModelConfig) -> list[str]:
    """The weights files of a folder, relative to it: stream files, then embedded bases."""
    names = [f"{s}.safetensors" for s in config.stream_names]
    return names + [spec.weights_file for spec in (config.dinov2, config.clip) if spec is not None and spec.weights_file]


def check_teacher_files(folder: Path, config: ModelConfig) -> None:
    """Checks every weights file of the teacher's folder from its header (present, not empty, not
    truncated, float weights) without reading the tensors: a damaged teacher fails the run at once,
    not after the data scan.

    Raises:
        forensic.weights.WeightsInvalid: a file config.json names is missing, empty, truncated, not safetensors, or of another dtype.
    """
    from safetensors import SafetensorError, safe_open

    for path in (folder / name for name in _weight_names(config)):
        if not path.is_file():
            raise WeightsInvalid(str(path), "config.json lists this file but it is missing")
        if path.stat().st_size == 0:
            raise WeightsInvalid(str(path), "the file is empty (an interrupted download or copy?)")
        try:
            with safe_open(str(path), framework="pt") as f:
                odd = sorted({f.get_slice(k).get_dtype() for k in f.keys()} - _DTYPES)
        except SafetensorError as exc:
            raise WeightsInvalid(str(path), f"the file is truncated or not a safetensors file ({exc})") from None
        except OSError as exc:
            raise WeightsInvalid(str(path), f"the file cannot be read ({exc.strerror or exc})") from None
        if odd:
            raise WeightsInvalid(str(path), f"it holds {', '.join(odd)} tensors; weights must be float32, float16 or bfloat16")


def _locate(section: DistillSection) -> tuple[str, Path]:
    if section.teacher:
        return section.teacher, resolve_weights(section.teacher)
    if section.teacher_preset:
        name = section.teacher_preset
        spec = get_preset(name)
        if spec.weights == "paper-seed":
            from forensic.convert import paper_seed_weights

            return f"preset:{name}", paper_seed_weights()
        if spec.weights:
            return f"preset:{name}", resolve_weights(spec.weights)
        raise ConfigError(f"the {name!r} preset has no published weights to teach with: give a weights folder with --teacher DIR")
    raise ConfigError("no teacher: pass --teacher DIR_OR_HF_HUB_REF (a weights folder) or --teacher-preset paper")


def resolve_teacher(section: DistillSection, *, info: DistInfo | None = None) -> TeacherSource:
    """Finds the teacher's weights folder (downloading or converting it once), checks and fingerprints it.

    Under torchrun rank 0 goes first, so a download or conversion happens once; the other ranks
    then find it in the cache.

    Raises:
        train.config.ConfigError: no teacher given, a preset without weights, or an untrained teacher.
        forensic.weights.WeightsUnavailable: the weights cannot be found or fetched (with what to do), or a
            file is damaged (:class:`~forensic.weights.WeightsInvalid`, checked from the headers: see
            :func:`check_teacher_files`).
    """
    info = info or DistInfo()
    found: tuple[str, Path] | None = None
    try:
        if info.is_main:
            found = _locate(section)
        barrier(info)
        if found is None:
            found = _locate(section)
    except WeightsInvalid:
        raise
    except WeightsUnavailable as exc:
        raise RunWeightsUnavailable(exc, TEACHER_HINT) from None
    ref, folder = found
    config = read_config(folder / "config.json")
    if config.untrained:
        raise ConfigError(f"the teacher {ref} is marked untrained (random weights): distilling it would copy noise")
    check_teacher_files(folder, config)
    find_hub_bases(config, TEACHER_HINT)  # the bases it takes from the Hub (paper: DINOv2 and CLIP)
    return TeacherSource(ref=ref, folder=folder, config=config, fingerprint=teacher_fingerprint(folder, config))


def teacher_device(section: DistillSection, info: DistInfo) -> torch.device:
    """The teacher's device: ``distill.teacher_device``, or the training device (``auto``)."""
    return info.device if section.teacher_device == "auto" else torch.device(section.teacher_device)


def load_teacher(source: TeacherSource, *, device: torch.device | str, dtype: str = "auto") -> Detector:
    """The teacher as a :class:`~forensic.pipeline.Detector` (bf16 on CUDA and float32 on CPU for ``auto``)."""
    resolved = resolve_dtype(None if dtype == "auto" else dtype, device)
    detector = Detector.from_pretrained(source.folder, device=str(device), dtype=resolved)
    detector.weights = source.ref
    log.info("teacher: %s on %s (%s)", source.describe(), device, str(resolved).replace("torch.", ""))
    return detector

