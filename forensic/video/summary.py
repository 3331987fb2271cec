"""A clip's verdict from its frames' reports: the documented clip rule.

The rule (:data:`CLIP_RULE`): the clip's P(fake) is the median of the frames' ensemble P(fake)
over the frames that show the main face (the main face track, :mod:`forensic.video.tracks`), put
on the vote's grid (``config.vote.decimals``, rounded half to even like the vote); its verdict is
the image verdict's (:func:`forensic.verdict.verdict_of`): untrained weights give no label, and a
clip with no face on any frame is out of scope unless the vote is asked for anyway
(``vote_without_face``), when the median runs over every analysed frame. A model without a face
stream never searches, so every analysed frame counts.

Beside it: each stream's median P(fake) and share of frames voting fake, the share of frames
whose vote says fake, whether the streams agree (every stream's median on the same side of the
threshold) and whether the frames agree (at most 20% or at least 80% of them fake), and the times
of the most suspicious frames.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..ensemble import round_half_even
from ..report import Report, error_record
from ..verdict import NO_FACE, Verdict, rule_text, verdict_of

__all__ = ["FrameReport", "StreamSummary", "ClipSummary", "summarize", "suspicion_order", "suspicion_key", "CLIP_RULE",
           "AGREE_SHARE", "SUSPICIOUS_FRAMES"]

#: the clip rule, as the reports write it
CLIP_RULE = ("the clip's P(fake) is the median of the frames' ensemble P(fake) over the frames with the main face "
             "(every analysed frame when no frame has one), on the vote's grid; its verdict follows the image rule")
#: the frames agree when at most this share, or at least 1 - this share, of them vote fake
AGREE_SHARE = 0.2
#: how many frames ``most_suspicious_s`` lists
SUSPICIOUS_FRAMES = 3
#: the verdict word when no frame could be analysed
NO_FRAME = "none (no frame analysed)"


@dataclass(frozen=True)
class FrameReport:
    """One sampled frame's analysis.

    Attributes:
        index: the frame's position among the sampled frames (0, 1, ...).
        time_s: its presentation time in the clip.
        report: the image report (None when the frame failed).
        error: the failure, one line (None when analysed).
        on_main_track: whether the main face track has a face on this frame (the face stream
            then saw that face).
    """

    index: int
    time_s: float
    report: Report | None
    error: str | None
    on_main_track: bool

    def to_dict(self) -> dict[str, Any]:
        """``index``, ``time_s``, ``on_main_track``, ``error`` and the report's keys (``Report.to_dict()``)."""
        base = {"index": self.index, "time_s": round(float(self.time_s), 6), "on_main_track": self.on_main_track}
        if self.report is None:
            return {**base, **error_record(None, self.error or "not analysed")}
        return {**base, **self.report.to_dict(), "error": self.error}


@dataclass(frozen=True)
class StreamSummary:
    """One stream over the clip's counted frames: the median of its P(fake) and the share of
    frames whose (grid-rounded) P(fake) is at or above the threshold."""

    median: float
    share_fake: float

    def to_dict(self) -> dict[str, float]:
        return {"median": round(self.median, 6), "share_fake": round(self.share_fake, 6)}


@dataclass(frozen=True)
class ClipSummary:
    """The clip's verdict (:data:`CLIP_RULE`) and what stands beside it.

    Attributes:
        prob_fake: the clip's P(fake) on the vote's grid (None when no frame was analysed).
        verdict: the verdict every output renders.
        frames: frames analysed (failed frames not counted).
        frames_with_face: analysed frames that show the main face.
        counted: the frame indexes the rule ran over.
        share_fake: share of the counted frames whose ensemble P(fake) is at or above the threshold.
        streams: per-stream summaries over the counted frames.
        streams_agree: every stream's median on the same side of the threshold.
        frames_agree: ``share_fake`` at most :data:`AGREE_SHARE` or at least its complement.
        most_suspicious_s: times of the (up to :data:`SUSPICIOUS_FRAMES`) counted frames with the
            highest P(fake), most suspicious first.
    """

    prob_fake: float | None
    verdict: Verdict
    frames: int
    frames_with_face: int
    counted: tuple[int, ...] = ()
    share_fake: float | None = None
    streams: dict[str, StreamSummary] = field(default_factory=dict)
    streams_agree: bool | None = None
    frames_agree: bool | None = None
    most_suspicious_s: tuple[float, ...] = ()

    @property
    def label(self) -> str | None:
        return self.verdict.label

    def to_dict(self) -> dict[str, Any]:
        return {
            "prob_fake": self.prob_fake,
            **self.verdict.to_dict(),
            "rule": CLIP_RULE,
            "frames": self.frames,
            "frames_with_face": self.frames_with_face,
            "share_fake": None if self.share_fake is None else round(self.share_fake, 6),
            "streams": {name: s.to_dict() for name, s in self.streams.items()},
            "streams_agree": self.streams_agree,
            "frames_agree": self.frames_agree,
            "most_suspicious_s": [round(t, 6) for t in self.most_suspicious_s],
        }


def suspicion_key(frame: FrameReport) -> tuple[float, float, float, int]:
    """Sorts analysed frames most suspicious first: by ensemble P(fake), then the vote's mean before
    rounding, then the mean of the streams' P(fake) (the grid ties often), then time."""
    r = frame.report
    raw = statistics.fmean(s.prob_fake for s in r.streams.values()) if r.streams else 0.0
    mean = r.vote.mean if r.vote.mean == r.vote.mean else 0.0  # NaN when unset
    return (-r.prob_fake, -mean, -raw, frame.index)


def suspicion_order(frames: Sequence[FrameReport]) -> list[FrameReport]:
    """The analysed frames, most suspicious first (:func:`suspicion_key`)."""
    return sorted((f for f in frames if f.report is not None), key=suspicion_key)


def _median_on_grid(values: Sequence[float], decimals: int) -> float:
    exact = statistics.median(Decimal(repr(float(v))) for v in values)  # the grid's decimals, no float halves
    return round_half_even(float(exact), decimals)


def summarize(
    frames: Sequence[FrameReport],
    *,
    threshold: float,
    decimals: int,
    untrained: bool,
    searches_faces: bool,
    vote_without_face: bool = False,
) -> ClipSummary:
    """The clip's summary by :data:`CLIP_RULE`.

    Args:
        frames: every sampled frame's report (failed frames are skipped).
        threshold: the vote's threshold (``config.vote.threshold``).
        decimals: the vote's grid (``config.vote.decimals``).
        untrained: the weights are untrained: no label.
        searches_faces: the model has a face stream, so faces were searched for.
        vote_without_face: give the vote even when no frame shows a face.
    """
    analysed = [f for f in frames if f.report is not None]
    with_face = [f for f in analysed if f.on_main_track]
    if not analysed:
        reason = "No frame of the clip could be analysed (see each frame's error)."
        return ClipSummary(None, Verdict(None, NO_FRAME, reason, rule_text(threshold)), 0, 0)
    no_face = searches_faces and not with_face
    counted = with_face if searches_faces and with_face else analysed
    prob = _median_on_grid([f.report.prob_fake for f in counted], decimals)
    verdict = verdict_of(prob, threshold=threshold, untrained=untrained, no_face=no_face, vote_without_face=vote_without_face)
    if verdict.word == NO_FACE:
        verdict = Verdict(None, NO_FACE, verdict.reason.replace("No face was found", "No face was found on any frame"),
                          verdict.rule)
    elif not untrained and not no_face:
        where = "frames with the main face" if searches_faces else "frames"
        verdict = Verdict(verdict.label, verdict.word,
                          f"{verdict.reason.rstrip('.')} (the median over {len(counted)} {where}).", verdict.rule)
    share = sum(f.report.prob_fake >= threshold - 1e-9 for f in counted) / len(counted)
    names = list(counted[0].report.streams)
    streams = {}
    for name in names:
        values = [f.report.streams[name] for f in counted if name in f.report.streams]
        streams[name] = StreamSummary(statistics.median(s.prob_fake for s in values),
                                      sum(s.vote_prob >= threshold - 1e-9 for s in values) / len(values))
    sides = {s.median >= threshold for s in streams.values()}
    top = suspicion_order(counted)[:SUSPICIOUS_FRAMES]
    return ClipSummary(
        prob_fake=prob,
        verdict=verdict,
        frames=len(analysed),
        frames_with_face=len(with_face),
        counted=tuple(f.index for f in counted),
        share_fake=share,
        streams=streams,
        streams_agree=len(sides) <= 1,
        frames_agree=share <= AGREE_SHARE + 1e-9 or share >= 1.0 - AGREE_SHARE - 1e-9,
        most_suspicious_s=tuple(float(f.time_s) for f in top),
    )
