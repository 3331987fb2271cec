"""Reading an authors' checkpoint: only tensors, split by model and renamed (:class:`SeedCheckpoint`)."""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..config import HeadConfig
from .errors import ConversionError
from .keys import convert_clip, convert_dinov2, convert_head, split_parts

__all__ = ["SeedCheckpoint", "read_seed_checkpoint"]


@dataclass
class SeedCheckpoint:
    """An authors' checkpoint, split and renamed.

    Attributes:
        stream: which stream it is.
        dinov2: the DINOv2 base in timm names (adapters not merged).
        clip: the CLIP visual tower in open_clip names, or None.
        stream_state: our stream file's tensors (``adapter.*`` and ``head.*``).
        lora_rank: the adapters' rank (0 when the checkpoint has no LoRA).
        head: the head configuration read from the tensors' shapes.
        layout: ``transformers-4`` (the authors' files) or ``transformers-5`` (renamed modules).
    """

    stream: str
    dinov2: dict[str, torch.Tensor]
    clip: dict[str, torch.Tensor] | None
    stream_state: dict[str, torch.Tensor]
    lora_rank: int
    head: HeadConfig
    layout: str


def read_seed_checkpoint(path: str | Path, *, stream: str) -> SeedCheckpoint:
    """Reads and splits an authors' ``.pth`` (or ``.safetensors``) checkpoint for ``stream``.

    Raises:
        ConversionError: keys that cannot be mapped (all listed), or inconsistent tensors.
    """
    path = Path(path)
    state = _load_tensors(path)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ConversionError(f"{path} does not hold a state dict of tensors")
    dino, clip, head, unmatched = split_parts(state)
    dinov2, adapter, rank, layout, bad_dino = convert_dinov2(dino)
    clip_state, bad_clip = convert_clip(clip) if clip else (None, [])
    head_state, head_cfg, bad_head = convert_head(head, stream)
    unmatched += bad_dino + [f"clip_model.{k}" for k in bad_clip] + bad_head
    if unmatched:
        raise ConversionError(f"{len(unmatched)} keys of {path.name} could not be mapped: {sorted(unmatched)}")
    if not dinov2:
        raise ConversionError(f"{path.name} holds no DINOv2 weights")
    if (stream == "fusion") != (clip_state is not None):
        raise ConversionError(
            f"{path.name}: the {stream} stream {'needs' if stream == 'fusion' else 'must not have'} CLIP weights"
        )
    return SeedCheckpoint(
        stream=stream,
        dinov2=dinov2,
        clip=clip_state,
        stream_state={**adapter, **head_state},
        lora_rank=rank,
        head=head_cfg,
        layout=layout,
    )


def _load_tensors(path: Path) -> object:
    """What a checkpoint file holds, read without running any pickled code.

    Raises:
        ConversionError: missing, empty, truncated, or pickling anything but tensors and containers.
    """
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ConversionError(f"{path} is empty (an interrupted download or copy?): download it again")
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except SafetensorError as exc:
            raise ConversionError(f"{path} is truncated or not a safetensors file ({exc}): download it again") from None
    try:
        with warnings.catch_warnings():  # an odd pickle protocol is refused below anyway, in one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message advises weights_only=False, i.e. running the file's code: never pass that on
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        calls = f" (it would call {found.group(1)})" if found else ""
        raise ConversionError(
            f"{path} is not a plain checkpoint of tensors{calls}, so it was not loaded: only state dicts of tensors "
            "are read and no code in a checkpoint is ever run; use the authors' original file"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        detail = str(exc).split(". ")[0].strip().rstrip(".")
        detail = "" if not detail or "weights_only" in detail else f" ({detail})"
        raise ConversionError(f"{path} is truncated or not a PyTorch checkpoint{detail}: download it again") from None
    except Exception:  # e.g. KeyError(101): a text file's first byte read as an unknown pickle opcode
        raise ConversionError(f"{path} is {_what_data(path)}, not a PyTorch checkpoint: pass the authors' .pth file") from None


def _what_data(path: Path) -> str:
    """``"text"`` or ``"unknown binary data"``, from the file's first bytes (for messages)."""
    with path.open("rb") as f:
        head = f.read(512)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary data"
    return "text" if all(ch.isprintable() or ch in "\t\r\n" for ch in text) else "unknown binary data"
