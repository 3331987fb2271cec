"""A clip through the image pipeline: sampled frames become work items, batched like any image.

Two passes over the file keep memory bounded by the batch, never the clip:

1. **faces** (only for a model with a face stream; a model without one never searches): the
   sampled frames are decoded and their faces found ``batch_size`` at a time, fewer for large
   frames (at most :data:`FACE_BATCH_PIXELS` pixels a batch: the face detector's working memory
   grows with the pixels of its batch, ~0.1 GB per 1080p frame on a CPU)
   (:func:`forensic.pipeline.locate`); only the boxes and a 32x32 thumbnail per frame are kept.
   Consecutive thumbnails give the scene cuts, the boxes the face tracks and the main track
   (:mod:`forensic.video.tracks`).
2. **frames**: the clip is decoded again and each frame goes through :meth:`Detector.run` as a
   :class:`~forensic.pipeline.WorkItem` (source: the frame's pixels; name ``clip.mp4@12.0s``)
   whose ``face`` is the main track's face on that frame (:func:`forensic.faces.decide` on its
   box), so the face stream follows one person; a frame without it gets the policy's no-face
   result and says so, as an image does. Decoding runs ahead of the device as for images.

Degradation: ``crf=`` re-encodes the whole clip first with libx264 (:func:`forensic.video.reencode.reencoded`;
FF++ c23/c40, DeeperForensics-1.0 CRF 30-40), and both passes read the re-encoded file; a spec or
a compound strength is applied to every sampled frame, frame ``i`` with seed ``seed + i`` (wrapping
past ``MAX_SEED`` to 0; the
same in both passes, so faces are found on the frame as it is analysed).

Explanations (:func:`analyze_video`): the ``explain_frames`` most suspicious frames (those on the
main track first; :func:`forensic.video.summary.suspicion_key`) are kept while streaming
(at most that many frames in memory) and analysed again with the method; their reports, which
carry the maps (``cam_image`` ...), replace the plain ones.

Cost: the CPU per frame of the image path (MTCNN once per frame, in pass 1 instead of the locate
stage; a second decode of a sampled frame is a few ms); the wall time is higher because the faces
pass cannot overlap the streams (the main track needs every frame's faces first). Measured on 32
256x256 frames, tiny-random, 2 torch threads on 2 busy cores: CPU 1.00x of ``analyze_many`` on the
same frames as arrays, wall about 1.4x.

This module reaches the pipeline only through the detector it is given (:meth:`Detector.run`,
:meth:`Detector.item`, :meth:`Detector.locate`), never by import, so that ``Detector.analyze_video``
and ``Detector.iter_video`` can delegate here without an import cycle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..degrade import MAX_SEED, check_seed, degrade_result
from ..explain import check_method
from ..faces import FacePolicy, FaceResult, decide
from ..images import DecodedImage
from .decoding import VIDEO_MAX_PIXELS, ClipInfo, Frame, VideoError, iter_frames, probe
from .reencode import crf_reference, reencoded
from .report import VideoReport
from .summary import FrameReport, summarize, suspicion_key
from .tracks import Track, is_cut, link_tracks, main_track, thumbnail

__all__ = ["iter_video", "analyze_video", "VideoRun", "FACE_BATCH_PIXELS", "CPU_FRAME_BATCH_PIXELS"]

Progress = Callable[[str, float], None]

#: the faces pass sends at most this many pixels to the face detector at once (at least one
#: frame): two 1080p frames. Measured on a 10-minute 1080p clip (bench/RESULTS.md, "Video"):
#: batches of 8 frames peaked 0.7 GB above the detector, batches of 2 0.3 GB, at the same speed.
FACE_BATCH_PIXELS = 2 * 1920 * 1080
#: on a CPU, the frames pass sends at most this many pixels through the streams at once (at least
#: one frame): four 1080p frames. A bigger batch buys a CPU no speed, and each frame in flight is
#: held about five times over (loaded ahead, batched, reported); on a GPU the batch is as asked.
CPU_FRAME_BATCH_PIXELS = 4 * 1920 * 1080


def _seconds(t: float) -> str:
    return f"{t:.1f}".removesuffix(".0")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class VideoRun:
    """One clip's analysis, pass by pass (what :func:`iter_video` and :func:`analyze_video` share).

    Use as a context manager (it owns the re-encoded copy, if any); :meth:`faces` runs the first
    pass, :meth:`frames` streams the frames' reports; afterwards ``notes``, ``tracks``, ``main``,
    ``times`` and ``keep`` (the frames kept for explanation) are filled in.
    """

    def __init__(self, detector: Any, path: str | os.PathLike, *, fps: float = 1.0, max_frames: int = 64,
                 degradation: str | None = None, compound: float | None = None, crf: int | None = None,
                 seed: int = 0, batch_size: int = 8, progress: Progress | None = None, keep: int = 0,
                 max_pixels: int = VIDEO_MAX_PIXELS) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.detector = detector
        self.path = Path(path)
        self.fps, self.max_frames = float(fps), int(max_frames)
        if int(max_pixels) < 1:
            raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
        self.max_pixels = int(max_pixels)
        self.degradation, self.compound, self.crf = degradation, compound, crf
        self.seed = check_seed(seed)
        self.batch_size = int(batch_size)
        self.progress = progress or (lambda text, fraction: None)
        self.keep_count = int(keep)
        self.searches = any(s.input == "face-crop" for s in detector.config.streams)
        self.notes: list[str] = []
        self.tracks: list[Track] = []
        self.main: Track | None = None
        self.times: list[float] = []
        self.keep: list[tuple[tuple, Frame, FrameReport]] = []  # (suspicion key, frame, its report), best first
        self.info: ClipInfo | None = None
        self.planned = 0
        self._faces: list[FaceResult] = []
        self._policy = FacePolicy()
        self._stack = contextlib.ExitStack()
        self._source = self.path

    # ----------------------------------------------------------------------------- setup
    def __enter__(self) -> VideoRun:
        try:
            if self.degradation is not None or self.compound is not None:
                degrade_result(np.zeros((16, 16, 3), np.uint8), self.degradation, compound=self.compound, seed=self.seed)  # a bad spec fails now
            self.info = probe(self.path)
            if self.crf is not None:
                self._source = self._stack.enter_context(reencoded(self.path, int(self.crf), max_pixels=self.max_pixels))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def frames_batch(self) -> int:
        """Frames per batch of the frames pass: ``batch_size``, bounded on a CPU by :data:`CPU_FRAME_BATCH_PIXELS`."""
        device = getattr(self.detector, "device", None)
        if self.info is None or getattr(device, "type", "cpu") != "cpu":
            return self.batch_size
        pixels = max(1, min(self.info.width * self.info.height, self.max_pixels))
        return min(self.batch_size, max(1, CPU_FRAME_BATCH_PIXELS // pixels))

    def frame_seed(self, index: int) -> int:
        """The seed of sampled frame ``index``: ``seed + index``, wrapping past :data:`~forensic.degrade.MAX_SEED`
        (so a seed near the top of the range never fails frame by frame)."""
        return (self.seed + index) % (MAX_SEED + 1)

    @property
    def degradation_record(self) -> dict[str, Any] | None:
        """What was applied (``VideoReport.degradation``), or None."""
        if self.crf is None and self.degradation is None and self.compound is None:
            return None
        reencode = None if self.crf is None else {"codec": "h264", "encoder": "libx264", "crf": int(self.crf),
                                                   "reference": crf_reference(self.crf)}
        frames = None
        if self.degradation is not None or self.compound is not None:
            frames = {"spec": None if self.degradation is None else str(self.degradation), "compound": self.compound,
                      "seed": self.seed, "seeds": "frame i is degraded with seed + i (wrapping past 2**32 - 1 to 0)"}
        return {"reencode": reencode, "frames": frames}

    def _frames(self) -> Any:
        return iter_frames(self._source, fps=self.fps, max_frames=self.max_frames, max_pixels=self.max_pixels)

    def _pixels(self, frame: Frame) -> np.ndarray:
        if self.degradation is None and self.compound is None:
            return frame.image
        return degrade_result(frame.image, self.degradation, compound=self.compound, seed=self.frame_seed(frame.index)).image

    # ----------------------------------------------------------------------------- pass 1
    def faces(self) -> None:
        """The first pass: faces, cuts and tracks (nothing to do for a model without a face stream)."""
        if not self.searches:
            return
        self._policy = getattr(self.detector.face_detector, "policy", FacePolicy())
        cuts: set[int] = set()
        previous = None
        pending: deque[Future] = deque()

        def locate(batch: list[Frame]) -> list[FaceResult]:
            return self.detector.locate([self._pixels(f) for f in batch])

        def collect() -> None:
            self._faces.extend(pending.popleft().result())
            self.progress(f"faces {len(self._faces)}/{self.planned} frames", 0.3 * len(self._faces) / max(1, self.planned))

        # the faces are found in a helper thread, as the pipeline's locate stage is, while the
        # caller's thread decodes the next batch; at most two batches wait (bounded memory)
        with self._frames() as stream, ThreadPoolExecutor(1, thread_name_prefix="video-faces") as helper:
            self.planned = len(stream.times)
            batch: list[Frame] = []
            for frame in stream:
                thumb = thumbnail(frame.image)
                if is_cut(previous, thumb):
                    cuts.add(frame.index)
                previous = thumb
                self.times.append(frame.time_s)
                batch.append(frame)
                if len(batch) >= min(self.batch_size, max(1, FACE_BATCH_PIXELS // frame.image[..., 0].size)):
                    pending.append(helper.submit(locate, batch))
                    batch = []
                    if len(pending) >= 2:
                        collect()
            if batch:
                pending.append(helper.submit(locate, batch))
            while pending:
                collect()
            self.notes.extend(stream.notes)
        self.tracks = link_tracks([f.faces for f in self._faces], cuts=cuts)
        size = self._faces[0].image_size if self._faces else (1, 1)
        self.main = main_track(self.tracks, size)
        note = self._track_note()
        if note:
            self.notes.append(note)

    def _track_note(self) -> str | None:
        if len(self.tracks) < 2 or self.main is None:
            return None
        spans = ", ".join(f"{_seconds(self.times[t.first])}-{_seconds(self.times[t.last])} s" for t in self.tracks)
        longest = all(t.length < self.main.length for t in self.tracks if t is not self.main)
        which = ("longer" if len(self.tracks) == 2 else "longest") if longest else "main track (longest, then largest, then most central)"
        apart = [t for t in self.tracks if t is not self.main and not t.overlaps(self.main)]
        change = " (the face changes person or leaves the scene)" if apart else " (several faces at once)"
        return (f"{len(self.tracks)} face tracks: {spans}{change}; the face stream follows the {which}, "
                f"{_seconds(self.times[self.main.first])}-{_seconds(self.times[self.main.last])} s")

    def face_of(self, index: int) -> FaceResult | None:
        """The face the item of frame ``index`` carries: the main track's, else the policy's no-face
        result (None: not searched in pass 1, so the pipeline decides)."""
        if not self.searches or index >= len(self._faces):
            return None
        found = self._faces[index]
        box = None if self.main is None else self.main.box_at(index)
        if box is not None:
            chosen = decide((box,), found.found_by or "original", found.image_size, self._policy)
            if len(found.faces) > 1:
                chosen = dataclasses.replace(chosen, faces=found.faces, reason=(
                    f"{chosen.reason} {len(found.faces)} faces on this frame: the face stream follows the clip's main face track."))
            return chosen
        if not found.faces:
            return found  # the policy's no-face result, as for an image
        w, h = found.image_size
        return dataclasses.replace(decide((), None, (w, h), self._policy), faces=found.faces, reason=(
            f"The clip's main face is not on this frame ({_count(len(found.faces), 'other face')} found): no face crop, "
            "so the face stream falls back to the whole image, as for an image without a face."))

    # ----------------------------------------------------------------------------- pass 2
    def frames(self) -> Iterator[FrameReport]:
        """The second pass: every sampled frame's report, in time order, as the batches finish."""
        base = 0.3 if self.searches else 0.0
        done = 0
        main_frames = set(self.main.frames) if self.main is not None else None
        with self._frames() as stream:
            self.planned = self.planned or len(stream.times)
            name = self.path.name

            def items() -> Iterator[tuple[Frame, Any]]:
                for frame in stream:
                    item = self.detector.item(_decoded(frame), degradation=self.degradation, compound=self.compound,
                                    seed=self.frame_seed(frame.index), face=self.face_of(frame.index),
                                    name=f"{name}@{frame.time_s:.1f}s")
                    yield frame, item

            times: list[float] = []
            for frame, outcome in self.detector.run(items(), batch_size=self.frames_batch):
                on_main = main_frames is not None and frame.index in main_frames
                if isinstance(outcome, Exception):
                    result = FrameReport(frame.index, frame.time_s, None, _one_line(outcome), on_main)
                else:
                    result = FrameReport(frame.index, frame.time_s, outcome, None, on_main)
                    self._consider(frame, result)
                times.append(frame.time_s)
                done += 1
                self.progress(f"frames {done}/{self.planned}", base + (0.95 - base) * done / max(1, self.planned, done))
                yield result
            if not self.searches:
                self.notes.extend(stream.notes)
        if not times:
            raise VideoError(f"The clip {self.path.name} gave no frame to analyse: give a clip with at least one decodable frame.")
        self.times = times

    def _consider(self, frame: Frame, result: FrameReport) -> None:
        """Keeps the ``keep`` most suspicious frames for explanation, those on the main track first."""
        if self.keep_count <= 0:
            return
        off_main = self.main is not None and not result.on_main_track
        self.keep.append(((off_main, *suspicion_key(result)), frame, result))
        self.keep.sort(key=lambda entry: entry[0])
        del self.keep[self.keep_count:]

    def explain(self, method: str, *, cam_groups: int | None = None) -> dict[int, FrameReport]:
        """The kept frames analysed again with ``method``: ``{index: explained frame report}``
        (a frame whose explanation fails keeps its plain report and gets a note)."""
        if not self.keep:
            return {}
        self.progress(f"explaining {len(self.keep)} frame(s)", 0.96)
        name = self.path.name
        items = [(result, self.detector.item(frame.image, degradation=self.degradation, compound=self.compound,
                                   seed=self.frame_seed(frame.index), face=self.face_of(frame.index), explain=method,
                                   cam_groups=cam_groups, name=f"{name}@{frame.time_s:.1f}s"))
                 for _, frame, result in self.keep]
        explained = {}
        for result, outcome in self.detector.run(items, batch_size=self.batch_size):
            if isinstance(outcome, Exception):
                self.notes.append(f"explaining the frame at {_seconds(result.time_s)} s failed: {_one_line(outcome)}")
            else:
                explained[result.index] = dataclasses.replace(result, report=outcome)
        return explained

    @property
    def sampling(self) -> dict[str, Any]:
        duration = self.info.duration_s if self.info is not None else 0.0
        spread = math.isfinite(duration) and duration * self.fps > self.max_frames + 1e-9
        return {"fps": self.fps, "max_frames": self.max_frames, "times_s": [round(float(t), 6) for t in self.times],
                "spread": bool(spread)}


def _decoded(frame: Frame) -> DecodedImage:
    """The frame as a decoded image that owns its pixels (the decoder's fresh buffer: the pipeline
    need not copy it, as it copies an array a caller may keep writing to)."""
    pixels = np.ascontiguousarray(frame.image)
    h, w = pixels.shape[:2]
    notes = () if frame.scaled_from is None else (
        f"frame scaled from {frame.scaled_from[0]}x{frame.scaled_from[1]} to {w}x{h} while decoding",)
    return DecodedImage(pixels=pixels, format=None, original_mode="RGB", original_size=(w, h), notes=notes,
                        scaled_from=frame.scaled_from)


def _without_images(frame: FrameReport) -> FrameReport:
    """``frame`` without its report's image arrays (the verdict, streams and faces stay)."""
    if frame.report is None:
        return frame
    return dataclasses.replace(frame, report=dataclasses.replace(frame.report, image=None, original=None))


def iter_video(detector: Any, path: str | os.PathLike, *, fps: float = 1.0, max_frames: int = 64,
               degradation: str | None = None, compound: float | None = None, crf: int | None = None, seed: int = 0,
               batch_size: int = 8, max_pixels: int = VIDEO_MAX_PIXELS,
               progress: Progress | None = None) -> Iterator[FrameReport]:
    """Each sampled frame's :class:`FrameReport`, in time order, as its batch finishes (after the
    faces pass; see the module's docstring). For long clips: nothing but the batch is held.

    Raises:
        VideoError: the clip cannot be read, or gives no frame.
        forensic.degrade.SpecError: the degradation spec is invalid.
    """
    with VideoRun(detector, path, fps=fps, max_frames=max_frames, degradation=degradation, compound=compound,
                  crf=crf, seed=seed, batch_size=batch_size, progress=progress, max_pixels=max_pixels) as run:
        run.faces()
        yield from run.frames()


def analyze_video(detector: Any, path: str | os.PathLike, *, fps: float = 1.0, max_frames: int = 64,
                  degradation: str | None = None, compound: float | None = None, crf: int | None = None,
                  seed: int = 0, batch_size: int = 8, explain: str = "none", explain_frames: int = 1,
                  cam_groups: int | None = None, vote_without_face: bool = False,
                  max_pixels: int = VIDEO_MAX_PIXELS, keep_images: bool = False,
                  progress: Progress | None = None) -> VideoReport:
    """Analyses a clip: per-frame reports, face tracks, the clip's summary and verdict
    (:mod:`forensic.video.summary`), and, with ``explain``, the ``explain_frames`` most suspicious
    frames explained (see the module's docstring).

    Args:
        detector: a :class:`forensic.pipeline.Detector`.
        path: the clip (any container PyAV reads: mp4, mov, webm, mkv, avi, gif ...).
        fps: frames sampled per second of clip.
        max_frames: at most this many frames, spread over the whole clip when ``fps`` would give more.
        degradation, compound: applied to every frame (frame ``i`` with seed ``seed + i``).
        crf: re-encode the clip with libx264 at this CRF first (FF++ c23 = 23, c40 = 40;
            DeeperForensics-1.0: 30, 32, 35, 38, 40).
        batch_size: frames per batch through the streams (and per face-detection batch).
        explain: ``"none"`` or an explanation method (:func:`forensic.explain.method_names`).
        explain_frames: how many of the most suspicious frames to explain.
        vote_without_face: give the clip's vote even when no frame shows a face.
        max_pixels: frames are scaled while decoding to at most this many pixels.
        keep_images: keep every frame's analysed image (``report.image``, ``report.original``);
            by default only the explained frames keep theirs, so memory does not grow with the
            clip (64 frames of 1080p would hold 0.4 GB; :func:`iter_video` streams them instead).
        progress: ``progress(text, fraction)``, text like ``"faces 12/64 frames"`` and ``"frames 12/64"``.

    Raises:
        VideoError: the clip cannot be read, or gives no frame.
        forensic.degrade.SpecError: the degradation spec is invalid.
    """
    check_method(explain, allow_none=True)
    if explain_frames < 0:
        raise ValueError(f"explain_frames must be >= 0, got {explain_frames}")
    keep = explain_frames if explain != "none" else 0
    with VideoRun(detector, path, fps=fps, max_frames=max_frames, degradation=degradation, compound=compound,
                  crf=crf, seed=seed, batch_size=batch_size, progress=progress, keep=keep, max_pixels=max_pixels) as run:
        run.faces()
        frames = [f if keep_images else _without_images(f) for f in run.frames()]
        explained = run.explain(explain, cam_groups=cam_groups) if keep else {}
    frames = [explained.get(f.index, f) for f in frames]
    if vote_without_face:  # each frame's verdict too, as for an image
        frames = [f if f.report is None else dataclasses.replace(f, report=dataclasses.replace(f.report, vote_without_face=True))
                  for f in frames]
    config = detector.config
    summary = summarize(frames, threshold=config.vote.threshold, decimals=config.vote.decimals,
                        untrained=detector.untrained, searches_faces=run.searches, vote_without_face=vote_without_face)
    run.progress("done", 1.0)
    return VideoReport(
        source=os.fspath(path),
        clip=run.info,
        sampling=run.sampling,
        degradation=run.degradation_record,
        tracks=tuple(run.tracks),
        notes=run.notes,
        frames=frames,
        summary=summary,
        explained=sorted(explained),
        main_track=run.main,
        explain=explain if explained else "none",
    )
