"""Reading clips: probe a file, choose sample times, and stream the sampled frames (PyAV/FFmpeg).

Memory is bounded by one frame, never the clip: frames are decoded one after the other, only the
sampled ones are converted to RGB, and they are scaled to at most ``max_pixels`` by the converter
itself (swscale, area interpolation), so an 8K frame never exists as an RGB array. Rotation
metadata (a phone's display matrix) is applied to the small frame. Times are presentation times
(PTS x time base, from the stream's start), so variable frame rates are sampled by time, not by
frame number. When the next sample is far ahead and the file has a seek index, the reader seeks
to the keyframe before it instead of decoding every frame in between.

Bad input raises :class:`VideoError` (an :class:`forensic.images.ImageError`) with one line that
says what is wrong and what to do. Damage found after some frames were read does not raise: the
frames before it are kept and :attr:`FrameStream.notes` says what happened.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from forensic.images import ImageError, special_file_kind

__all__ = [
    "VIDEO_MAX_PIXELS",
    "VIDEO_SUFFIXES",
    "ClipInfo",
    "Frame",
    "FrameStream",
    "VideoError",
    "is_video_path",
    "iter_frames",
    "probe",
    "sample_times",
]

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")

#: every sampled frame is scaled while decoding to at most this many pixels (an 8K clip to 1080p)
VIDEO_MAX_PIXELS: int = 1920 * 1080

#: seek instead of decoding forward when the next sample is at least this far ahead (seconds) and
#: the index has a keyframe between here and there (files without an index: this gap alone)
SEEK_MIN_GAP_S: float = 2.0

#: a frame this close before a sample time counts as at it (rounded time stamps of 29.97 fps)
_TIME_SLACK_S = 1e-3

WHAT_TO_GIVE = "give an MP4, MOV, WebM, MKV or AVI clip"


class VideoError(ImageError):
    """Anything wrong with an input clip; the message is one line that says what to do."""


@dataclass(frozen=True)
class ClipInfo:
    """What a clip is. ``width``/``height`` are as displayed (after ``rotation``, in degrees clockwise)."""

    name: str
    container: str
    codec: str
    width: int
    height: int
    rotation: int
    duration_s: float
    fps: float
    frames: int | None
    has_audio: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Frame:
    """One sampled frame: HxWx3 uint8 RGB, upright, at most ``max_pixels`` (``scaled_from`` = (w, h) before)."""

    index: int
    time_s: float
    image: np.ndarray
    scaled_from: tuple[int, int] | None = None


def is_video_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a clip by its suffix (case-insensitive); a .gif counts as an image."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def sample_times(duration_s: float, fps: float = 1.0, max_frames: int = 64) -> list[float]:
    """Times (seconds from the start) at ``1/fps`` steps from 0 up to ``duration_s`` (excluded).

    When there would be more than ``max_frames``, ``max_frames`` times spread evenly over the
    whole clip instead (``duration_s * i / max_frames``). At least one time (0.0) for any clip,
    even of unknown (0) duration.
    """
    if not fps > 0 or not math.isfinite(fps):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps}")
    if int(max_frames) < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    max_frames = int(max_frames)
    if not duration_s > 0 or not math.isfinite(duration_s):
        return [0.0]
    n = max(1, math.ceil(duration_s * fps - 1e-9))
    if n > max_frames:
        return [round(duration_s * i / max_frames, 6) for i in range(max_frames)]
    return [round(i / fps, 6) for i in range(n)]


def probe(path: str | os.PathLike) -> ClipInfo:
    """What the clip at ``path`` is (decodes its first frame to be sure it has one). Raises VideoError."""
    reader = _Reader(path)
    try:
        return reader.info
    finally:
        reader.close()


def iter_frames(
    path: str | os.PathLike, *, fps: float = 1.0, max_frames: int = 64, max_pixels: int = VIDEO_MAX_PIXELS
) -> FrameStream:
    """The frames at :func:`sample_times` of the clip, decoded one at a time.

    For each sample time the first decoded frame whose presentation time is at or after it; a
    frame is given at most once, so in a gap of a variable-frame-rate clip several sample times
    share the next frame and fewer frames come out than there are times. ``Frame.index`` counts
    the frames given (0, 1, ...).

    Returns a :class:`FrameStream`: an iterator of :class:`Frame` that also carries ``info``
    (:class:`ClipInfo`), ``times`` (the sample times) and ``notes``. When the times are not spread
    and the stream runs past its stated length (some variable-frame-rate MP4s understate it), the
    sampling goes on at ``1/fps`` steps to the real end (up to ``max_frames``) and ``times`` grows. Bad input raises
    :class:`VideoError` here, before any frame. How decoding notes reach the caller: damage after
    the first frame (a truncated or corrupt file) ends the iteration normally, with the frames
    before it given, and a line in ``notes`` ("the clip is damaged after 12.0 s ..."); scaling adds
    "scaled from 7680x4320 to 1920x1080 while decoding" (and each such frame has ``scaled_from``).
    Read ``notes`` after the loop; use it as a context manager (or call ``close()``) to free the
    file early when stopping before the end.
    """
    if int(max_pixels) < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    sample_times(1.0, fps, max_frames)  # checks fps and max_frames before opening anything
    reader = _Reader(path)
    times = sample_times(reader.info.duration_s, fps, max_frames)
    return FrameStream(reader, times, fps=fps, max_frames=int(max_frames), max_pixels=int(max_pixels))


class FrameStream(Iterator[Frame]):
    """The sampled frames of one clip (see :func:`iter_frames`): iterate, then read ``notes``."""

    def __init__(self, reader: _Reader, times: list[float], *, fps: float, max_frames: int, max_pixels: int) -> None:
        self.info: ClipInfo = reader.info
        self.times: list[float] = times
        self._fps, self._max_frames = fps, max_frames
        self.notes: list[str] = []
        self._reader = reader
        self._frames = self._generate(max_pixels)

    @property
    def decoded(self) -> int:
        """How many pictures were decoded so far (more than the frames given: the ones between samples)."""
        return self._reader.decoded

    def __next__(self) -> Frame:
        return next(self._frames)

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._frames.close()
        self._reader.close()

    def _generate(self, max_pixels: int) -> Iterator[Frame]:
        reader = self._reader
        pending = deque(self.times)
        stated_end = self.times[-1]
        given, last_t, scaled_note, ran_past = 0, -math.inf, False, False
        try:
            for t, picture in reader.pictures(pending):
                if t + _TIME_SLACK_S < pending[0] or t <= last_t:
                    continue
                while pending and pending[0] <= t + _TIME_SLACK_S:
                    pending.popleft()
                image, scaled_from = reader.rgb(picture, max_pixels)
                if scaled_from and not scaled_note:
                    scaled_note = True
                    h, w = image.shape[:2]
                    self.notes.append(f"scaled from {scaled_from[0]}x{scaled_from[1]} to {w}x{h} while decoding")
                yield Frame(index=given, time_s=round(t, 6), image=image, scaled_from=scaled_from)
                given, last_t = given + 1, t
                if t >= self.info.duration_s - _TIME_SLACK_S and not ran_past:
                    ran_past = True
                    self.notes.append(
                        f"the clip runs past its stated length of {self.info.duration_s:.1f} s: sampled on to its end"
                    )
                if not pending and len(self.times) < self._max_frames:
                    # not spread: look one step further, in case the stated length is short (the stream decides)
                    self.times.append(round(math.floor(t * self._fps + 1.0 + 1e-6) / self._fps, 6))
                    pending.append(self.times[-1])
                if not pending:
                    return
            if pending and pending[0] > stated_end:
                self.times.pop()  # the step looked for past the stated length found no frame
            end = reader.last_picture
            if pending and pending[0] <= stated_end and end is not None and reader.last_time > last_t:
                # the stream ended before the next sample time: the last frame is the one on screen then
                image, scaled_from = reader.rgb(end, max_pixels)
                yield Frame(index=given, time_s=round(reader.last_time, 6), image=image, scaled_from=scaled_from)
                given, last_t = given + 1, reader.last_time
            if reader.damage is not None:
                self.notes.append(
                    f"the clip is damaged after {max(last_t, reader.last_time):.1f} s ({reader.damage}): "
                    f"decoding stopped there and the {given} frame(s) before it are kept"
                )
            elif self.info.duration_s - reader.last_time > max(0.5, 2.0 / max(self.info.fps, 1e-3)):
                self.notes.append(
                    f"the clip ends at {reader.last_time:.1f} s, before its stated length of "
                    f"{self.info.duration_s:.1f} s (truncated or damaged?): "
                    f"the {given} frame(s) before the end are kept"
                )
            if not given:  # pragma: no cover - the reader decoded a first frame when it opened
                raise VideoError(f"The clip {reader.name} has no decodable frame at all: {WHAT_TO_GIVE}.")
        finally:
            reader.close()


class _Reader:
    """One open clip: the container, its video stream, the first frame and the info."""

    def __init__(self, path: str | os.PathLike) -> None:
        import av

        self._av = av
        self.path = Path(path)
        self.name = repr(self.path.name or str(path))
        self.damage: str | None = None
        self.last_time = 0.0
        self.last_picture = None
        self.decoded = 0
        self._check_file()
        try:
            self.container = av.open(str(self.path), "r", metadata_errors="replace")
        except av.FFmpegError as exc:
            raise self._unreadable(exc) from None
        except OSError as exc:
            raise self._unopenable(exc) from None
        try:
            self._open_stream()
        except BaseException:
            self.container.close()
            raise

    # -- opening ---------------------------------------------------------------------------------
    def _check_file(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise VideoError(f"The clip {self.name} does not exist: check the path.") from None
        except OSError as exc:
            raise self._unopenable(exc) from None
        if stat.S_ISDIR(st.st_mode):
            raise VideoError(f"{self.name} is a folder, not a clip: {WHAT_TO_GIVE} file.")
        kind = special_file_kind(st.st_mode)
        if kind:
            raise VideoError(f"{self.name} is {kind}, not a clip file: {WHAT_TO_GIVE} file.")
        if st.st_size == 0:
            raise VideoError(f"The clip {self.name} is empty (0 bytes): copy or download it again.")

    def _unopenable(self, exc: OSError) -> VideoError:
        reason = exc.strerror or exc
        return VideoError(f"The clip {self.name} cannot be read ({reason}): check the path and permissions.")

    def _unreadable(self, exc: BaseException) -> VideoError:
        with open(self.path, "rb") as f:
            head = f.read(512)
        if head and _looks_like_text(head):
            return VideoError(
                f"The file {self.name} is text, not a video (its name ends in {self.path.suffix or 'nothing'}, "
                f"but it contains no video data): {WHAT_TO_GIVE}."
            )
        reason = _reason(exc)
        if "moov atom not found" in reason or "end of file" in reason.lower():
            return VideoError(
                f"The clip {self.name} is truncated or damaged ({reason}): copy or download the complete file again."
            )
        return VideoError(
            f"The file {self.name} cannot be read as a video ({reason}): it is truncated, damaged or not a "
            f"video; copy or download it again, or {WHAT_TO_GIVE}."
        )

    def _open_stream(self) -> None:
        container = self.container
        if not container.streams.video:
            audio = " (it has only audio)" if container.streams.audio else ""
            raise VideoError(f"The file {self.name} has no video stream{audio}: {WHAT_TO_GIVE} with pictures.")
        stream = self.stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self.time_base = float(stream.time_base) if stream.time_base else 1.0
        known_start = stream.start_time is not None and stream.time_base
        self.start = float(stream.start_time * stream.time_base) if known_start else 0.0
        self._decoded = self._decode_from_here()
        self.first = next(self._decoded, None)
        if self.first is None:
            detail = f" ({self.damage})" if self.damage else ""
            raise VideoError(
                f"The clip {self.name} has no decodable frame{detail}: its video is empty, cut short or damaged; "
                f"copy it again or {WHAT_TO_GIVE}."
            )
        self.rotation = _clockwise_rotation(getattr(self.first, "rotation", 0) or 0)
        w, h = self.first.width, self.first.height
        if self.rotation in (90, 270):
            w, h = h, w
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        frames = int(stream.frames) if stream.frames else None
        duration = self._duration(fps, frames)
        if not fps and frames and duration > 0:
            fps = frames / duration
        self.info = ClipInfo(
            name=self.path.name,
            container=_container_name(container.format.name, self.path.suffix),
            codec=stream.codec_context.name,
            width=w,
            height=h,
            rotation=self.rotation,
            duration_s=round(duration, 6),
            fps=round(fps, 6),
            frames=frames,
            has_audio=bool(container.streams.audio),
        )

    def _duration(self, fps: float, frames: int | None) -> float:
        stream, container = self.stream, self.container
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration:
            return max(0.0, container.duration / 1e6 - max(self.start, 0.0))
        if frames and fps:
            return frames / fps
        return self._scan_duration(fps)

    def _scan_duration(self, fps: float) -> float:
        """The last packet's end time, read from a second handle (no decoding): for files without a header length."""
        last = 0.0
        try:
            with self._av.open(str(self.path)) as other:
                s = other.streams.video[0]
                for packet in other.demux(s):
                    if packet.pts is not None and s.time_base:
                        end = float((packet.pts + (packet.duration or 0)) * s.time_base) - self.start
                        last = max(last, end)
        except self._av.FFmpegError:
            pass
        return last or (1.0 / fps if fps else 0.0)

    # -- decoding --------------------------------------------------------------------------------
    def _decode_from_here(self) -> Iterator:
        av = self._av
        try:
            for packet in self.container.demux(self.stream):
                for picture in packet.decode():
                    self.decoded += 1
                    yield picture
        except av.FFmpegError as exc:
            self.damage = _reason(exc)
        except (EOFError, MemoryError) as exc:
            self.damage = type(exc).__name__
        else:
            return
        try:  # the frames the decoder still holds (B-frame reordering) come out when it is flushed
            yield from self.stream.decode(None)
        except av.FFmpegError:
            pass

    def _time(self, picture, previous: float) -> float:
        if picture.pts is None:
            return previous + (1.0 / self.info.fps if self.info.fps else 0.0)
        return float(picture.pts) * float(picture.time_base or self.stream.time_base) - self.start

    def pictures(self, pending: deque) -> Iterator[tuple[float, object]]:
        """(time, PyAV frame) in decoding order from the start; seeks ahead towards ``pending[0]`` when it pays."""
        picture, t = self.first, 0.0
        self.first = None
        keyframes = self._keyframe_times()
        min_gap = SEEK_MIN_GAP_S
        while picture is not None:
            t = self._time(picture, t)
            self.last_time = max(self.last_time, t)
            self.last_picture = picture
            yield t, picture
            if not pending:
                return
            target = pending[0]
            if target - t >= min_gap and self._keyframe_between(keyframes, t, target):
                landed = self._seek(target)
                if keyframes is None:
                    keyframes = self._keyframe_times()  # Matroska reads its index (cues) at the first seek
                if landed is not None:
                    picture = landed
                    if self._time(landed, t) <= t + _TIME_SLACK_S:
                        min_gap *= 2  # the keyframe before the target was behind us: seek less eagerly
                    continue
            picture = next(self._decoded, None)

    def _keyframe_times(self) -> list[float] | None:
        try:
            entries = self.stream.index_entries
            times = [e.timestamp * self.time_base - self.start for e in entries if e.is_keyframe]
        except Exception:  # noqa: BLE001 - an index is an optimisation; without it we use the gap alone
            return None
        return times if len(times) > 1 else None

    @staticmethod
    def _keyframe_between(keyframes: list[float] | None, now: float, target: float) -> bool:
        if keyframes is None:
            return True
        return any(now + _TIME_SLACK_S < k <= target + _TIME_SLACK_S for k in keyframes)

    def _seek(self, target: float):
        """Seek to the keyframe at or before ``target``; its first frame, or None (then decode on)."""
        av = self._av
        try:
            self.container.seek(int((target + self.start) / self.time_base), stream=self.stream, backward=True)
        except (av.FFmpegError, OSError, ValueError):
            return None
        self._decoded = self._decode_from_here()
        return next(self._decoded, None)

    def rgb(self, picture, max_pixels: int) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The frame as upright RGB uint8, converted and scaled in one swscale pass."""
        w, h = picture.width, picture.height
        shown = (h, w) if self.rotation in (90, 270) else (w, h)
        if w * h > max_pixels:
            scale = math.sqrt(max_pixels / (w * h))
            sw, sh = max(1, int(w * scale)), max(1, int(h * scale))
            image = picture.to_ndarray(width=sw, height=sh, format="rgb24", interpolation="AREA")
            scaled_from = shown
        else:
            image = picture.to_ndarray(format="rgb24")
            scaled_from = None
        if self.rotation:
            image = np.rot90(image, k=-(self.rotation // 90))
        return np.ascontiguousarray(image), scaled_from

    def close(self) -> None:
        container = getattr(self, "container", None)
        if container is not None:
            container.close()
            self.container = None


def _clockwise_rotation(counterclockwise: float) -> int:
    """FFmpeg's display matrix angle (counterclockwise) as the clockwise turn a player applies: 0, 90, 180, 270."""
    return int(round(-float(counterclockwise) / 90.0)) % 4 * 90


def _container_name(format_name: str, suffix: str) -> str:
    names = format_name.split(",")
    wanted = suffix.lower().lstrip(".")
    return wanted if wanted in names else names[0]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    reason = re.sub(r"^\[Errno -?\d+\]\s*", "", text[0]) if text else type(exc).__name__
    path_text = getattr(exc, "filename", None)
    if path_text:
        reason = reason.replace(f": '{path_text}'", "").replace(str(path_text), "")
    return reason[:120].rstrip(": ")


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
