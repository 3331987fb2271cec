"""Runtime settings: every ``FORENSIC_*`` environment variable, read once into one object.

The CLI and the app build a :class:`RuntimeConfig` (from the environment, then their flags on
top with :meth:`RuntimeConfig.replace`) and pass it down; library code takes the object and never
reads the environment itself. :func:`default_runtime` is the process's environment, parsed once,
for callers that were handed no config.

Why a module of its own rather than ``forensic/explain/plan.py``: most of these settings are
not about explanations (device, weights dtype, cache folder, pixel limit, compilation); the
explanation plan is one reader among several.

========================== ================= =====================================================
variable                   field             meaning
========================== ================= =====================================================
``FORENSIC_PRESET``        ``preset``        the architecture preset (``paper``, ``small``, ...)
``FORENSIC_WEIGHTS``       ``weights``       a weights folder or ``hf-hub:owner/repo[@rev]``
``FORENSIC_DEVICE``        ``device``        ``cpu``, ``cuda``, ``cuda:1`` ... (default: CUDA if any)
``FORENSIC_DTYPE``         ``dtype``         weights dtype: ``auto``, ``float32``, ``bfloat16``
``FORENSIC_CACHE``         ``cache_dir``     where converted weights are kept
``FORENSIC_MAX_PIXELS``    ``max_pixels``    the decoder's pixel limit (a positive integer)
``FORENSIC_CAM_BF16``      ``cam_bf16``      ``0`` keeps Score-CAM's masked passes in float32
``FORENSIC_COMPILE``       ``compile``       ``1`` compiles the streams with ``torch.compile``
========================== ================= =====================================================
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RuntimeConfig", "RuntimeConfigError", "check_device", "default_device", "default_runtime", "ENV_VARIABLES"]

#: field name -> environment variable
ENV_VARIABLES: dict[str, str] = {
    "preset": "FORENSIC_PRESET",
    "weights": "FORENSIC_WEIGHTS",
    "device": "FORENSIC_DEVICE",
    "dtype": "FORENSIC_DTYPE",
    "cache_dir": "FORENSIC_CACHE",
    "max_pixels": "FORENSIC_MAX_PIXELS",
    "cam_bf16": "FORENSIC_CAM_BF16",
    "compile": "FORENSIC_COMPILE",
}

_DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class RuntimeConfigError(ValueError):
    """A ``FORENSIC_*`` variable (or flag) holds a value that cannot be used; the message is one line."""


@dataclass(frozen=True)
class RuntimeConfig:
    """Runtime settings of one process (see the module's table). None: not set, use the default.

    Attributes:
        preset: architecture preset name.
        weights: weights folder or Hub reference.
        device: torch device string.
        dtype: weights dtype name (``auto``, ``float32``, ``bfloat16`` and their short forms).
        cache_dir: where converted weights are kept.
        max_pixels: the decoder's pixel limit.
        cam_bf16: let Score-CAM's masked passes run in bf16 where that is fast (GPUs, CPUs with
            bf16 matrix instructions); False keeps the weights' own precision.
        compile: ``torch.compile`` the streams.
    """

    preset: str | None = None
    weights: str | None = None
    device: str | None = None
    dtype: str | None = None
    cache_dir: Path | None = None
    max_pixels: int | None = None
    cam_bf16: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in _DTYPES:
            raise RuntimeConfigError(f"{ENV_VARIABLES['dtype']}={self.dtype!r} is not a dtype; use auto, float32 or bfloat16")
        if self.max_pixels is not None and (isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, int) or self.max_pixels <= 0):
            raise RuntimeConfigError(f"{ENV_VARIABLES['max_pixels']}={self.max_pixels!r} must be a positive whole number of pixels")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeConfig:
        """The settings in ``environ`` (default: ``os.environ``), each variable read once.

        Raises:
            RuntimeConfigError: a variable is set to an unusable value (one line naming it).
        """
        env = os.environ if environ is None else environ
        raw = {field: (env.get(var) or "").strip() or None for field, var in ENV_VARIABLES.items()}
        return cls(
            preset=raw["preset"],
            weights=raw["weights"],
            device=raw["device"],
            dtype=raw["dtype"].lower() if raw["dtype"] else None,
            cache_dir=Path(raw["cache_dir"]).expanduser() if raw["cache_dir"] else None,
            max_pixels=_positive_int("max_pixels", raw["max_pixels"]),
            cam_bf16=_flag("cam_bf16", raw["cam_bf16"], default=True),
            compile=_flag("compile", raw["compile"], default=False),
        )

    def replace(self, **changes) -> RuntimeConfig:
        """A copy with ``changes`` applied; None values are ignored (an unset flag keeps the variable)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """The settings as JSON-able values (for run records)."""
        out = dataclasses.asdict(self)
        out["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        return out


def _flag(field: str, value: str | None, *, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise RuntimeConfigError(f"{ENV_VARIABLES[field]}={value!r} is not on or off; use 1 or 0")


def _positive_int(field: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value.replace("_", ""))
    except ValueError:
        number = 0
    if number <= 0:
        raise RuntimeConfigError(f"{ENV_VARIABLES[field]}={value!r} must be a positive whole number")
    return number


def default_runtime() -> RuntimeConfig:
    """The process environment's settings (see the module doc).

    Parsed and validated once per distinct set of values: a process that never changes its
    environment parses it once; a CLI, test or notebook that sets a variable later is still obeyed.

    Raises:
        RuntimeConfigError: a variable is set to an unusable value (one line naming it).
    """
    return _parsed(tuple(os.environ.get(var) for var in ENV_VARIABLES.values()))


@functools.lru_cache(maxsize=8)
def _parsed(values: tuple[str | None, ...]) -> RuntimeConfig:
    return RuntimeConfig.from_env({var: value for var, value in zip(ENV_VARIABLES.values(), values) if value is not None})


def default_device(runtime: RuntimeConfig | None = None) -> str:
    """``runtime.device`` (default: ``$FORENSIC_DEVICE``), else CUDA when available, else CPU."""
    device = (runtime or default_runtime()).device
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str, *, name: str = "--device ") -> str:
    """``device`` if this machine can run on it, else :class:`RuntimeConfigError` in one line.

    Checked before any model loads (by the commands' flag parsers), so ``cuda`` on a machine
    without a GPU, a typo such as ``bogus`` or ``mps`` off a Mac stops the run at once. ``name``
    starts the message: the setting's name as the user wrote it (``"--device "``,
    ``"FORENSIC_DEVICE="``, ``"device="``), or ``""``.

    Raises:
        RuntimeConfigError: not a device name, or a device this machine does not have.
    """
    import torch

    shown = repr(device if len(device) <= 40 else device[:37] + "...")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise RuntimeConfigError(f"{name}{shown} is not a device: use cpu, cuda or cuda:N") from None
    if parsed.type == "cpu":
        return device
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RuntimeConfigError(f"{name}{shown}: no CUDA GPU is visible on this machine; use cpu")
        if parsed.index is not None and parsed.index >= count:
            raise RuntimeConfigError(f"{name}{shown}: this machine has {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})")
        return device
    if parsed.type == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return device
    raise RuntimeConfigError(f"{name}{shown} is not available on this machine: use cpu or cuda")
