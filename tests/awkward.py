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


# ------------------------------------------------------------------------------ awkward input files
def fifo(folder: str | os.PathLike, name: str = "pipe.png") -> Path:
    """A named pipe (FIFO) called like an image: opening it for reading waits for a writer forever.

    Skips the calling test where the OS has no FIFOs. Release a reader stuck on it with
    :func:`unblock_fifo`.
    """
    import pytest

    if not hasattr(os, "mkfifo"):
        pytest.skip("this OS has no named pipes (os.mkfifo)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    os.mkfifo(path)
    return path


def unblock_fifo(path: str | os.PathLike) -> None:
    """Ends a read blocked on the FIFO ``path`` (opens it for writing and closes it: EOF); no-op if none waits."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO when no reader has it open
    except OSError:
        return
    os.close(fd)


def folder_named_like_image(folder: str | os.PathLike, name: str = "photo.jpg") -> Path:
    """A directory whose name ends in an image extension (it holds one text file)."""
    path = Path(folder) / name
    path.mkdir(parents=True)
    (path / "readme.txt").write_text("a folder, not an image\n")
    return path


def truncated_copy(source: str | os.PathLike, folder: str | os.PathLike, name: str | None = None, *, keep: float = 1 / 3) -> Path:
    """The first ``keep`` of ``source``'s bytes (an image cut short by an interrupted download)."""
    data = Path(source).read_bytes()
    path = Path(folder) / (name or f"cut{Path(source).suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def binary_csv(folder: str | os.PathLike, name: str = "manifest.csv") -> Path:
    """A ``.csv`` that is binary data (NUL bytes, invalid UTF-8): e.g. an image renamed to .csv."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"path,label\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x80,1\n" + bytes(range(256)) * 4)
    return path


def png_claiming_size(folder: str | os.PathLike, width: int = 100_000, height: int = 100_000, name: str = "bomb.png") -> Path:
    """A 1x1 PNG whose header claims ``width`` x ``height`` (CRC fixed): a bomb refused from its header."""
    import io
    import struct
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(png))
    return path


def big_flat_png(folder: str | os.PathLike, width: int = 8000, height: int = 8000, name: str = "big.png") -> Path:
    """A real, valid RGB PNG of ``width`` x ``height`` that is mostly flat, so small on disk.

    8000x8000 (64 megapixels, the default decoding limit) is ~0.2 MB on disk and 192 MB decoded. It
    is written row by row (grey, with a blue block in the middle third), never held whole in memory.
    """
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    flat = b"\x00" + bytes((200, 200, 200)) * width  # filter type 0, then the pixels
    third = width // 3
    block = b"\x00" + bytes((200, 200, 200)) * third + bytes((30, 90, 160)) * third + bytes((200, 200, 200)) * (width - 2 * third)
    squeeze = zlib.compressobj(9)
    idat = bytearray()
    for y in range(height):
        idat += squeeze.compress(block if height // 3 <= y < 2 * height // 3 else flat)
    idat += squeeze.flush()
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b""))
    return path


def long_spec(n_ops: int = 8500, step: str = "gblur:sigma=0.5") -> str:
    """A degradation spec chaining ``n_ops`` steps (8500 by default: ~130 KB of text)."""
    return ";".join([step] * n_ops)


def tall_narrow_png(folder: str | os.PathLike, width: int = 16, height: int = 50_000, name: str = "tall.png") -> Path:
    """A valid, tiny (a few KB) PNG of ``width`` x ``height``: far under the pixel limit, but a sliver
    whose long side made the face search's padded retries cost gigabytes."""
    return big_flat_png(folder, width, height, name=name)


def run_with_file_limit(code: str, limit: int, *, cwd: str | os.PathLike | None = None, timeout: float = 300) -> Any:
    """Runs ``python -c code`` with files capped at ``limit`` bytes (``RLIMIT_FSIZE``): a full disk.

    SIGXFSZ is ignored in the child, so a write past the cap raises ``OSError`` (EFBIG) like a
    write to a full disk (ENOSPC) instead of killing the process. Returns the CompletedProcess.
    """
    import subprocess
    import sys

    import pytest

    try:
        import resource  # noqa: F401 - only checks it exists
    except ImportError:  # pragma: no cover - not POSIX
        pytest.skip("no resource module: file-size limits need POSIX")
    prelude = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({int(limit)}, {int(limit)}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, check=False)


def deep_json(depth: int = 100_000) -> str:
    """JSON text nested ``depth`` levels deep (``[[[...]]]``): json.loads raises RecursionError."""
    return "[" * depth + "]" * depth


# ------------------------------------------------------------------------------ damaged caches, concurrent runs
#: face_cache.json contents that are valid JSON but not a face cache (each must be discarded and rebuilt)
MALFORMED_FACE_CACHES = {
    "a list": "[]",
    "null": "null",
    "a number entry": '{"k": 3}',
    "an entry without fields": '{"k": {"mode": "crop"}}',
    "a region of strings": '{"k": {"mode": "crop", "box": null, "region": {"x0": "a", "y0": 0, "x1": 1, "y1": 1},'
                           ' "faces": [], "found_by": null, "reason": "r", "image_size": [4, 4]}}',
    "a scan verdict as a list": '{"k|scan": []}',
}


def malformed_face_cache(path: str | os.PathLike, kind: str) -> Path:
    """Writes the face cache ``kind`` of :data:`MALFORMED_FACE_CACHES` at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MALFORMED_FACE_CACHES[kind])
    return path


_HOLD_LOCK = """
import sys, time
from forensic.folder_lock import lock_folder
lock = lock_folder(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


class held_folder:
    """``with held_folder(folder) as pid:`` another process holds ``folder``'s run lock (killed on exit)."""

    def __init__(self, folder: str | os.PathLike, *, seconds: float = 120.0) -> None:
        self.folder, self.seconds = Path(folder), seconds

    def __enter__(self) -> int:
        import subprocess
        import sys

        root = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(self.folder), str(self.seconds)],
                                     stdout=subprocess.PIPE, text=True, cwd=root)
        if self.proc.stdout.readline().strip() != "held":
            self.proc.kill()
            raise RuntimeError(f"the helper process could not lock {self.folder}")
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def start_together(commands: list[list[str]], *, cwd: str | os.PathLike, timeout: float = 300.0,
                   env: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """Starts every command at once (each a subprocess) and waits for all: ``[(returncode, stderr)]`` in order."""
    import subprocess

    procs = [subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in commands]
    results = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        results.append((proc.returncode, err))
    return results


def request_waves(submit: Callable[[int], Any], *, waves: int, calls: int, after_wave: Callable[[int], Any],
                  timeout: float = 300.0) -> tuple[list[Any], list[str]]:
    """``waves`` waves of ``calls`` concurrent requests: ``submit(i)`` starts call ``i`` (returns an
    object with ``result(timeout=)``, a gradio_client job); after each wave, all answered, ``after_wave(w)``.

    Returns:
        (what after_wave returned per wave, one line per failed call).
    """
    measured, failures = [], []
    for w in range(waves):
        jobs = [submit(w * calls + i) for i in range(calls)]
        for i, job in enumerate(jobs):
            try:
                job.result(timeout=timeout)
            except Exception as exc:  # every failure is reported, not only the first
                failures.append(f"wave {w + 1} call {i}: {type(exc).__name__}: {exc}")
        measured.append(after_wave(w))
    return measured, failures
