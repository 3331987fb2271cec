"""An opt-in ``torch.compile`` of the streams' forward pass, falling back to eager on any failure.

On a GPU a one-image verdict is bound by per-kernel launch overhead (hundreds of small kernels
per block, and the LoRA hooks), not by arithmetic; ``torch.compile(mode="reduce-overhead")``
fuses kernels and replays them as CUDA graphs, one graph per input shape (``dynamic=False``: a
handful of shapes, the batch sizes seen). It is off unless asked for (``Detector(compile=True)``,
``--compile`` or ``FORENSIC_COMPILE=1``), because compiling takes minutes and has not been
measured on every card; and if compiling or running the compiled graph raises, the pass is
redone eagerly and the compiled path is dropped for good, with one warning.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping

import torch

from .model import ForensicModel, StreamOutput
from .runtime import RuntimeConfig, default_runtime

__all__ = ["StreamsForward", "compile_requested"]

log = logging.getLogger(__name__)


def compile_requested(value: bool | None = None, runtime: RuntimeConfig | None = None) -> bool:
    """``value`` when given, else ``runtime.compile`` (default: ``$FORENSIC_COMPILE``, where ``1``/``true``/``yes``/``on`` turn it on)."""
    if value is not None:
        return bool(value)
    return (runtime or default_runtime()).compile


class StreamsForward:
    """``model.forward_streams``, compiled when asked for and possible, eager otherwise.

    Args:
        model: the model whose streams run.
        compile: try ``torch.compile`` (CUDA graphs on a GPU).
    """

    def __init__(self, model: ForensicModel, *, compile: bool = False) -> None:
        self.model = model
        self._compiled: Callable | None = None
        self._lock = threading.Lock()
        if compile and next(model.parameters()).device.type != "cuda":
            # on a CPU the arithmetic, not the launch overhead, bounds a verdict: nothing to win
            log.info("torch.compile of the streams is for CUDA devices; running them eagerly")
        elif compile:
            self._compiled = torch.compile(model.forward_streams, mode="reduce-overhead", dynamic=False)

    @property
    def compiled(self) -> bool:
        """Whether the compiled path is (still) in use."""
        return self._compiled is not None

    def __call__(self, tensors: Mapping[str, torch.Tensor], **kwargs) -> dict[str, StreamOutput]:
        compiled = self._compiled
        if compiled is not None:
            try:
                with self._lock:  # CUDA-graph replays share static buffers: one caller at a time
                    outputs = compiled(dict(tensors), **kwargs)
                    # the next replay overwrites a graph's outputs: keep our own copies
                    return {name: _cloned(out) for name, out in outputs.items()}
            except Exception as exc:  # compilation is an optimisation: never a reason to fail a verdict
                log.warning("torch.compile of the streams failed (%s); running them eagerly from now on", str(exc).splitlines()[0][:200])
                self._compiled = None
        return self.model.forward_streams(tensors, **kwargs)


def _cloned(out: StreamOutput) -> StreamOutput:
    return dataclasses.replace(
        out, **{f.name: getattr(out, f.name).clone() for f in dataclasses.fields(out) if isinstance(getattr(out, f.name), torch.Tensor)}
    )
