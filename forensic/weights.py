"""Our weights format, and loading it from a folder or the Hugging Face Hub.

A weights folder (or Hub repo) holds:

- ``config.json``: the :class:`~forensic.config.ModelConfig` (preset, backbones with pinned
  revisions, LoRA, per-stream preprocessing, heads, temperatures, vote);
- ``<stream>.safetensors`` for each stream: only what the stream adds to the shared bases (its
  LoRA adapter and head);
- optionally ``base_dinov2.safetensors`` / ``base_clip.safetensors`` when a base exists nowhere
  else (a random or converted base); otherwise bases come from their own Hub repos;
- ``README.md``: the model card.

No pickles: ``.pth`` files are only read by :mod:`forensic.convert`, with ``weights_only=True``.
Every way loading can fail offline ends in one :class:`WeightsUnavailable` naming what is
missing and the ways out; a folder that is there but damaged or invalid (a truncated file, wrong
shapes or dtypes, a bad ``config.json``) ends in its subclass :class:`WeightsInvalid`, naming the
file or field. Catching ``WeightsUnavailable`` catches both: "the model could not be loaded".
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import BackboneSpec, ConfigError, ModelConfig
from .model import ForensicModel
from .runtime import RuntimeConfig, default_runtime

__all__ = [
    "WeightsUnavailable",
    "WeightsInvalid",
    "read_config",
    "read_tensors",
    "HUB_PREFIX",
    "cache_root",
    "resolve_weights",
    "load_model",
    "build_model",
    "bases_state_dict",
    "load_base_state",
    "load_state_strict",
    "StateMismatch",
    "save_pretrained",
    "push_to_hub",
    "hub_file",
]

log = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"
WAYS_OUT = (
    "Ways out: pass --weights DIR (a folder with config.json, e.g. made by `python -m train` or "
    "`python -m forensic convert-seed`); or download once with network access and then set "
    "HF_HUB_OFFLINE=1 to use the local Hugging Face cache; or run with --preset tiny-random "
    "(untrained, for trying the tool)."
)


class WeightsUnavailable(RuntimeError):
    """Model weights could not be found or fetched. The message says what and the ways out."""

    def __init__(self, what: str, reason: str) -> None:
        self.what, self.reason = what, reason
        super().__init__(f"Weights unavailable: {what}. {reason} {WAYS_OUT}")


FIX_INVALID = (
    "Fix or replace that file (export the folder again with `python -m train` or save_pretrained, "
    "or download it again), or run with --preset tiny-random (untrained, for trying the tool)."
)
#: the dtypes weights files may hold (float64 would silently mix dtypes inside the model)
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class WeightsInvalid(WeightsUnavailable, ValueError):
    """A weights folder is there but cannot be used: a damaged file, wrong shapes or dtypes, a bad config.json.

    A :class:`WeightsUnavailable` (callers catch both in one place) and a ``ValueError``. The
    message is one line: the file (and field), what is wrong, what to do.

    Attributes:
        what: the file, e.g. ``/w/config.json``.
        reason: what is wrong with it.
    """

    def __init__(self, what: str, reason: str, fix: str = FIX_INVALID) -> None:
        self.what, self.reason = what, _one_line(reason)
        Exception.__init__(self, f"Invalid weights: {what}: {self.reason}. {fix}")


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split()).rstrip(".")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def cache_root(runtime: RuntimeConfig | None = None) -> Path:
    """Where converted weights are kept: ``runtime.cache_dir`` (default: ``$FORENSIC_CACHE``) or ``~/.cache/forensic``."""
    return (runtime or default_runtime()).cache_dir or Path.home() / ".cache" / "forensic"


# --------------------------------------------------------------------------------- the Hub
def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hub endpoint, so that an offline machine fails in seconds, not after retries."""
    from huggingface_hub import constants

    url = urllib.parse.urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_file(repo_id: str, filename: str, *, revision: str | None = None, what: str | None = None) -> Path:
    """Returns a local path to ``filename`` of Hub repo ``repo_id``: from the cache, else downloaded.

    Raises:
        WeightsUnavailable: offline, unreachable, missing repo/file/revision, or access denied.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    label = what or f"{filename} from the Hub repo {repo_id}" + (f" at revision {revision[:12]}" if revision else "")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    if _hub_offline():
        raise WeightsUnavailable(label, "It is not in the local Hugging Face cache and HF_HUB_OFFLINE is set.")
    if not _hub_reachable():
        raise WeightsUnavailable(label, "It is not in the local Hugging Face cache and the Hub cannot be reached (no network?).")
    log.info("downloading %s", label)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        raise WeightsUnavailable(label, f"The download failed: {str(exc).splitlines()[0]}") from exc


def _parse_hub_ref(ref: str) -> tuple[str, str | None]:
    repo = ref[len(HUB_PREFIX) :]
    repo, _, revision = repo.partition("@")
    if repo.count("/") != 1:
        raise WeightsUnavailable(ref, "A Hub reference looks like hf-hub:owner/repo or hf-hub:owner/repo@revision.")
    return repo, revision or None


def resolve_weights(ref: str | os.PathLike) -> Path:
    """Turns ``hf-hub:owner/repo[@rev]`` or a folder path into a local folder holding ``config.json``."""
    text = os.fspath(ref)
    if text.startswith(HUB_PREFIX):
        repo, revision = _parse_hub_ref(text)
        config = hub_file(repo, "config.json", revision=revision, what=f"config.json of {text}")
        folder = config.parent
        cfg = read_config(config, label=f"config.json of {text}")
        for name in cfg.stream_names:
            hub_file(repo, f"{name}.safetensors", revision=revision)
        for spec in (cfg.dinov2, cfg.clip):
            if spec is not None and spec.weights_file:
                hub_file(repo, spec.weights_file, revision=revision)
        return folder
    folder = Path(text).expanduser()
    if not folder.exists():
        raise WeightsUnavailable(text, "No such folder (a Hub repo is written hf-hub:owner/repo).")
    if not (folder / "config.json").is_file():
        raise WeightsUnavailable(text, "The folder has no config.json, so it is not a weights folder of this project.")
    return folder


# --------------------------------------------------------------------------------- loading
def load_model(
    ref: str | os.PathLike, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> ForensicModel:
    """Loads a model from a weights folder or ``hf-hub:`` reference."""
    folder = resolve_weights(ref)
    return build_model(read_config(folder / "config.json"), folder=folder, device=device, dtype=dtype)


def read_config(path: str | os.PathLike, *, label: str | None = None) -> ModelConfig:
    """Reads and checks a weights folder's ``config.json``.

    Raises:
        WeightsInvalid: it cannot be read, is not JSON, or a field is missing or wrong (named).
    """
    path = Path(path)
    try:
        return ModelConfig.from_json_file(path)
    except ConfigError as exc:
        raise WeightsInvalid(label or str(path), str(exc).removeprefix("config.json ")) from None
    except OSError as exc:
        raise WeightsInvalid(label or str(path), f"cannot be read ({exc.strerror or exc})") from None


def read_tensors(
    path: str | os.PathLike, *, prefix: str = "", keep: Callable[[str], bool] | None = None
) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked: keys starting with ``prefix`` (dropped) that ``keep`` accepts.

    Raises:
        WeightsInvalid: the file is empty, truncated or not safetensors, or holds a tensor of a
            dtype other than float32 / float16 / bfloat16.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise WeightsInvalid(str(path), "the file is empty (an interrupted download or copy?)")
        with safe_open(str(path), framework="pt") as f:
            keys = [k for k in f.keys() if k.startswith(prefix) and (keep is None or keep(k[len(prefix) :]))]
            for key in keys:  # dtypes from the header, before any tensor is read
                dtype = f.get_slice(key).get_dtype()
                if dtype not in _SAFETENSORS_DTYPES:
                    raise WeightsInvalid(
                        str(path), f"tensor {key} is {_DTYPE_NAMES.get(dtype, dtype)}; weights must be float32, float16 or bfloat16"
                    )
            return {k[len(prefix) :]: f.get_tensor(k) for k in keys}
    except SafetensorError as exc:
        raise WeightsInvalid(str(path), f"the file is truncated or not a safetensors file ({exc})") from None
    except OSError as exc:
        raise WeightsInvalid(str(path), f"the file cannot be read ({exc.strerror or exc})") from None


#: the safetensors header names of WEIGHT_DTYPES
_SAFETENSORS_DTYPES = {"F32", "F16", "BF16"}
_DTYPE_NAMES = {"F64": "float64", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def build_model(
    config: ModelConfig,
    *,
    folder: Path | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> ForensicModel:
    """Builds ``config`` and fills it: bases from their files or the Hub, streams from ``folder``.

    With no folder, an ``untrained`` config (``tiny-random``) is initialised from its seeds. The
    structure is built on the ``meta`` device and the tensors are assigned, so no time or memory
    goes into random weights that would be overwritten.
    """
    if folder is None:
        if not config.untrained:
            raise WeightsUnavailable(f"the trained weights of preset {config.preset!r}", "No weights folder was given.")
        model = ForensicModel.random(config, seed=0)
        return model.to(device=device, dtype=dtype).eval()

    try:
        model = ForensicModel(config, device="meta")
    except (ValueError, TypeError, KeyError, AssertionError) as exc:  # timm / open_clip / LoRA on an odd architecture
        reason = f"the model it describes cannot be built ({exc.args[0] if exc.args else type(exc).__name__})"
        raise WeightsInvalid(str(folder / "config.json"), reason) from None
    state = bases_state_dict(config, folder, with_clip=model.clip is not None)
    origin = {key: _base_origin(config, key, folder) for key in state}
    for name in config.stream_names:
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            raise WeightsUnavailable(f"the {name} stream's weights ({path})", "config.json lists the stream but its file is missing.")
        tensors = read_tensors(path)
        stray = sorted(k for k in tensors if not k.startswith(("adapter.", "head.")))
        if stray:
            raise WeightsInvalid(str(path), f"it is not a {name} stream file: {_short(stray)} are neither adapter.* nor head.* tensors")
        stream_state = model.stream_keys_to_model(name, tensors)
        state.update(stream_state)
        origin.update(dict.fromkeys(stream_state, str(path)))
    try:
        load_state_strict(model, state)
    except StateMismatch as exc:
        raise WeightsInvalid(origin.get(exc.key, str(folder)), str(exc)) from None
    return model.to(device=device, dtype=dtype).eval()


def _base_origin(config: ModelConfig, key: str, folder: Path) -> str:
    """Which file a base tensor came from, for error messages."""
    spec = config.dinov2 if key.startswith("dinov2.") else config.clip
    if spec is None:
        return str(folder)
    if spec.weights_file:
        return str(folder / spec.weights_file)
    if spec.hub_id:
        return f"{spec.filename or 'model.safetensors'} of the Hub repo {spec.hub_id}"
    return f"the {spec.family} base (seed {spec.init_seed})"


class StateMismatch(ValueError):
    """Tensors that do not fit a model; ``key`` is the first offending state-dict key (to name its file)."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


def load_state_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """``load_state_dict(strict=True, assign=True)`` with a readable list of what did not match.

    Raises:
        StateMismatch: missing or unexpected keys, a wrong shape, or a dtype other than float32/16, bfloat16.
    """
    expected = set(model.state_dict().keys())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise StateMismatch(
            "the weights do not match the model: "
            + (f"missing {len(missing)} keys {_short(missing)}; " if missing else "")
            + (f"unexpected {len(unexpected)} keys {_short(unexpected)}" if unexpected else ""),
            key=(unexpected or missing)[0],
        )
    own = model.state_dict()
    for key, value in state.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise StateMismatch(f"shape mismatch for {key}: the model has {tuple(own[key].shape)}, the weights {tuple(value.shape)}", key=key)
        if value.dtype not in WEIGHT_DTYPES:
            raise StateMismatch(f"{key} is {str(value.dtype).replace('torch.', '')}; weights must be float32, float16 or bfloat16", key=key)
    model.load_state_dict(state, strict=True, assign=True)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"tensors left without weights after loading: {_short(left)}")


def _short(keys: list[str], n: int = 8) -> str:
    return str(keys[:n])[:-1] + (f", ... ({len(keys) - n} more)]" if len(keys) > n else "]")


def bases_state_dict(config: ModelConfig, folder: Path | None = None, *, with_clip: bool = True) -> dict[str, torch.Tensor]:
    """The shared bases of ``config`` keyed as in :class:`ForensicModel` (``dinov2.vit.*``, ``clip.visual.*``).

    Training and inference both load bases through here, so they always read the same tensors.
    """
    state = {f"dinov2.vit.{k}": v for k, v in load_base_state(config.dinov2, folder).items()}
    if with_clip and config.clip is not None:
        state.update({f"clip.visual.{k}": v for k, v in load_base_state(config.clip, folder).items()})
    return state


def load_base_state(spec: BackboneSpec, folder: Path | None = None) -> dict[str, torch.Tensor]:
    """One base's tensors (timm / open_clip names): from the weights folder, the Hub or its seed."""
    if spec.weights_file:
        if folder is None:
            raise WeightsUnavailable(f"the {spec.family} base {spec.weights_file}", "It lives in a weights folder, and none was given.")
        path = Path(folder) / spec.weights_file
        if not path.is_file():
            raise WeightsUnavailable(f"the {spec.family} base ({path})", "config.json names this file but it is missing.")
        return read_tensors(path)
    if spec.hub_id:
        path = hub_file(spec.hub_id, spec.filename or "model.safetensors", revision=spec.revision)
        return read_base_file(path, spec.family)
    if spec.init_seed is not None:
        from .backbones import create_backbone, init_vit_weights_

        module = create_backbone(spec)
        init_vit_weights_(module, generator=torch.Generator().manual_seed(spec.init_seed))
        inner = module.vit if spec.family == "dinov2" else module.visual
        return dict(inner.state_dict())
    raise WeightsUnavailable(f"the {spec.family} base {spec.arch}", "config.json gives no file, Hub repo or seed for it.")


def read_base_file(path: Path, family: str) -> dict[str, torch.Tensor]:
    """Reads a published base checkpoint: timm DINOv2 as is; open_clip's ``visual.*`` without the projection."""
    if family == "dinov2":
        return read_tensors(path, keep=lambda k: not k.startswith(("head.", "mask_token")))
    return read_tensors(path, prefix="visual.", keep=lambda k: k != "proj")


# --------------------------------------------------------------------------------- saving
def save_pretrained(
    model: ForensicModel,
    folder: str | os.PathLike,
    *,
    config: ModelConfig | None = None,
    embed_bases: bool | None = None,
    model_card: str | None = None,
) -> Path:
    """Writes ``model`` in our format: config.json, one safetensors per stream, a model card.

    Args:
        model: the model.
        folder: destination (created).
        config: the config to write (defaults to ``model.config``).
        embed_bases: also write the base weights into the folder. ``None`` embeds them only when
            they come from nowhere else (no Hub repo and no file already).
        model_card: the README.md text; a generic card is written when omitted.
    """
    from .modelcard import render_model_card

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = config or model.config
    for family in ("dinov2", "clip"):
        spec = getattr(config, family)
        if spec is None or (family == "clip" and model.clip is None):
            continue
        embed = embed_bases if embed_bases is not None else not spec.hub_id
        if embed:
            filename = f"base_{family}.safetensors"
            save_file(_contiguous(model.base_state_dict(family)), str(folder / filename))
            config = config.replace(**{family: _replace(spec, weights_file=filename, hub_id=None, filename=None, revision=None)})
    for name in config.stream_names:
        save_file(_contiguous(model.stream_state_dict(name)), str(folder / f"{name}.safetensors"))
    (folder / "config.json").write_text(config.to_json())
    (folder / "README.md").write_text(model_card if model_card is not None else render_model_card(config))
    return folder


def _replace(spec: BackboneSpec, **changes) -> BackboneSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)


def _contiguous(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload forensic detector weights",
) -> str:
    """Uploads a weights folder to the Hub (creating the model repo if needed); returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json: write it with save_pretrained first")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        commit_message=commit_message,
        allow_patterns=["config.json", "*.safetensors", "README.md"],
    )
    return str(getattr(info, "commit_url", info))
