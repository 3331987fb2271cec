"""``Detector``: load a model once, then analyse work items (``run``), one image (``analyze``) or
many (``analyze_many``); the stages themselves live in the other modules of :mod:`forensic.pipeline`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from ..compiled import StreamsForward, compile_requested
from ..config import ModelConfig
from ..degrade import check_seed
from ..explain import check_method
from ..faces import FaceDetector, FaceResult, get_default_detector
from ..model import ForensicModel
from ..presets import get_preset
from ..report import Report
from ..runtime import RuntimeConfig, default_device, default_runtime
from ..weights import WeightsUnavailable, build_model, load_model
from .flow import Stages, run_items
from .items import WorkItem
from .locating import locate

__all__ = ["Detector", "resolve_dtype", "Progress"]

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
            from ..convert import paper_seed_weights

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
    def stages(self) -> Stages:
        """What the pipeline's stages use of this detector (:func:`forensic.pipeline.flow.run_items`)."""
        return Stages(model=self.model, config=self.config, faces=lambda: self.face_detector, run=self._forward,
                      weights=self.weights, device=str(self.device), runtime=self.runtime)

    def run(
        self,
        items: Iterable[WorkItem | tuple[Any, WorkItem]],
        *,
        batch_size: int = 8,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> Iterator[tuple[Any, Report | Exception]]:
        """``(item, report or exception)`` for every work item, in input order.

        An entry may also be a ``(tag, item)`` pair: the tag is yielded back instead of the item
        (a caller's own record of what the item was for).

        Items go ``batch_size`` at a time through the streams; decoding and degradation run in a
        pool of ``workers`` threads and face detection in a helper thread, ahead of the batch on
        the device (:mod:`forensic.pipeline.overlap`), so memory is bounded by the batch size, not
        the input's length. A degraded item's clean twin (stability, pairing) is analysed once per
        source and shares the batches (:mod:`forensic.pipeline.flow`). A failure is yielded as the
        exception, never raised, so one bad file never stops the others.
        """
        checked = ((e[0], _checked(e[1])) if isinstance(e, tuple) else _checked(e) for e in items)
        yield from run_items(self.stages(), checked, batch_size=batch_size, workers=workers or self.workers, progress=progress)

    def analyze(
        self,
        image: Any,
        *,
        degradation: str | None = None,
        compound: float | None = None,
        seed: int = 0,
        explain: Explain = "none",
        stability: bool = True,
        pair: bool = False,
        source: str | None = None,
        progress: Progress | None = None,
        cam_groups: int | None = None,
        max_pixels: int | None = None,
    ) -> Report:
        """Analyses one image (one :class:`~forensic.pipeline.WorkItem` through :meth:`run`).

        Args:
            image: a path, bytes, PIL image or RGB array (decoded safely, see :mod:`forensic.images`).
            degradation: a degradation spec or preset applied first (see :mod:`forensic.degrade`).
            compound: strength of the paper's compound degradation applied first (instead of a spec).
            seed: seed of the degradation.
            explain: ``none`` or an explanation method of :mod:`forensic.explain.methods`
                (``fast``, ``adaptive``, ``exact``).
            stability: when degraded, also run the clean image (in the same batch) and report
                per-stream feature cosine.
            pair: when degraded, also return the clean image's report as ``report.twin``
                (explained with the same method); the clean image is analysed once.
            source: a name for the report (defaults to the path when ``image`` is one).
            progress: called with (stage, fraction) during long steps.
            cam_groups: channel groups of the grouping Score-CAM methods (default: channels / 16).
            max_pixels: analyse a copy scaled down to at most this many pixels (bounded memory for
                a server; the report's ``image_notes`` say so). None: the image as it is.

        Raises:
            forensic.images.ImageError: the input is not a usable image.
            forensic.degrade.SpecError: the degradation spec is invalid.
        """
        item = _checked(WorkItem(image, degradation=degradation, compound=compound, seed=seed, stability=stability, pair=pair,
                                 explain=explain, cam_groups=cam_groups, max_pixels=max_pixels, name=source))
        report_progress = progress or (lambda stage, fraction: None)
        report_progress("faces", 0.05)
        [(_, outcome)] = list(self.run([item], batch_size=2, workers=1, progress=report_progress))
        if isinstance(outcome, Exception):
            raise outcome
        report_progress("done", 1.0)
        return outcome

    def analyze_many(
        self,
        sources: Iterable[Any],
        *,
        batch_size: int = 8,
        degradation: str | None = None,
        compound: float | None = None,
        seed: int = 0,
        stability: bool = False,
        explain: Explain = "none",
        cam_groups: int | None = None,
        workers: int | None = None,
        max_pixels: int | None = None,
    ) -> Iterator[tuple[Any, Report | Exception]]:
        """``(source, report or exception)`` for many sources with the same settings, in input order.

        Each source becomes a :class:`~forensic.pipeline.WorkItem` with these fields (a source that
        is already a work item is taken as it is); see :meth:`run`.
        """
        fields = dict(degradation=degradation, compound=compound, seed=seed, stability=stability, explain=explain,
                      cam_groups=cam_groups, max_pixels=max_pixels)
        check_method(explain, allow_none=True)
        check_seed(seed)
        pairs = ((src, _checked(src) if isinstance(src, WorkItem) else WorkItem(src, **fields)) for src in sources)
        yield from run_items(self.stages(), pairs, batch_size=batch_size, workers=workers or self.workers)


    # ----------------------------------------------------------------------------- clips
    def item(self, source: Any, **fields: Any) -> WorkItem:
        """A :class:`~forensic.pipeline.WorkItem` for ``source`` with ``fields``, its explanation
        method and seed checked (for callers above the pipeline that build items one by one)."""
        return _checked(WorkItem(source, **fields))

    def locate(self, images: list[Any]) -> list[FaceResult]:
        """Each RGB image's face analysis as the locate stage finds it, in one batch (nothing is
        searched, and no face detector loaded, for a model without a face stream)."""
        return locate(images, self.config, lambda: self.face_detector)

    def analyze_video(self, path: str | os.PathLike, **kw: Any) -> Any:
        """A clip's :class:`~forensic.video.VideoReport` (:func:`forensic.video.analyze_video`; same arguments)."""
        from ..video.analysis import analyze_video

        return analyze_video(self, path, **kw)

    def iter_video(self, path: str | os.PathLike, **kw: Any) -> Iterator[Any]:
        """A clip's :class:`~forensic.video.FrameReport` in time order (:func:`forensic.video.iter_video`; same arguments)."""
        from ..video.analysis import iter_video

        return iter_video(self, path, **kw)


def _checked(item: WorkItem) -> WorkItem:
    """``item``, once its explanation method and its seed are known to be valid (a typo or a seed
    of 2**70 fails before any work, with or without a degradation)."""
    check_method(item.explain, allow_none=True)
    check_seed(item.seed)
    return item


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


