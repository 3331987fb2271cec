"""The model options of every command that loads a detector (``predict``, ``explain``, ``analysis``, the app).

One definition of ``--preset``, ``--weights``, ``--device``, ``--dtype`` and ``--compile``; a flag
left out keeps the environment's value, and :func:`runtime_from_args` turns the parsed flags into
the one :class:`~forensic.runtime.RuntimeConfig` the command passes down.
"""

from __future__ import annotations

import argparse

__all__ = ["add_model_args", "device_arg", "runtime_from_args"]


def device_arg(text: str) -> str:
    """argparse ``type`` of ``--device``: a device this machine has, refused with the other flags."""
    from .runtime import RuntimeConfigError, check_device

    try:
        return check_device(text, name="")
    except RuntimeConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_model_args(parser: argparse.ArgumentParser, *, exclusive_weights: bool = False, compile: bool = True) -> argparse._ArgumentGroup:
    """The model options every model-running command shares (predict, explain, analysis, the app).

    Flags left out keep the environment's value (:class:`~forensic.runtime.RuntimeConfig`, built
    by :func:`runtime_from_args`). ``exclusive_weights``: ``--preset`` and ``--weights`` exclude
    each other. Returns the group, for a command's own model options.
    """
    from .presets import preset_names

    group = parser.add_argument_group("model")
    which = group.add_mutually_exclusive_group() if exclusive_weights else group
    which.add_argument("--preset", choices=preset_names(), default=None,
                       help="architecture preset (default: $FORENSIC_PRESET, else paper)")
    which.add_argument("--weights", metavar="REF", default=None,
                       help="weights folder or hf-hub:owner/repo[@rev] (default: $FORENSIC_WEIGHTS, else the preset's)")
    group.add_argument("--device", type=device_arg, default=None, help="cpu, cuda, cuda:1 ... (default: $FORENSIC_DEVICE, else cuda if available)")
    group.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default=None,
                       help="weights dtype (default: $FORENSIC_DTYPE, else auto = bf16 on CUDA, float32 on CPU)")
    if compile:
        group.add_argument("--compile", action="store_true", default=None,
                           help="torch.compile the streams: CUDA graphs cut a GPU's per-image overhead; compiling takes minutes "
                                "(default: $FORENSIC_COMPILE, off)")
    return group


def runtime_from_args(args: argparse.Namespace):
    """The environment's settings (read once) with the model flags given on the command line on top.

    Raises:
        forensic.runtime.RuntimeConfigError: a ``FORENSIC_*`` variable holds an unusable value.
    """
    from .runtime import ENV_VARIABLES, RuntimeConfig, check_device

    flags = {name: getattr(args, name, None) for name in ("preset", "weights", "device", "dtype", "compile")}
    runtime = RuntimeConfig.from_env().replace(**flags)
    if runtime.device and flags["device"] is None:  # the flag was checked when parsed; the variable is checked here
        check_device(runtime.device, name=ENV_VARIABLES["device"] + "=")
    return runtime
