"""A clip's timeline: each stream's P(fake) and the vote against time, with the clip's verdict on top.

Drawn from a clip's JSON record (:meth:`forensic.video.VideoReport.to_dict`), so the app, its
HTML report and anything reading the CLI's JSON draw the same figure. Readable on a phone: 4.6 in
wide, no text under :data:`~forensic.viz.style.SMALL_TEXT`, the legend under the axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .style import SMALL_TEXT, STREAM_COLORS, message_figure, new_figure, stream_rgb

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["timeline_figure", "timeline_title"]

#: shading of the frames without the main face, and the colour of failed frames
_NO_FACE_GREY = "0.85"
_FAILED = "#b91c1c"


def timeline_title(record: Mapping[str, Any]) -> str:
    """The figure's title: the clip's verdict word (as the image verdict writes it) and its P(fake)."""
    s = record.get("summary") or {}
    p = s.get("prob_fake")
    head = f"Clip verdict: {s.get('verdict') or 'none'}"
    if p is None:
        return head
    with_face = s.get("frames_with_face") or 0
    over = (f"median of {with_face} frame{'s' if with_face != 1 else ''} with the main face" if with_face
            else f"median of {s.get('frames', 0)} frames")
    return f"{head}\nclip P(fake) {p:.1f} ({over})"


def _spans(times: Sequence[float]) -> list[tuple[float, float]]:
    """Each sampled frame's stretch of the time axis: halfway to its neighbours."""
    if len(times) == 1:
        return [(times[0] - 0.5, times[0] + 0.5)]
    out = []
    for i, t in enumerate(times):
        left = (t - (times[i + 1] - t) / 2) if i == 0 else (times[i - 1] + t) / 2
        right = (t + (t - times[i - 1]) / 2) if i == len(times) - 1 else (t + times[i + 1]) / 2
        out.append((left, right))
    return out


def timeline_figure(record: Mapping[str, Any], *, threshold: float = 0.5, selected: int | None = None,
                    size: tuple[float, float] = (4.6, 3.9)) -> Figure:
    """P(fake) of each stream (its colour) and of the vote (black, on the 0.1 grid) at each sampled frame's time.

    Marked: the threshold (dotted), frames without the main face (grey band, hollow vote marker), the
    explained frames (a star), frames that failed (a red cross at the bottom) and ``selected`` (the
    index of the frame on show: a vertical line). The title is :func:`timeline_title`.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    frames = list(record.get("frames") or [])
    title = timeline_title(record)
    if not frames:
        return message_figure("No frame was sampled from this clip.", title=title, size=size)
    fig = new_figure(*size, layout="constrained")
    ax = fig.subplots()
    times = [float(f["time_s"]) for f in frames]
    ok = [f for f in frames if f.get("prob_fake") is not None]
    spans = _spans(times)
    handles: list[Any] = []

    no_face = [i for i, f in enumerate(frames) if f.get("prob_fake") is not None and not f.get("on_main_track")]
    for i in no_face:
        ax.axvspan(*spans[i], color=_NO_FACE_GREY, lw=0, zorder=0)
    names = [n for n in STREAM_COLORS if any(n in (f.get("streams") or {}) for f in ok)]
    for name in names:
        pts = [(float(f["time_s"]), f["streams"][name]["prob_fake"]) for f in ok if name in (f.get("streams") or {})]
        line, = ax.plot(*zip(*pts), color=stream_rgb(name), marker="o", ms=3.5, lw=1.3, label=name, zorder=2)
        handles.append(line)
    if ok:
        vt = [float(f["time_s"]) for f in ok]
        vp = [float(f["prob_fake"]) for f in ok]
        vote, = ax.plot(vt, vp, color="k", lw=2.2, drawstyle="steps-mid" if len(ok) > 1 else "default",
                        label="vote (0.1 grid)", zorder=3)
        handles.append(vote)
        face = [(t, p) for t, p, f in zip(vt, vp, ok) if f.get("on_main_track")]
        if face:
            ax.plot(*zip(*face), ls="none", marker="o", ms=5, color="k", zorder=4)
        if no_face:
            ax.plot([times[i] for i in no_face], [frames[i]["prob_fake"] for i in no_face], ls="none", marker="o", ms=6,
                    mfc="white", mec="k", mew=1.4, zorder=4)
            handles.append(Patch(color=_NO_FACE_GREY, label="no main face"))
    explained = set(record.get("explained") or [])
    shown = [f for f in ok if f["index"] in explained]
    if shown:
        ax.plot([float(f["time_s"]) for f in shown], [float(f["prob_fake"]) for f in shown], ls="none", marker="*", ms=15,
                mfc="#facc15", mec="k", mew=0.8, zorder=5)
        handles.append(Line2D([], [], ls="none", marker="*", ms=12, mfc="#facc15", mec="k", label="explained"))
    failed = [f for f in frames if f.get("prob_fake") is None]
    if failed:
        ax.plot([float(f["time_s"]) for f in failed], [0.03] * len(failed), ls="none", marker="x", ms=8, mew=2,
                color=_FAILED, zorder=5)
        handles.append(Line2D([], [], ls="none", marker="x", ms=8, mew=2, color=_FAILED, label="failed"))
    if selected is not None and 0 <= selected < len(frames):
        ax.axvline(times[selected], color="#7c3aed", lw=1.5, ls="--", zorder=1)
        handles.append(Line2D([], [], color="#7c3aed", lw=1.5, ls="--", label="frame shown"))

    ax.axhline(threshold, color="0.35", ls=":", lw=1.2, zorder=1)
    # named in the legend, not on the line: a label there covers the curves that cross it
    handles.append(Line2D([], [], color="0.35", ls=":", lw=1.2, label=f"threshold {threshold:g}"))
    ax.set_xlim(spans[0][0], spans[-1][1])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time in the clip (s)", fontsize=SMALL_TEXT + 0.5)
    ax.set_ylabel("P(fake)", fontsize=SMALL_TEXT + 0.5)
    ax.tick_params(labelsize=SMALL_TEXT)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(3, len(handles)), fontsize=SMALL_TEXT,
               frameon=False, handlelength=1.6, columnspacing=1.0)
    fig.suptitle(title, fontsize=11)
    name = (record.get("clip") or {}).get("name") or record.get("source")
    if name:
        ax.set_title(f"Clip: {name}", fontsize=SMALL_TEXT, color="0.3", loc="left")
    return fig
