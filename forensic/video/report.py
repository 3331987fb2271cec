"""What a clip's analysis returns: :class:`VideoReport`; ``to_dict()`` is JSON-able (the contract
of ``python -m forensic predict`` for a clip: one record per clip with its frames and summary)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..verdict import Verdict
from .summary import ClipSummary, FrameReport
from .tracks import Track

__all__ = ["VideoReport", "track_records"]

def track_records(tracks: Sequence[Track], main: Track | None, times: Sequence[float]) -> list[dict[str, Any]]:
    """The tracks as ``to_dict()`` writes them: id, first and last time (s), frame count, main or not."""
    return [{"id": t.id, "first_s": round(float(times[t.first]), 6), "last_s": round(float(times[t.last]), 6),
             "frames": t.length, "main": main is not None and t.id == main.id} for t in tracks]


@dataclass(frozen=True)
class VideoReport:
    """The analysis of one clip.

    Attributes:
        source: the clip's name (its path).
        clip: what :func:`forensic.video.probe` read (a :class:`~forensic.video.ClipInfo`).
        sampling: ``fps``, ``max_frames``, ``times_s`` (each sampled frame's presentation time)
            and ``spread`` (True when ``max_frames`` spread the frames over the whole clip).
        degradation: what was applied (``{"reencode": ..., "frames": ...}``), or None.
        tracks: the face tracks (:func:`forensic.video.link_tracks`).
        main_track: the track the face stream followed, or None.
        notes: sentences for the reader (a face that changes person, decoding stopped early ...).
        frames: every sampled frame's report, in time order.
        summary: the clip's verdict (:func:`forensic.video.summarize`).
        explained: indexes of the frames analysed again with an explanation method.
        explain: that method (``"none"`` when nothing was explained).
    """

    source: str
    clip: Any
    sampling: dict[str, Any]
    degradation: dict[str, Any] | None
    tracks: tuple[Track, ...]
    notes: list[str]
    frames: list[FrameReport]
    summary: ClipSummary
    explained: list[int] = field(default_factory=list)
    main_track: Track | None = None
    explain: str = "none"

    @property
    def verdict(self) -> Verdict:
        """The clip's verdict (the same words as an image's)."""
        return self.summary.verdict

    @property
    def label(self) -> str | None:
        return self.summary.label

    @property
    def prob_fake(self) -> float | None:
        return self.summary.prob_fake

    def frame(self, index: int) -> FrameReport:
        """The report of sampled frame ``index``."""
        for f in self.frames:
            if f.index == index:
                return f
        raise IndexError(f"no sampled frame {index}; this clip has frames 0..{len(self.frames) - 1}")

    def to_dict(self) -> dict[str, Any]:
        """The clip's JSON record (README, "Video"): source, kind, clip, sampling, degradation,
        tracks, notes, summary, frames (each a ``Report.to_dict()`` with index, time and error)."""
        times = list(self.sampling.get("times_s", [])) or [f.time_s for f in self.frames]
        return {
            "source": self.source,
            "kind": "video",
            "clip": self.clip.to_dict() if hasattr(self.clip, "to_dict") else dict(self.clip),
            "sampling": dict(self.sampling),
            "degradation": self.degradation,
            "tracks": track_records(self.tracks, self.main_track, times),
            "notes": list(self.notes),
            "summary": self.summary.to_dict(),
            "explain": self.explain,
            "explained": list(self.explained),
            "frames": [f.to_dict() for f in self.frames],
        }
