"""Video: clips in, sampled frames through the image pipeline, a per-frame timeline and a clip verdict out.

Modules: :mod:`~forensic.video.decoding` (probe, sample times, streaming decode with rotation,
scaling and variable frame rates; :class:`VideoError`) and :mod:`~forensic.video.reencode`
(a whole clip re-encoded with libx264 at a CRF, the FF++ and DeeperForensics-1.0 settings).
"""

from .decoding import (
    VIDEO_MAX_PIXELS,
    VIDEO_SUFFIXES,
    ClipInfo,
    Frame,
    FrameStream,
    VideoError,
    is_video_path,
    iter_frames,
    probe,
    sample_times,
)
from .reencode import REENCODE_PRESETS, reencoded

__all__ = [
    "REENCODE_PRESETS",
    "VIDEO_MAX_PIXELS",
    "VIDEO_SUFFIXES",
    "ClipInfo",
    "Frame",
    "FrameStream",
    "VideoError",
    "is_video_path",
    "iter_frames",
    "probe",
    "reencoded",
    "sample_times",
]
