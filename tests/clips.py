"""Small video clips for the tests, made with PyAV (never downloaded).

Frame makers return lists of HxWx3 uint8 RGB arrays; :func:`write_clip` encodes them. Keep clips
tiny (64-256 px, 1-3 s) so the tests stay fast.

    frames = moving_frames(20, size=128)
    write_clip(tmp_path / "pan.mp4", frames, fps=10)
    write_clip(tmp_path / "phone.mov", frames, rotate=90)          # decoders must turn it back upright
    write_clip(tmp_path / "vfr.mkv", frames[:4], times=[0, 0.1, 0.5, 2.0])
    write_clip(tmp_path / "fake.mp4", planted_segment(static_frames(30), 10, 20))
"""

from __future__ import annotations

import fractions
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from forensic.toy import plant, smooth_texture

__all__ = [
    "EXAMPLES",
    "PHOTOS",
    "cut_frames",
    "frame_number",
    "moving_frames",
    "numbered_frames",
    "photo",
    "planted_segment",
    "static_frames",
    "write_audio_only",
    "write_clip",
    "write_empty",
    "write_no_frames",
    "write_text_as_video",
    "write_truncated",
]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: the names :func:`photo` knows: the shipped examples, scikit-image's photos and a toy texture
PHOTOS = ("astronaut", "astronaut_face", "coffee", "chelsea", "rocket", "texture")

#: the container each suffix gets, and the codec used when ``codec`` is left out
_DEFAULT_CODEC = {".webm": "libvpx-vp9", ".gif": "gif", ".avi": "mpeg4"}


def photo(name: str = "astronaut_face", size: int | tuple[int, int] = 128) -> np.ndarray:
    """One photo as HxWx3 uint8 RGB, resized to ``size`` (an int: square; a tuple: (width, height)).

    ``astronaut``/``astronaut_face`` are the shipped examples/, ``coffee``/``chelsea``/``rocket``
    scikit-image's data photos, ``texture`` forensic.toy's smooth texture (seed 0).
    """
    if name in ("astronaut", "astronaut_face"):
        suffix = ".jpg" if name == "astronaut" else ".png"
        bgr = cv2.imread(str(EXAMPLES / f"{name}{suffix}"), cv2.IMREAD_COLOR)
        rgb = np.ascontiguousarray(bgr[..., ::-1])
    elif name == "texture":
        rgb = smooth_texture(np.random.default_rng(0), 256)
    elif name in ("coffee", "chelsea", "rocket"):
        import skimage.data

        rgb = getattr(skimage.data, name)()
    else:
        raise ValueError(f"unknown photo {name!r}: one of {', '.join(PHOTOS)}")
    w, h = (size, size) if isinstance(size, int) else size
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


def static_frames(n: int = 10, *, name: str = "astronaut_face", size: int | tuple[int, int] = 128) -> list[np.ndarray]:
    """``n`` copies of one photo (a still camera on a still scene)."""
    image = photo(name, size)
    return [image.copy() for _ in range(n)]


def moving_frames(
    n: int = 20, *, name: str = "astronaut", size: int | tuple[int, int] = 128, zoom: float = 1.3
) -> list[np.ndarray]:
    """A slow pan and zoom over a photo: frame i crops a window that moves right and shrinks."""
    w, h = (size, size) if isinstance(size, int) else size
    big = photo(name, (int(w * 2), int(h * 2)))
    H, W = big.shape[:2]
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        scale = 1.0 / (1.0 + (zoom - 1.0) * t)  # window side as a share of the photo
        cw, ch = int(W * 0.75 * scale), int(H * 0.75 * scale)
        x0 = int((W - cw) * (0.2 + 0.6 * t))
        y0 = int((H - ch) * 0.5)
        frames.append(cv2.resize(big[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_AREA))
    return frames


def cut_frames(
    n_a: int = 10,
    n_b: int = 10,
    *,
    a: str = "astronaut_face",
    b: str = "coffee",
    size: int | tuple[int, int] = 128,
) -> list[np.ndarray]:
    """A scene cut: ``n_a`` frames of photo ``a`` then ``n_b`` frames of photo ``b``.

    ``b="astronaut_mirror"`` gives the face again, mirrored and shifted, as a second 'person' in a
    different place after the cut.
    """
    first = static_frames(n_a, name=a, size=size)
    if b == "astronaut_mirror":
        face = photo("astronaut_face", size)[:, ::-1]
        second = np.roll(face, face.shape[1] // 4, axis=1)
        second = [np.ascontiguousarray(second) for _ in range(n_b)]
    else:
        second = static_frames(n_b, name=b, size=size)
    return first + second


def numbered_frames(n: int, size: int | tuple[int, int] = 32) -> list[np.ndarray]:
    """``n`` (at most 600) flat frames whose colour encodes their number: read it back with :func:`frame_number`."""
    if n > 600:
        raise ValueError("numbered_frames encodes at most 600 frames")
    w, h = (size, size) if isinstance(size, int) else size
    frames = []
    for i in range(n):
        colour = np.array([20 + 8 * (i % 25), 20 + 8 * (i // 25), 128], np.uint8)
        frames.append(np.broadcast_to(colour, (h, w, 3)).copy())
    return frames


def frame_number(image: np.ndarray) -> int:
    """The number :func:`numbered_frames` gave this (decoded) frame."""
    r, g = image[..., 0].mean(), image[..., 1].mean()
    return int(round((r - 20) / 8)) + 25 * int(round((g - 20) / 8))


def planted_segment(
    frames: Sequence[np.ndarray], start: int, stop: int, *, amplitude: float = 40.0, box=None
) -> list[np.ndarray]:
    """A copy of ``frames`` with forensic.toy.plant's checkerboard in frames ``start``..``stop-1``.

    ``box`` defaults to forensic.toy.ARTIFACT_BOX scaled to the frame (it is given for 256 px).
    """
    out = []
    for i, frame in enumerate(frames):
        if start <= i < stop:
            h, w = frame.shape[:2]
            if box is None:
                from forensic.toy import ARTIFACT_BOX

                x0, y0, x1, y1 = ARTIFACT_BOX
                b = (x0 * w // 256, y0 * h // 256, x1 * w // 256, y1 * h // 256)
            else:
                b = box
            out.append(plant(frame, amplitude=amplitude, box=b))
        else:
            out.append(frame.copy())
    return out


def _rotate_for_storage(frame: np.ndarray, rotate: int) -> np.ndarray:
    # a player turns the stored picture ``rotate`` degrees clockwise; store it turned the other way
    return np.ascontiguousarray(np.rot90(frame, k=(rotate // 90) % 4))


def write_clip(
    path: str | Path,
    frames: Sequence[np.ndarray],
    *,
    fps: float = 10,
    codec: str | None = None,
    rotate: int | None = None,
    times: Sequence[float] | None = None,
    audio: bool = False,
    crf: int | None = None,
    preset: str | None = None,
    keyint: int | None = None,
) -> Path:
    """Encodes RGB ``frames`` into ``path``; the container follows the suffix (.mp4 .mov .mkv .webm .avi .gif).

    Args:
        codec: libx264 (default), mpeg4, libvpx-vp9 (default for .webm), gif (default for .gif).
        rotate: a phone's 'rotate' tag (90, 180, 270: degrees a player turns the picture clockwise).
            ``frames`` are what the viewer should see; they are stored turned the other way with a
            display matrix (the side data phones write), so an upright decode equals ``frames``.
        times: presentation times in seconds, one per frame (a variable frame rate); default i / fps.
        audio: add a 440 Hz AAC (Vorbis/Opus for .webm) track as long as the clip.
        crf, preset: libx264 options (e.g. preset="ultrafast" for big frames).
        keyint: frames between keyframes (the GOP size; seeking lands on keyframes).
    """
    import av

    path = Path(path)
    suffix = path.suffix.lower()
    codec = codec or _DEFAULT_CODEC.get(suffix, "libx264")
    if times is not None and len(times) != len(frames):
        raise ValueError("times needs one time per frame")
    stored = [_rotate_for_storage(f, rotate) if rotate else f for f in frames]
    h, w = stored[0].shape[:2]
    rate = fractions.Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = w, h
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        if times is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
            stream.time_base = fractions.Fraction(1, 1000)
        options = {}
        if codec == "libx264":
            options["threads"] = "1"
            if crf is not None:
                options["crf"] = str(crf)
            if preset:
                options["preset"] = preset
        if options:
            stream.options = options
        if keyint:
            stream.codec_context.gop_size = int(keyint)
        if rotate:
            stream.set_display_rotation(-float(rotate))  # FFmpeg's matrix turns counterclockwise
        audio_stream = None
        if audio:
            audio_codec = "libopus" if suffix == ".webm" else "aac"
            audio_stream = container.add_stream(audio_codec, rate=48000)
            audio_stream.layout = "mono"
        for i, image in enumerate(stored):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame = frame.reformat(format=stream.pix_fmt)
            if times is not None:
                frame.pts = int(round(times[i] * 1000))
                frame.time_base = fractions.Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            seconds = (times[-1] if times is not None else len(frames) / fps) or 1.0
            _write_tone(av, container, audio_stream, seconds)
    return path


def _write_tone(av, container, stream, seconds: float) -> None:
    rate, chunk = 48000, 960
    total = int(seconds * rate)
    for start in range(0, total, chunk):
        t = (np.arange(start, min(start + chunk, total)) / rate).astype(np.float32)
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An audio-only file (AAC in the suffix's container, e.g. .mp4 or .m4a): no video stream."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        _write_tone(av, container, stream, seconds)
    return path


def write_no_frames(path: str | Path, seconds: float = 1.0) -> Path:
    """A clip (use .mkv) with a video track that holds no frame, beside an audio track."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "mono"
        _write_tone(av, container, audio, seconds)
    return path


def write_empty(path: str | Path) -> Path:
    """A 0-byte file."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_text_as_video(path: str | Path) -> Path:
    """A text file with a video suffix."""
    path = Path(path)
    path.write_text("this is not a video, just some notes someone renamed to .mp4\n" * 20)
    return path


def write_truncated(source: str | Path, path: str | Path, keep: float = 0.5) -> Path:
    """A copy of ``source`` cut after ``keep`` (a share) of its bytes, as an interrupted download.

    For an .mp4 the index (moov) must come first for the frames before the cut to survive: make
    the source with .mkv (which streams) or write it with ``faststart``; an .mkv source is simplest.
    """
    path = Path(path)
    data = Path(source).read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path

