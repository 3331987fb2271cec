"""``Detector``: load a model once, then ``analyze(image) -> Report`` or ``analyze_many(sources)``.

It composes the stages of :mod:`forensic.stages` (load -> locate faces -> prepare -> forward ->
assemble), then the Score-CAM explanations; ``analyze_many`` overlaps the CPU stages with the
device (:mod:`forensic.batching`). Every interface (CLI, app, analysis, sweep) calls this.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import stages
from .batching import staged_map
from .compiled import StreamsForward, compile_requested
from .config import ModelConfig
from .explain import check_method, explain_report
from .faces import FaceDetector, get_default_detector, not_searched
from .model import ForensicModel
from .presets import get_preset
from .report import Report
from .runtime import RuntimeConfig, default_device, default_runtime
from .weights import WeightsUnavailable, build_model, load_model

__all__ = ["Detector", "default_device", "resolve_dtype", "Progress"]  # default_device lives in forensic.runtime

log = logging.getLogger(__name__)

#: ``"none"`` or an explanation method's name (:func:`forensic.explain.method_names`)
Explain = str
#: progress callback: (what is happening, fraction done in [0, 1])
Progress = Callable[[str, float], None]


class Detector:
    """A loaded detector.

    Args:
        model: the three-stream model (on its device).
        weights: where its weights came from (for reports), or None.
        face_detector: the face detector (defaults to the process-wide shared MTCNN on the
            model's device).
        workers: threads that decode and degrade images ahead of the device in
            :meth:`analyze_many` (default: the CPU count, at most 4).
        compile: ``torch.compile`` the streams (CUDA graphs on a GPU; see
            :mod:`forensic.compiled`); None: ``runtime.compile`` (off by default).
        runtime: the process's settings (:class:`~forensic.runtime.RuntimeConfig`; default: the
            environment's, :func:`~forensic.runtime.default_runtime`). The explanation plan and
            compilation read it; the CLI and the app build one and pass it in.
    """

    def __init__(
        self,
        model: ForensicModel,
        *,
        weights: str | None = None,
        face_detector: FaceDetector | None = None,
        workers: int | None = None,
        compile: bool | None = None,
        runtime: RuntimeConfig | None = None,
    ) -> None:
        self.model = model.eval()
        self.weights = weights
        self.runtime = runtime or default_runtime()
        self._faces = face_detector
        self.workers = workers or min(4, os.cpu_count() or 1)
        self._forward = StreamsForward(self.model, compile=compile_requested(compile, self.runtime))

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_preset(
        cls,
        preset: str = "paper",
        *,
        weights: str | os.PathLike | None = None,
        device: str | None = None,
        dtype: torch.dtype | str | None = None,
        compile: bool | None = None,
        runtime: RuntimeConfig | None = None,
    ) -> Detector:
        """The detector of a preset with its default weights, or with ``weights`` (a folder or ``hf-hub:``).

        ``device`` and ``dtype`` default to ``runtime``'s (see :func:`resolve_dtype`); ``compile``
        and ``runtime`` are passed to the constructor (see :class:`Detector`).

        Raises:
            WeightsUnavailable: the weights cannot be found or fetched (the message says what to do).
        """
        runtime = runtime or default_runtime()
        device = device or default_device(runtime)
        dtype = resolve_dtype(dtype, device, runtime)
        if weights is not None:
            return cls.from_pretrained(weights, device=device, dtype=dtype, compile=compile, runtime=runtime)
        spec = get_preset(preset)
        if spec.weights == "paper-seed":
            from .convert import paper_seed_weights

            folder = paper_seed_weights(runtime=runtime)
            return cls(load_model(folder, device=device, dtype=dtype), weights=str(folder), compile=compile, runtime=runtime)
        if spec.weights:
            return cls(load_model(spec.weights, device=device, dtype=dtype), weights=spec.weights, compile=compile, runtime=runtime)
        if spec.config.untrained:
            return cls(build_model(spec.config, device=device, dtype=dtype), weights=None, compile=compile, runtime=runtime)
        raise WeightsUnavailable(
            f"trained weights for the {preset!r} preset",
            "None are published yet: train them with `python -m train --config train/configs/small_texture.yaml ...` "
            "(see the README) and pass the output folder with --weights DIR.",
        )

    @classmethod
    def from_runtime(cls, runtime: RuntimeConfig | None = None) -> Detector:
        """The detector ``runtime`` names (default: the environment's): its preset (else ``paper``),
        weights, device, dtype and compilation; what the CLI and the app load."""
        runtime = runtime or default_runtime()
        return cls.from_preset(runtime.preset or "paper", weights=runtime.weights, device=runtime.device, dtype=runtime.dtype,
                               compile=runtime.compile, runtime=runtime)

    @classmethod
    def from_pretrained(
        cls,
        ref: str | os.PathLike,
        *,
        device: str | None = None,
        dtype: torch.dtype | str | None = None,
        compile: bool | None = None,
        runtime: RuntimeConfig | None = None,
    ) -> Detector:
        """Loads a weights folder or ``hf-hub:owner/repo[@revision]`` (other arguments: see :meth:`from_preset`)."""
        runtime = runtime or default_runtime()
        device = device or default_device(runtime)
        dtype = resolve_dtype(dtype, device, runtime)
        return cls(load_model(ref, device=device, dtype=dtype), weights=os.fspath(ref), compile=compile, runtime=runtime)

    # ----------------------------------------------------------------------------- properties
    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def preset(self) -> str:
        return self.config.preset

    @property
    def untrained(self) -> bool:
        return self.config.untrained

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def face_detector(self) -> FaceDetector:
        if self._faces is None:
            self._faces = get_default_detector(self.device)
        return self._faces

    def describe(self) -> str:
        """One line for a header: preset, device, and whether the weights are trained."""
        state = "UNTRAINED random weights" if self.untrained else f"weights: {self.weights or 'built-in'}"
        return f"preset {self.preset} on {self.device.type}{' (' + str(self.dtype).replace('torch.', '') + ')' if self.dtype != torch.float32 else ''}; {state}"

    # ----------------------------------------------------------------------------- running
    def analyze(
        self,
        image: Any,
        *,
        degradation: str | None = None,
        compound: float | None = None,
        seed: int = 0,
        explain: Explain = "none",
        stability: bool = True,
        source: str | None = None,
        progress: Progress | None = None,
        cam_groups: int | None = None,
        max_pixels: int | None = None,
    ) -> Report:
        """Analyses one image.

        Args:
            image: a path, bytes, PIL image or RGB array (decoded safely, see :mod:`forensic.images`).
            degradation: a degradation spec or preset applied first (see :mod:`forensic.degrade`).
            compound: strength of the paper's compound degradation applied first (instead of a spec).
            seed: seed of the degradation.
            explain: ``none`` or an explanation method of :mod:`forensic.explain.methods`
                (``fast``: adaptive Score-CAM with a fidelity estimate; ``exact``: one pass per channel).
            stability: when degraded, also run the clean image (in the same batch) and report
                per-stream feature cosine.
            source: a name for the report (defaults to the path when ``image`` is one).
            progress: called with (stage, fraction) during long steps.
            cam_groups: channel groups of the fast Score-CAM (default: channels / 16).
            max_pixels: analyse a copy scaled down to at most this many pixels (bounded memory for
                a server; the report's ``image_notes`` say so). None: the image as it is.

        Raises:
            forensic.images.ImageError: the input is not a usable image.
            forensic.degrade.SpecError: the degradation spec is invalid.
        """
        check_method(explain, allow_none=True)
        report_progress = progress or (lambda stage, fraction: None)
        loaded = stages.load(image, degradation=degradation, compound=compound, seed=seed, source=source, max_pixels=max_pixels)
        report_progress("faces", 0.05)
        located = self._locate([loaded], stability=stability)[0]
        report_progress("streams", 0.15)
        reports, forwarded = self._finish([located], return_norm1=explain != "none")  # Score-CAM's layer, computed once
        report = reports[0]
        if explain != "none":
            report = self._explain(report, forwarded, method=explain, progress=report_progress, n_groups=cam_groups)
        report_progress("done", 1.0)
        return report

    def analyze_many(
        self,
        sources: Iterable[Any],
        *,
        batch_size: int = 8,
        degradation: str | None = None,
        compound: float | None = None,
        seed: int = 0,
        stability: bool = False,
        workers: int | None = None,
        max_pixels: int | None = None,
    ) -> Iterator[tuple[Any, Report | Exception]]:
        """Verdicts for many images, ``batch_size`` at a time through the streams, in input order.

        Decoding and degradation run in a pool of ``workers`` threads and face detection in a
        helper thread, ahead of the batch on the device (see :mod:`forensic.batching`); memory is
        bounded by the batch size, not the input's length. A failure (unreadable file, bad spec)
        is yielded as the exception, never raised, so one bad file never stops a batch. No
        explanations (use :meth:`analyze` per image for those). ``max_pixels`` as in :meth:`analyze`.
        """

        def load(src: Any) -> stages.Loaded:
            return stages.load(src, degradation=degradation, compound=compound, seed=seed, max_pixels=max_pixels)

        yield from staged_map(
            sources,
            load=load,
            locate=lambda batch: self._locate(batch, stability=stability),
            finish=lambda batch: self._finish(batch)[0],
            batch_size=batch_size,
            workers=workers or self.workers,
        )

    def _locate(self, batch: list[stages.Loaded], *, stability: bool) -> list[_Located]:
        """Faces of a batch of images (and of their clean originals, for stability), batched on
        the model's device, and each stream's input."""
        images: list[np.ndarray] = []
        for loaded in batch:
            images.append(loaded.image)
            if stability and loaded.clean is not None:
                images.append(loaded.clean)
        start = time.perf_counter()
        if any(s.input == "face-crop" for s in self.config.streams):
            faces = iter(self.face_detector.analyze_batch(images))
        else:  # no stream looks at faces: nothing to search for
            faces = iter([not_searched((im.shape[1], im.shape[0])) for im in images])
        share = (time.perf_counter() - start) / len(batch)
        located = []
        for loaded in batch:
            loaded.timings["faces"] = loaded.timings.get("faces", 0.0) + share
            with stages.timed(loaded.timings, "prepare"):
                prepared = stages.prepare(loaded, next(faces), self.config)
                clean = stages.prepare(loaded, next(faces), self.config, clean=True) if stability and loaded.clean is not None else None
            located.append(_Located(prepared, clean))
        return located

    def _finish(self, batch: list[_Located], *, return_norm1: bool = False) -> tuple[list[Report], stages.Forwarded]:
        """One device pass over a batch (clean twins included), then each image's report."""
        inputs = []
        for item in batch:
            inputs.append(item.prepared.inputs)
            if item.clean is not None:
                inputs.append(item.clean.inputs)
        start = time.perf_counter()
        forwarded = stages.forward(self.model, inputs, return_norm1=return_norm1, run=self._forward)
        host = iter(forwarded.host())
        share = (time.perf_counter() - start) / len(batch)
        reports = []
        for item in batch:
            item.prepared.loaded.timings["streams"] = share
            outputs = next(host)
            clean = next(host) if item.clean is not None else None
            reports.append(
                stages.assemble(item.prepared, outputs, config=self.config, weights=self.weights, device=str(self.device), clean=clean)
            )
        return reports, forwarded

    def _explain(self, report: Report, forwarded: stages.Forwarded, *, method: str, progress: Progress, n_groups: int | None) -> Report:
        """The explanation stage (:func:`forensic.explain.explain_report`): a new report with each stream's Score-CAM."""
        return explain_report(self.model, report, forwarded, method=method, progress=progress, runtime=self.runtime, n_groups=n_groups)


@dataclass(frozen=True)
class _Located:
    """An image ready for the device, and its clean original when stability is wanted."""

    prepared: stages.Prepared
    clean: stages.Prepared | None = None


def resolve_dtype(value: torch.dtype | str | None, device: str | torch.device, runtime: RuntimeConfig | None = None) -> torch.dtype:
    """The weights' dtype: explicit, else ``runtime.dtype`` (default: ``$FORENSIC_DTYPE``), else bf16 on CUDA and float32 on CPU.

    bf16 halves the memory of the paper's model on a GPU; on a CPU with AMX/AVX512-BF16 it is also
    faster but moves P(fake) slightly (bench/RESULTS.md), so float32 stays the CPU default.
    """
    if isinstance(value, torch.dtype):
        return value
    value = value or (runtime or default_runtime()).dtype or "auto"
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if value == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if value not in names:
        raise ValueError(f"unknown dtype {value!r}; use auto, float32 or bfloat16")
    return names[value]


