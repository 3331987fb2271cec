"""Awkward inputs shared by the reliability tests: generators of damaged files and folders.

Plain functions, no fixtures: each writes under a folder the caller gives (a pytest ``tmp_path``)
and returns the path it made. Weights-folder generators start from a good folder
(:func:`good_weights_folder`, build it once per module) and copy it before damaging the copy, so
one good folder serves every test.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------ weights folders
#: the files of a tiny-random weights folder made by save_pretrained
STREAM_FILES = ("texture.safetensors", "face.safetensors", "fusion.safetensors")


def good_weights_folder(folder: str | os.PathLike, *, seed: int = 3) -> Path:
    """A valid tiny-random weights folder (bases embedded), as ``save_pretrained`` writes it."""
    from forensic.model import ForensicModel
    from forensic.presets import get_preset
    from forensic.weights import save_pretrained

    model = ForensicModel.random(get_preset("tiny-random").config, seed=seed).eval()
    return save_pretrained(model, Path(folder))


def copy_weights(good: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A copy of the folder ``good`` at ``dst`` (which must not exist yet)."""
    return Path(shutil.copytree(good, dst))


def edit_config(good: str | os.PathLike, dst: str | os.PathLike, change: Callable[[dict], Any]) -> Path:
    """A copy of ``good`` whose config.json went through ``change(config_dict)`` (edit in place, or return a new value)."""
    folder = copy_weights(good, dst)
    path = folder / "config.json"
    data = json.loads(path.read_text())
    new = change(data)
    path.write_text(json.dumps(data if new is None else new, indent=2))
    return folder


def set_config_field(good: str | os.PathLike, dst: str | os.PathLike, dotted: str, value: Any) -> Path:
    """A copy of ``good`` with one config.json field set, e.g. ``streams.0.temperature`` or ``vote.threshold``."""

    def change(data: dict) -> None:
        *parents, last = dotted.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return edit_config(good, dst, change)


def config_as_list(good: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """config.json holds a JSON list (of the real config) instead of an object."""
    return edit_config(good, dst, lambda data: [data])


def config_not_json(good: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """config.json is cut in the middle: not valid JSON."""
    folder = copy_weights(good, dst)
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text[: len(text) // 2])
    return folder


def config_without(good: str | os.PathLike, dst: str | os.PathLike, field: str = "preset") -> Path:
    """config.json lacks a top-level field (by default ``preset``)."""

    def change(data: dict) -> None:
        del data[field]

    return edit_config(good, dst, change)


def negative_temperature(good: str | os.PathLike, dst: str | os.PathLike, *, stream: int = 0, value: float = -1.0) -> Path:
    """A stream's calibration temperature is negative (it would silently invert P(fake))."""
    return set_config_field(good, dst, f"streams.{stream}.temperature", value)


def unknown_preset(good: str | os.PathLike, dst: str | os.PathLike, name: str = "no-such-preset") -> Path:
    return set_config_field(good, dst, "preset", name)


def weights_file_outside(good: str | os.PathLike, dst: str | os.PathLike, where: str = "../base_dinov2.safetensors") -> Path:
    """The DINOv2 base's ``weights_file`` points outside the folder (``../x`` or an absolute path).

    The file really exists there (a copy of the good base), so only the path check can refuse it.
    """
    folder = set_config_field(good, dst, "dinov2.weights_file", where)
    target = Path(where) if Path(where).is_absolute() else folder / where
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(good) / "base_dinov2.safetensors", target)
    return folder


def huge_depth(good: str | os.PathLike, dst: str | os.PathLike, *, depth: int = 200, embed_dim: int | None = None) -> Path:
    """The DINOv2 base is a seeded random init (``init_seed``) of ``depth`` blocks: loading it would allocate them all."""

    def change(data: dict) -> None:
        spec = data["dinov2"]
        spec.update(weights_file=None, hub_id=None, filename=None, revision=None, init_seed=0)
        spec["overrides"]["depth"] = depth
        if embed_dim is not None:
            spec["overrides"]["embed_dim"] = embed_dim

    return edit_config(good, dst, change)


def truncated_safetensors(good: str | os.PathLike, dst: str | os.PathLike, name: str = "texture.safetensors", *, keep: float = 0.5) -> Path:
    """``name`` cut to ``keep`` of its bytes (an interrupted download or copy)."""
    folder = copy_weights(good, dst)
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: int(len(data) * keep)])
    return folder


def empty_file(good: str | os.PathLike, dst: str | os.PathLike, name: str = "texture.safetensors") -> Path:
    """``name`` is present but zero bytes long."""
    folder = copy_weights(good, dst)
    (folder / name).write_bytes(b"")
    return folder


def rewrite_tensors(good: str | os.PathLike, dst: str | os.PathLike, name: str, change: Callable[[dict], Any]) -> Path:
    """A copy of ``good`` whose safetensors file ``name`` went through ``change(state)`` (in place or returned)."""
    from safetensors.torch import load_file, save_file

    folder = copy_weights(good, dst)
    state = load_file(folder / name)
    new = change(state)
    save_file({k: v.contiguous() for k, v in (state if new is None else new).items()}, str(folder / name))
    return folder


def wrong_shapes(good: str | os.PathLike, dst: str | os.PathLike, name: str = "face.safetensors", key: str = "head.weight") -> Path:
    """One tensor of ``name`` has the wrong shape (one more row), every key still present."""
    import torch

    def change(state: dict) -> None:
        t = state[key]
        state[key] = torch.cat([t, t[:1]], dim=0)

    return rewrite_tensors(good, dst, name, change)


def float64_weights(good: str | os.PathLike, dst: str | os.PathLike, name: str = "texture.safetensors") -> Path:
    """Every tensor of ``name`` stored as float64 (shapes and keys right)."""
    import torch

    return rewrite_tensors(good, dst, name, lambda state: {k: v.to(torch.float64) for k, v in state.items()})


# ------------------------------------------------------------------------------ checkpoint (.pth) files
class _RunsCode:
    """Pickles to a call of ``os.mkdir(marker)``: if loading ever runs it, ``marker`` exists afterwards."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def malicious_pth(folder: str | os.PathLike, name: str = "evil.pth") -> tuple[Path, Path]:
    """A torch.save checkpoint whose pickle calls ``os.mkdir``; returns (file, marker that must never appear)."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "pickle-code-ran"
    path = folder / name
    torch.save({"backbone.embeddings.cls_token": torch.zeros(1, 1, 4), "payload": _RunsCode(marker)}, path)
    return path, marker


def truncated_pth(folder: str | os.PathLike, name: str = "truncated.pth", *, keep: float = 0.5) -> Path:
    """A real torch.save checkpoint cut to ``keep`` of its bytes."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    torch.save({"backbone.embeddings.cls_token": torch.zeros(1, 1, 64)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def empty_path(folder: str | os.PathLike, name: str) -> Path:
    """A zero-byte file called ``name`` (e.g. ``empty.pth``, ``empty.safetensors``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"")
    return path
