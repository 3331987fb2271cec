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
from .reencode import REENCODE_PRESETS, crf_reference, reencoded
from .tracks import Track, link_tracks, main_track
from .summary import ClipSummary, FrameReport, StreamSummary, summarize
from .report import VideoReport
from .analysis import analyze_video, iter_video

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
    "crf_reference",
    "sample_times",
    "Track",
    "link_tracks",
    "main_track",
    "ClipSummary",
    "FrameReport",
    "StreamSummary",
    "summarize",
    "VideoReport",
    "analyze_video",
    "iter_video",
]
