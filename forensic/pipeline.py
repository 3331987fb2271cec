"""``Detector``: load a model once, then ``analyze(image) -> Report``.

decode -> (degrade) -> faces -> stream inputs -> streams (one batched pass per input size) ->
vote -> (Score-CAM per stream, similarities) -> (clean-vs-degraded stability), with per-stage
timings. Every interface (CLI, app, analysis) calls this.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .config import ModelConfig
from .ensemble import vote
from .explain.attention import attention_entropy, map_entropy
from .explain.cam import stream_cam
from .explain.similarity import cosine, feature_similarity, map_similarity
from .faces import FaceDetector, FaceResult, get_default_detector
from .images import DecodedImage, decode_image
from .model import ForensicModel, MergedStreamCopy, StreamOutput
from .presets import get_preset
from .report import DegradationInfo, Report, StreamReport
from .streams import StreamInput, prepare_inputs, to_tensor
from .weights import WeightsUnavailable, build_model, load_model

__all__ = ["Detector", "StreamPass", "default_device", "resolve_dtype", "Progress"]

log = logging.getLogger(__name__)

Explain = Literal["none", "fast", "exact"]
#: progress callback: (what is happening, fraction done in [0, 1])
Progress = Callable[[str, float], None]


def default_device() -> str:
    """``$FORENSIC_DEVICE``, else CUDA when available, else CPU."""
    env = os.environ.get("FORENSIC_DEVICE")
    if env:
        return env
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class StreamPass:
    """The streams run on one (possibly degraded) image: inputs, outputs and the face analysis."""

    image: np.ndarray
    face: FaceResult
    inputs: dict[str, StreamInput]
    tensors: dict[str, torch.Tensor]
    outputs: dict[str, StreamOutput]


@dataclass
class _Prepared:
    """One image made ready for the streams (decoded, maybe degraded, face found, inputs cut)."""

    source: str | None
    decoded: DecodedImage
    analysed: np.ndarray
    info: DegradationInfo | None
    face: FaceResult
    inputs: dict[str, StreamInput]
    timings: dict[str, float]
    run: StreamPass | None = None


def _slice_output(out: StreamOutput, i: int) -> StreamOutput:
    def cut(t):
        return None if t is None else t[i : i + 1]

    return StreamOutput(
        name=out.name, logits=cut(out.logits), prob_fake=cut(out.prob_fake), features=cut(out.features), cls=cut(out.cls),
        tokens=cut(out.tokens), grid=out.grid, last_norm1=cut(out.last_norm1), cls_attention=cut(out.cls_attention),
    )


class Detector:
    """A loaded detector.

    Args:
        model: the three-stream model (on its device).
        weights: where its weights came from (for reports), or None.
        face_detector: the face detector (defaults to the process-wide shared MTCNN).
    """

    def __init__(self, model: ForensicModel, *, weights: str | None = None, face_detector: FaceDetector | None = None) -> None:
        self.model = model.eval()
        self.weights = weights
        self._faces = face_detector
        # pytorch-grad-cam's hooks sit on shared modules: explanations run one at a time
        self._explain_lock = threading.Lock()

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_preset(
        cls,
        preset: str = "paper",
        *,
        weights: str | os.PathLike | None = None,
        device: str | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> Detector:
        """The detector of a preset with its default weights, or with ``weights`` (a folder or ``hf-hub:``).

        Raises:
            WeightsUnavailable: the weights cannot be found or fetched (the message says what to do).
        """
        device = device or default_device()
        dtype = resolve_dtype(dtype, device)
        if weights is not None:
            return cls.from_pretrained(weights, device=device, dtype=dtype)
        spec = get_preset(preset)
        if spec.weights == "paper-seed":
            from .convert import paper_seed_weights

            folder = paper_seed_weights()
            return cls(load_model(folder, device=device, dtype=dtype), weights=str(folder))
        if spec.weights:
            return cls(load_model(spec.weights, device=device, dtype=dtype), weights=spec.weights)
        if spec.config.untrained:
            return cls(build_model(spec.config, device=device, dtype=dtype), weights=None)
        raise WeightsUnavailable(
            f"trained weights for the {preset!r} preset",
            "None are published yet: train them with `python -m train --config train/configs/small_texture.yaml ...` "
            "(see the README) and pass the output folder with --weights DIR.",
        )

    @classmethod
    def from_pretrained(cls, ref: str | os.PathLike, *, device: str | None = None, dtype: torch.dtype | str | None = None) -> Detector:
        """Loads a weights folder or ``hf-hub:owner/repo[@revision]``."""
        device = device or default_device()
        dtype = resolve_dtype(dtype, device)
        return cls(load_model(ref, device=device, dtype=dtype), weights=os.fspath(ref))

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
            self._faces = get_default_detector()
        return self._faces

    def describe(self) -> str:
        """One line for a header: preset, device, and whether the weights are trained."""
        state = "UNTRAINED random weights" if self.untrained else f"weights: {self.weights or 'built-in'}"
        return f"preset {self.preset} on {self.device.type}{' (' + str(self.dtype).replace('torch.', '') + ')' if self.dtype != torch.float32 else ''}; {state}"

    # ----------------------------------------------------------------------------- running
    def run_streams(self, image: np.ndarray, *, face: FaceResult | None = None, return_norm1: bool = False) -> StreamPass:
        """Face analysis, stream inputs and one forward pass per input size (no vote, no explanations)."""
        face = face if face is not None else self.face_detector.analyze(image)
        inputs = prepare_inputs(image, self.config.streams, face=face)
        tensors = {
            name: to_tensor(inp.pixels, self.config.stream(name), device=self.device, dtype=self.dtype)
            for name, inp in inputs.items()
        }
        with torch.inference_mode():
            outputs = self.model.forward_streams(tensors, return_attention=True, return_norm1=return_norm1)
        return StreamPass(image=image, face=face, inputs=inputs, tensors=tensors, outputs=outputs)

    def _forward_batch(self, items: list[_Prepared], *, return_norm1: bool = False) -> None:
        """One batched pass of every stream over several prepared images (fills ``item.run``)."""
        tensors = {
            s.name: to_tensor([it.inputs[s.name].pixels for it in items], s, device=self.device, dtype=self.dtype)
            for s in self.config.streams
        }
        with torch.inference_mode():
            outputs = self.model.forward_streams(tensors, return_attention=True, return_norm1=return_norm1)
        for i, it in enumerate(items):
            it.run = StreamPass(
                image=it.analysed,
                face=it.face,
                inputs=it.inputs,
                tensors={n: t[i : i + 1] for n, t in tensors.items()},
                outputs={n: _slice_output(o, i) for n, o in outputs.items()},
            )

    def _prepare(self, image: Any, *, degradation, compound, seed, source, timings, progress) -> _Prepared:
        with _timed(timings, "decode"):
            decoded = image if isinstance(image, DecodedImage) else decode_image(image)
        if source is None and isinstance(image, (str, os.PathLike)):
            source = os.fspath(image)
        analysed, info = decoded.pixels, None
        if degradation is not None or compound is not None:
            with _timed(timings, "degrade"):
                analysed, info = _degrade(decoded.pixels, degradation, compound, seed)
        progress("faces", 0.05)
        with _timed(timings, "faces"):
            face = self.face_detector.analyze(analysed)
            inputs = prepare_inputs(analysed, self.config.streams, face=face)
        return _Prepared(source=source, decoded=decoded, analysed=analysed, info=info, face=face, inputs=inputs, timings=timings)

    def _finish(self, item: _Prepared) -> tuple[Report, dict[str, StreamReport]]:
        run = item.run
        with _timed(item.timings, "vote"):
            probs = {n: float(o.prob_fake[0]) for n, o in run.outputs.items()}
            verdict = vote(probs, self.config.vote, face_fallback=item.face.mode != "crop")
        streams = {
            name: StreamReport(
                name=name,
                prob_fake=probs[name],
                vote_prob=verdict.stream_probs[name],
                weight=float(verdict.weights.get(name, 0.0)),
                logits=tuple(float(v) for v in out.logits[0].float()),
                input=run.inputs[name],
                attention=attention_entropy(out.cls_attention[0].float()),
                cls=out.cls[0].float().cpu().numpy(),
                features=out.features[0].float().cpu().numpy(),
            )
            for name, out in run.outputs.items()
        }
        report = Report(
            source=item.source,
            prob_fake=verdict.prob_fake,
            label=verdict.label,
            vote=verdict,
            streams=streams,
            face=item.face,
            preset=self.preset,
            untrained=self.untrained,
            weights=self.weights,
            device=str(self.device),
            image_size=(item.decoded.width, item.decoded.height),
            image_notes=item.decoded.notes,
            degradation=item.info,
            feature_similarity=feature_similarity({n: s.cls for n, s in streams.items()}),
            timings=item.timings,
            image=item.analysed,
            original=item.decoded.pixels if item.info is not None else None,
        )
        return report, streams

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
    ) -> Report:
        """Analyses one image.

        Args:
            image: a path, bytes, PIL image or RGB array (decoded safely, see :mod:`forensic.images`).
            degradation: a degradation spec or preset applied first (see :mod:`forensic.degrade`).
            compound: strength of the paper's compound degradation applied first (instead of a spec).
            seed: seed of the degradation.
            explain: ``none``, ``fast`` (grouped Score-CAM) or ``exact`` (one pass per channel).
            stability: when degraded, also run the clean image and report per-stream feature cosine.
            source: a name for the report (defaults to the path when ``image`` is one).
            progress: called with (stage, fraction) during long steps.
            cam_groups: channel groups of the fast Score-CAM (default: channels / 16).

        Raises:
            forensic.images.ImageError: the input is not a usable image.
            forensic.degrade.SpecError: the degradation spec is invalid.
        """
        if explain not in ("none", "fast", "exact"):
            raise ValueError(f"explain must be 'none', 'fast' or 'exact', not {explain!r}")
        report_progress = progress or (lambda stage, fraction: None)
        item = self._prepare(
            image, degradation=degradation, compound=compound, seed=seed, source=source, timings={}, progress=report_progress
        )
        report_progress("streams", 0.15)
        with _timed(item.timings, "streams"):
            self._forward_batch([item], return_norm1=explain != "none")  # Score-CAM's layer, computed once
        report, streams = self._finish(item)
        if explain != "none":
            with _timed(item.timings, f"explain_{explain}"):
                report.cam_similarity = self._explain(item.run, streams, method=explain, progress=report_progress, n_groups=cam_groups)
            report.explain = explain
        if item.info is not None and stability:
            report_progress("stability (clean image)", 0.95)
            with _timed(item.timings, "stability"):
                clean_run = self.run_streams(item.decoded.pixels)
                for name, out in clean_run.outputs.items():
                    streams[name].stability = cosine(out.features[0].float(), item.run.outputs[name].features[0].float())
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
    ) -> Iterator[tuple[Any, Report | Exception]]:
        """Verdicts for many images, ``batch_size`` at a time through the streams, in input order.

        A failure (unreadable file, bad spec) is yielded as the exception, never raised, so one bad
        file never stops a batch. No explanations (use :meth:`analyze` per image for those).
        """
        pending: list[tuple[Any, _Prepared | Exception]] = []

        def flush() -> Iterator[tuple[Any, Report | Exception]]:
            ready = [p for _, p in pending if isinstance(p, _Prepared)]
            if ready:
                try:
                    with _timed(ready[0].timings, "streams"):
                        self._forward_batch(ready)
                except Exception as exc:  # e.g. out of memory: report it for these files, go on
                    log.warning("batch of %d images failed: %s", len(ready), exc)
                    pending[:] = [(src, exc if isinstance(p, _Prepared) else p) for src, p in pending]
            for src, p in pending:
                if isinstance(p, Exception):
                    yield src, p
                    continue
                try:
                    report, streams = self._finish(p)
                    if p.info is not None and stability:
                        clean_run = self.run_streams(p.decoded.pixels)
                        for name, out in clean_run.outputs.items():
                            streams[name].stability = cosine(out.features[0].float(), p.run.outputs[name].features[0].float())
                    yield src, report
                except Exception as exc:  # one bad file must never stop a batch
                    yield src, exc
            pending.clear()

        for src in sources:
            try:
                prepared = self._prepare(
                    src, degradation=degradation, compound=compound, seed=seed, source=None, timings={}, progress=lambda *_: None
                )
                pending.append((src, prepared))
            except Exception as exc:  # one bad file must never stop a batch; the caller reports it
                log.debug("analysis of %s failed", src, exc_info=True)
                pending.append((src, exc))
            if sum(isinstance(p, _Prepared) for _, p in pending) >= batch_size:
                yield from flush()
        yield from flush()

    def _explain(self, run: StreamPass, streams: dict[str, StreamReport], *, method: str, progress: Progress, n_groups: int | None):
        names = list(run.outputs)
        autocast = _cam_autocast(self.device, self.dtype)
        with self._explain_lock:  # one explanation at a time: bounded memory, hooks on shared modules
            merged = None
            if self.device.type == "cpu":
                # the masked passes run on a copy (bf16 where the CPU has bf16 instructions) with
                # each stream's adapter merged in turn: no per-pass weight casts, no adapter hooks.
                # Built per call (~0.1 s for `small`); in the weights' own dtype it shares all but
                # the adapted weights.
                merged, autocast = MergedStreamCopy(self.model, autocast or self.dtype), None
            for i, name in enumerate(names):
                def on_batch(done: int, total: int, _i=i, _name=name) -> None:
                    progress(f"Score-CAM ({method}) {_name}", 0.2 + 0.7 * (_i + done / total) / len(names))

                model = merged.select(name) if merged is not None else self.model
                x = run.tensors[name].to(next(model.parameters()).dtype, copy=True)  # made under inference_mode; CAM may need autograd
                cam = stream_cam(
                    model, name, x, method=method, progress=on_batch, autocast_dtype=autocast, n_groups=n_groups,
                    activations=run.outputs[name].last_norm1,
                )
                report = streams[name]
                report.cam = cam
                report.cam_entropy = map_entropy(cam.grid_map)
                report.cam_image = run.inputs[name].region.paste_map(cam.input_map, run.image.shape)
        return map_similarity({n: streams[n].cam_image for n in names})


def fast_cpu_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX or AVX512-BF16): bf16 matmuls ~6x fp32 there."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def _cam_autocast(device: torch.device, dtype: torch.dtype) -> torch.dtype | None:
    """The low precision Score-CAM's masked passes run in: bf16 on GPUs and on CPUs with bf16 instructions.

    The verdict keeps the weights' own precision. On a GPU the passes run under bf16 autocast; on
    a CPU, :meth:`Detector._explain` runs them on a bf16 copy of the model instead (no per-pass
    weight casts). Maps move by far less than the difference between fast and exact Score-CAM
    (Pearson >= 0.99 with the float32 maps for `small`, bench/RESULTS.md) and come 2.5-3x
    faster on such CPUs. ``FORENSIC_CAM_BF16=0`` keeps float32.
    """
    if os.environ.get("FORENSIC_CAM_BF16", "1") == "0" or dtype != torch.float32:
        return None
    if device.type == "cuda" or (device.type == "cpu" and fast_cpu_bf16()):
        return torch.bfloat16
    return None


def resolve_dtype(value: torch.dtype | str | None, device: str | torch.device) -> torch.dtype:
    """The weights' dtype: explicit, else ``$FORENSIC_DTYPE``, else bf16 on CUDA and float32 on CPU.

    bf16 halves the memory of the paper's model on a GPU; on a CPU with AMX/AVX512-BF16 it also
    doubles the speed (bench/RESULTS.md) but moves P(fake) by ~1e-3, so float32 stays the CPU default.
    """
    if isinstance(value, torch.dtype):
        return value
    value = value or os.environ.get("FORENSIC_DTYPE") or "auto"
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if value == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if value not in names:
        raise ValueError(f"unknown dtype {value!r}; use auto, float32 or bfloat16")
    return names[value]


def _degrade(image: np.ndarray, spec: str | None, compound: float | None, seed: int) -> tuple[np.ndarray, DegradationInfo]:
    from .degrade import degrade_result, psnr

    result = degrade_result(image, spec, compound=compound, seed=seed)
    applied = tuple({"name": op.name, "params": dict(op.params), "stage": op.stage} for op in result.applied)
    info = DegradationInfo(spec=str(spec) if spec is not None else None, compound=compound, seed=seed, applied=applied, psnr=psnr(image, result.image))
    return result.image, info


@contextmanager
def _timed(timings: dict[str, float], stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
