"""Real video compression: a whole clip re-encoded with libx264 at a constant rate factor.

The references compressed their videos with ``ffmpeg -c:v libx264 -crf N`` and the encoder's
defaults; :func:`forensic.codecs.h264_encoder_options` gives exactly those options (plus one
thread, so the bytes are the same on every machine), shared with the stills' ``h264`` degradation.
The CRFs named after the references (:data:`REENCODE_PRESETS`):

- FaceForensics++ (Rossler et al., 2019): ``c23`` = CRF 23 ("high quality"), ``c40`` = CRF 40
  ("low quality");
- DeeperForensics-1.0 (Jiang et al., 2020), the "video compression" distortion at levels 1-5:
  CRF 30, 32, 35, 38, 40.

Unlike the per-frame ``h264`` degradation (one intra frame per still), this re-encodes the clip
as a clip: P- and B-frames with motion compensation, at the clip's frame rate and time stamps.

What is kept and what is not: every frame with its presentation time (variable frame rates
stay variable), the rotation metadata; the audio is dropped. Pixels go out as ``yuv420p``; a
clip with an odd width or height loses its last column or row (4:2:0 needs even sides), and a
clip over :data:`forensic.video.decoding.VIDEO_MAX_PIXELS` is scaled down to it first (the
analysis never sees more). A clip damaged partway is re-encoded up to the damage.

Cost: frames stream from decoder to encoder one at a time (bounded memory), single-threaded
x264 at its ``medium`` preset: about real time for 720p at 25 fps on one core, so minutes for a
long 1080p clip.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

from forensic.codecs import h264_encoder_options
from forensic.degrade.ops.deeperforensics import DF_LEVELS

from .decoding import VIDEO_MAX_PIXELS, VideoError, probe

__all__ = ["REENCODE_PRESETS", "reencoded", "crf_reference"]

#: name -> CRF, the references' settings (see the module docstring), named as the still presets
#: of :data:`forensic.degrade.DEGRADATION_PRESETS`; DeeperForensics' levels come from its table
REENCODE_PRESETS: Mapping[str, int] = MappingProxyType(
    {"ffpp-c23": 23, "ffpp-c40": 40}
    | {f"df-compress-{level}": int(crf) for level, crf in enumerate(DF_LEVELS["compress"], start=1)}
)



def crf_reference(crf: int) -> str:
    """The references a CRF reproduces, in words (from :data:`REENCODE_PRESETS`), or ``"no reference preset"``."""
    words = []
    for name, value in REENCODE_PRESETS.items():
        if value == int(crf):
            level = name.rsplit("-", 1)[1]
            words.append(f"FaceForensics++ {level}" if name.startswith("ffpp-")
                         else f"DeeperForensics-1.0 video compression CRF {value}")
    return "; ".join(words) or "no reference preset"


@contextmanager
def reencoded(path: str | os.PathLike, crf: int, *, max_pixels: int = VIDEO_MAX_PIXELS) -> Iterator[Path]:
    """The clip at ``path`` re-encoded with libx264 at ``crf``, as a temporary .mkv deleted on exit.

    Raises:
        VideoError: the clip cannot be read (see :func:`forensic.video.probe`), or no frame could be re-encoded.
        ValueError: a CRF outside 0..51.
    """
    options = h264_encoder_options(crf)  # checks the CRF before any work
    info = probe(path)  # bad input fails here with the decoder's one-line message
    with tempfile.TemporaryDirectory(prefix="forensic-reencode-") as folder:
        out = Path(folder) / f"{Path(path).stem}-crf{int(crf)}.mkv"
        written = _reencode(Path(path), out, options, max_pixels)
        if not written:
            raise VideoError(f"The clip {info.name!r} gave no frame to re-encode: it is damaged; copy it again.")
        yield out


def _reencode(source: Path, out: Path, options: dict[str, str], max_pixels: int) -> int:
    import av

    written = 0
    # bitexact: no random Matroska segment id or encoder version string, so the same clip gives the same bytes
    with av.open(str(source)) as src, av.open(str(out), "w", container_options={"fflags": "+bitexact"}) as dst:
        in_stream = src.streams.video[0]
        in_stream.thread_type = "AUTO"
        time_base = in_stream.time_base
        out_stream = None
        last_pts = None
        try:
            for packet in src.demux(in_stream):
                for picture in packet.decode():
                    if out_stream is None:
                        out_stream, size = _open_output(dst, in_stream, picture, options, max_pixels)
                    pts = picture.pts if picture.pts is not None else (last_pts + 1 if last_pts is not None else 0)
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1  # the encoder needs strictly increasing times
                    frame = picture.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="AREA")
                    frame.pts, frame.time_base = pts, time_base
                    last_pts = pts
                    for out_packet in out_stream.encode(frame):
                        dst.mux(out_packet)
                    written += 1
        except (av.FFmpegError, EOFError):
            pass  # damaged from here on: keep what was re-encoded (the decoder reports the damage)
        if out_stream is not None:
            for out_packet in out_stream.encode(None):
                dst.mux(out_packet)
    return written


def _open_output(dst, in_stream, picture, options: dict[str, str], max_pixels: int):
    w, h = picture.width, picture.height
    if w * h > max_pixels:
        scale = math.sqrt(max_pixels / (w * h))
        w, h = max(2, int(w * scale)), max(2, int(h * scale))
    size = (w - w % 2, h - h % 2)
    rate = in_stream.average_rate or in_stream.guessed_rate or 25
    stream = dst.add_stream("libx264", rate=rate)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = in_stream.time_base
    stream.time_base = in_stream.time_base
    stream.thread_count = 1
    stream.options = options
    rotation = getattr(picture, "rotation", 0) or 0
    if rotation:
        stream.set_display_rotation(float(rotation))
    return stream, size
