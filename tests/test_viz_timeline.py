"""forensic.viz.timeline: a clip's timeline from its JSON record (no model needed)."""

from __future__ import annotations

import pytest

from forensic.viz import timeline_figure, timeline_title
from forensic.viz.style import SMALL_TEXT


def _frame(i: float, p: float | None, *, face: bool = True, error: str | None = None) -> dict:
    streams = {} if p is None else {n: {"prob_fake": min(1.0, p + d)} for n, d in (("texture", -0.1), ("face", 0.0), ("fusion", 0.1))}
    return {"index": int(i), "time_s": float(i), "on_main_track": face, "prob_fake": p, "streams": streams, "error": error,
            "verdict": None if p is None else ("fake" if p >= 0.5 else "real")}


def _record(frames: list[dict], *, verdict: str = "fake", explained=(3,)) -> dict:
    return {"kind": "video", "clip": {"name": "clip.mp4"}, "explained": list(explained), "frames": frames,
            "summary": {"prob_fake": 0.6, "verdict": verdict, "frames": len(frames),
                        "frames_with_face": sum(f["on_main_track"] for f in frames)}}


def _texts(fig) -> list:
    return [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize")) if t.get_text().strip()]


def test_the_title_says_the_clip_verdict_in_the_image_verdict_words():
    record = _record([_frame(i, 0.6) for i in range(5)], verdict="fake (tie at 0.5)")
    assert timeline_title(record).splitlines() == ["Clip verdict: fake (tie at 0.5)",
                                                   "clip P(fake) 0.6 (median of 5 frames with the main face)"]
    fig = timeline_figure(record)
    assert fig._suptitle.get_text() == timeline_title(record)


def test_marks_no_face_explained_failed_and_the_frame_shown_and_stays_readable():
    frames = [_frame(0, 0.3), _frame(1, 0.4, face=False), _frame(2, None, error="decoding stopped"), _frame(3, 0.8), _frame(4, 0.5)]
    fig = timeline_figure(_record(frames), selected=1)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["texture", "face", "fusion", "vote (0.1 grid)", "no main face", "explained", "failed", "frame shown",
                      "threshold 0.5"]
    ax = fig.axes[0]
    assert ax.get_ylim() == pytest.approx((0, 1.02))
    assert not ax.texts  # the threshold is named in the legend, never on the curves it would cover
    sizes = [t.get_fontsize() for t in _texts(fig)]
    assert sizes and min(sizes) >= SMALL_TEXT - 1e-9  # nothing under the phone bound
    vote = next(line for line in ax.get_lines() if line.get_label() == "vote (0.1 grid)")
    assert list(vote.get_xdata()) == [0.0, 1.0, 3.0, 4.0]  # the failed frame has no vote


def test_one_frame_and_no_frame():
    fig = timeline_figure(_record([_frame(0, 0.7)], explained=()))
    assert fig.axes[0].get_xlim()[0] < 0 < fig.axes[0].get_xlim()[1]
    empty = timeline_figure(_record([], explained=()))
    assert "No frame was sampled" in " ".join(t.get_text() for t in _texts(empty))
