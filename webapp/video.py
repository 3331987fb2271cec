"""The Video tab: a clip in, the timeline, the clip verdict, a frame slider and the report files out.

:func:`video_tab` lays the tab out (inside :func:`webapp.layout.build_page`); :class:`VideoTab` is its
behaviour (``Handlers.video``), wired in ``app.py``:

- ``/analyze_video`` (:meth:`VideoTab.analyze`): a clip, ``fps``, ``max_frames``, ``crf`` (a
  reference preset such as ``ffpp-c23`` or a number 0-51; ``none``), the lab's ``spec`` and ``seed``
  applied to every frame (frame ``i`` with seed ``seed + i``) and ``explain`` (Score-CAM of the
  most suspicious frame) -> two files: the clip's JSON record (``python -m forensic predict``'s,
  :func:`forensic.records.video_record`) and its CSV (one row per frame, then the summary row).
  Files, not a JSON value: ``gradio_client`` takes every dict with a ``"path"`` key in a result for
  a file to download, and the record's ``path`` names the clip. A bad request raises one line.
- the page (:meth:`VideoTab.analyze_in_place`, :meth:`VideoTab.show_frame`): messages in place,
  never an error pill. What the frame slider shows is kept per session as small JPEGs (the
  sampled frames with the streams' regions drawn, at most :data:`FRAME_SIDE` px, and the explained
  frames' overlays), never the decoded frames: a session holds ~30 KB per frame.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from forensic import viz
from forensic.degrade import SpecError, check_seed
from forensic.images import ImageError
from forensic.records import VIDEO_CSV_COLUMNS, csv_rows, video_record
from forensic.video import REENCODE_PRESETS, VIDEO_SUFFIXES, crf_reference

from . import render
from .figures import colour_scale_html
from .files import ScratchDir
from .report_file import Chart, Picture, report_html
from .runtime import on_gpu, on_model_thread, user_error
from .views import status_html

__all__ = ["VideoTab", "VideoView", "video_tab", "VIDEO_API", "VIDEO_PAGE", "FRAME_OUT", "CRF_CHOICES", "MAX_FRAMES",
           "FRAME_SIDE", "CLIP_TYPES", "PLAYABLE", "frames_table_html", "clip_verdict_html"]

STREAMS = render.STREAMS
#: the most frames one request may sample (the library's default); the page starts at 32
MAX_FRAMES = 64
#: the longest side of the frame pictures kept per session and shown under the slider
FRAME_SIDE = 512
#: what the upload accepts (PyAV reads a GIF as a clip too)
CLIP_TYPES = (*VIDEO_SUFFIXES, ".gif")
#: (containers, codecs) a browser's player plays: the player is shown only for these
PLAYABLE = ({"mp4", "mov", "m4v", "webm"}, {"h264", "vp8", "vp9", "av1"})
#: the re-encoding choices: (label, value); a number 0-51 may also be typed
CRF_CHOICES = [("none: as uploaded", "none")] + [
    (f"{name}: H.264 CRF {crf} ({crf_reference(crf)})", name) for name, crf in REENCODE_PRESETS.items()]
#: what each event returns, by component name
VIDEO_API = ("video_json_file", "video_csv")
VIDEO_PAGE = ("video_status", "video_player", "video_timeline", "video_verdict", "video_slider", "video_table", "video_report_html",
              "video_json", *VIDEO_API, "video_state")
FRAME_OUT = ("video_frame", "video_frame_caption", *(f"video_overlay_{n}" for n in STREAMS),
             *(f"video_caption_{n}" for n in STREAMS), "video_timeline")


@dataclass(frozen=True)
class VideoView:
    """What the Video tab shows (fields named as the page's components)."""

    video_status: str = ""
    video_player: Any = None
    video_timeline: Any = None
    video_verdict: str = ""
    video_slider: Any = None
    video_table: str = ""
    video_report_html: Any = None
    video_json: dict | None = None
    video_json_file: Any = None
    video_csv: Any = None
    video_state: dict | None = None


# ------------------------------------------------------------------------------------------------ layout
def video_tab(page: Any, *, ready: bool, start_explain: str, explain_choices: list, example: bool) -> None:
    """The Video tab's components (``page.add``); call inside ``gr.Tab``. ``example``: show the example clip's button."""
    gr.Markdown("A clip is analysed frame by frame: frames sampled at the rate below (spread evenly over the whole clip "
                "when that would give more than *max frames*), the main face followed from frame to frame, each frame "
                "voted on like an image, and the clip's verdict taken from the median of the frames with the main face.")
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            # a file input, not gr.Video: its player toasts "Video not playable" for a clip the browser cannot play
            # (AVI, MKV, a damaged file) although the analysis reads it; the player below shows the clips it can play
            page.add("video", gr.File(label="Clip (mp4, mov, webm, mkv, avi, m4v, gif)", file_types=list(CLIP_TYPES),
                                      type="filepath", height=130, elem_id="video-input"))
            page.add("video_example", gr.Button("Example clip: the astronaut, blended face from 3 s to 5 s (GENERATED)",
                                                size="sm", visible=example, elem_id="video-example"))
            page.add("video_player", gr.Video(label="The clip (when the browser can play it)", interactive=False, visible=False,
                                              height=260, elem_id="video-player"))
        with gr.Column(min_width=300):
            with gr.Row():
                page.add("video_fps", gr.Slider(0.25, 10, value=1, step=0.25, label="Frames sampled per second",
                                                elem_id="video-fps"))
                page.add("video_max_frames", gr.Slider(1, MAX_FRAMES, value=32, step=1, label="Max frames (spread over the clip)",
                                                       elem_id="video-max-frames"))
            page.add("video_crf", gr.Dropdown(CRF_CHOICES, value="none", allow_custom_value=True, elem_id="video-crf",
                                              label="Re-encode the whole clip first (H.264; or type a CRF 0-51)"))
            page.add("video_use_lab", gr.Checkbox(False, label="Apply the lab's degradation to every frame",
                                                  info="The lab's settings above, on each sampled frame (frame i with seed + i), "
                                                       "after any re-encoding.", elem_id="video-use-lab"))
            page.add("video_explain", gr.Radio(explain_choices, value=start_explain if ready else "none", interactive=ready,
                                               label="Explain the most suspicious frame", elem_id="video-explain"))
            page.add("video_btn", gr.Button("Analyze the clip", variant="primary", interactive=ready, elem_id="video-analyze"))
    page.add("video_status", gr.HTML(status_html("Upload a clip or click the example clip: it is analysed at once.", "info"),
                                     elem_id="video-status"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            page.add("video_timeline", gr.Plot(label="Timeline", format="png", show_label=False, elem_id="video-timeline"))
        with gr.Column(scale=2, min_width=300):
            page.add("video_verdict", gr.HTML(elem_id="video-verdict"))
    page.add("video_slider", gr.Slider(0, 1, value=0, step=1, label="Frame on show (0 = the first sampled frame)",
                                       interactive=False, elem_id="video-slider"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            page.add("video_frame", gr.Image(label="The frame and where each stream looked", show_label=False, format="jpeg",
                                             interactive=False, elem_id="video-frame", buttons=["download", "fullscreen"]))
        with gr.Column(scale=3, min_width=300):
            page.add("video_frame_caption", gr.Markdown("Analyse a clip to see its frames here.", elem_id="video-frame-caption",
                                                        elem_classes=["caption"]))
    with gr.Row(equal_height=False):
        for n in STREAMS:
            with gr.Column(min_width=200):
                page.add(f"video_caption_{n}", gr.Markdown(f"**{viz.STREAM_TITLES[n]}**", elem_id=f"video-caption-{n}",
                                                           elem_classes=["caption"]))
                page.add(f"video_overlay_{n}", gr.Image(label=f"{viz.STREAM_TITLES[n]}: Score-CAM", show_label=False,
                                                        format="jpeg", interactive=False, visible=False,
                                                        elem_id=f"video-overlay-{n}"))
    gr.HTML(colour_scale_html(), elem_id="video-colour-scale")
    with gr.Accordion("Every sampled frame (table)", open=False):
        page.add("video_table", gr.HTML(elem_id="video-table"))
    with gr.Row():
        page.add("video_report_html", gr.DownloadButton("Download the clip's report (HTML)", value=None, interactive=False,
                                                        elem_id="video-report-html"))
        page.add("video_json_file", gr.DownloadButton("Download the clip's report (JSON)", value=None, interactive=False,
                                                      elem_id="video-report-json"))
        page.add("video_csv", gr.DownloadButton("Download the frames' table (CSV)", value=None, interactive=False,
                                                elem_id="video-csv"))
    gr.Markdown("The CSV has the columns of `python -m forensic predict --format csv`: one row per sampled frame, then the "
                "clip's summary row.", elem_classes=["note"])
    with gr.Accordion("The clip's report (JSON)", open=False):
        page.add("video_json", gr.JSON(label="Clip report"))
    page.add("video_state", gr.State(None))


# ------------------------------------------------------------------------------------------------ pictures and words
def _jpeg(image: np.ndarray | None) -> bytes | None:
    if image is None:
        return None
    pil = Image.fromarray(np.ascontiguousarray(image))
    if max(pil.size) > FRAME_SIDE:
        pil.thumbnail((FRAME_SIDE, FRAME_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=88)
    return buf.getvalue()


def _unjpeg(data: bytes | None) -> np.ndarray | None:
    return None if data is None else np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _frame_name(frame) -> str:
    """How an overlay caption names a clip's frame (a :class:`~forensic.video.FrameReport`)."""
    return f"frame {frame.index} of the clip, at {frame.time_s:.2f} s"


def _frame_caption(frame: dict, count: int, explained: bool, face_reason: str) -> str:
    head = f"**Frame {frame['index']} of 0-{count - 1}**, at {frame['time_s']:.2f} s"
    if frame.get("prob_fake") is None:
        return f"{head}: ⚠ **could not be analysed**: {frame.get('error')}"
    streams = frame.get("streams") or {}
    each = ", ".join(f"{n} {_p(streams[n]['prob_fake'])}" for n in STREAMS if n in streams)
    face = "The clip's main face is on this frame" if frame.get("on_main_track") else "⚠ **the main face is not on this frame**"
    why = "Score-CAM overlays below" if explained else "not explained (only the most suspicious frame is; see the star)"
    return (f"{head}: frame P(fake) **{frame['prob_fake']:.1f}**, verdict **{frame.get('verdict')}**. Streams: {each}. "
            f"{face} ({face_reason}) · {why}.")


def clip_verdict_html(record: dict, *, threshold: float = 0.5) -> str:
    """The clip's verdict panel: the verdict in the image verdict's words, its P(fake) and rule, the streams'
    medians, the share of frames voting fake, whether streams and frames agree, and the notes."""
    s = record.get("summary") or {}
    word = s.get("verdict") or "none"
    label = s.get("label")
    cls = f"fv-{label}" if label in ("fake", "real") else "fv-none"
    untrained = ("<div class='fv-untrained'>⚠ UNTRAINED weights: the numbers below are random. "
                 "It shows how the tool works, not what the clip is.</div>") if record.get("untrained") else ""
    lines = [f"<div class='fv'>{untrained}<div class='fv-head {cls}'>Clip verdict</div>",
             f"<div class='fv-verdict' title='{html.escape(s.get('verdict_rule') or '', quote=True)}'>Verdict: "
             f"<b>{html.escape(word)}</b></div>"]
    if s.get("prob_fake") is not None:
        lines.append(f"<p>Clip P(fake) = <b>{s['prob_fake']:.1f}</b>. {html.escape(s.get('verdict_reason') or '')}</p>")
        medians = s.get("streams") or {}
        each = ", ".join(f"{n} {m['median']:.2f}" for n, m in medians.items())
        share, counted = s.get("share_fake") or 0.0, s.get("frames_with_face") or s.get("frames") or 0
        sides = "the same side" if s.get("streams_agree") else "both sides"
        lines.append(f"<p>{round(share * counted)} of the {counted} frames counted have P(fake) at or above "
                     f"{threshold:g}: the frames "
                     f"{'agree' if s.get('frames_agree') else 'disagree'} (they agree when at most 20% or at least 80% "
                     f"do). Each stream's median: {each}, on {sides} of the threshold {threshold:g}.</p>")
    else:
        lines.append(f"<p>{html.escape(s.get('verdict_reason') or '')}</p>")
    lines.append(f"<p class='note'>Rule: {html.escape(s.get('rule') or '')}.</p>")
    notes = _notes(record)
    if notes:
        lines.append("<ul class='notes'>" + "".join(f"<li>⚠ {html.escape(n)}</li>" for n in notes) + "</ul>")
    return "".join(lines) + "</div>"


def _notes(record: dict) -> list[str]:
    notes = list(record.get("notes") or [])
    sampling, clip, summary = record.get("sampling") or {}, record.get("clip") or {}, record.get("summary") or {}
    n = len(record.get("frames") or [])
    if sampling.get("spread"):
        notes.append(f"{n} frames spread evenly over the {clip.get('duration_s', 0):.1f} s clip (max frames "
                     f"{sampling.get('max_frames')}; {sampling.get('fps'):g} per second would give more).")
    tracks = record.get("tracks") or []  # two tracks or more: the library's note says so
    if n and summary.get("frames_with_face") == 0 and tracks == []:
        notes.append("No face on any sampled frame.")
    failed = sum(f.get("prob_fake") is None for f in record.get("frames") or [])
    if failed:
        notes.append(f"{failed} frame(s) could not be analysed (see the table).")
    d = record.get("degradation") or {}
    if d.get("reencode"):
        r = d["reencode"]
        notes.append(f"Re-encoded first: H.264 CRF {r.get('crf')} ({r.get('reference')}).")
    if d.get("frames"):
        notes.append(f"Each frame degraded with {d['frames']}.")
    return notes


def frames_table_html(record: dict) -> str:
    """Every sampled frame in a table: time, P(fake), verdict, each stream, main face, explained, error."""
    explained = set(record.get("explained") or [])
    head = "".join(f"<th>{h}</th>" for h in ("frame", "time (s)", "P(fake)", "verdict", *STREAMS, "main face", "note"))
    rows = []
    for f in record.get("frames") or []:
        streams = f.get("streams") or {}
        note = f.get("error") or ("explained" if f["index"] in explained else "")
        cells = [f["index"], f"{f['time_s']:.2f}", "" if f.get("prob_fake") is None else f"{f['prob_fake']:.1f}",
                 f.get("verdict") or "", *(_p((streams.get(n) or {}).get("prob_fake")) if n in streams else "" for n in STREAMS),
                 "yes" if f.get("on_main_track") else "no", note]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<div class='table-scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def _csv(record: dict) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=VIDEO_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(record))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ behaviour
class VideoTab:
    """The Video tab's behaviour around one detector (or none: ``error`` says why)."""

    def __init__(self, detector: Any | None, *, error: str | None, scratch: ScratchDir) -> None:
        self.detector, self.error, self.scratch = detector, error, scratch
        self.threshold = float(detector.config.vote.threshold) if detector is not None else 0.5

        @on_gpu
        def run(path, fps, max_frames, crf, spec, seed, explain, progress):
            return detector.analyze_video(path, fps=fps, max_frames=max_frames, crf=crf, degradation=spec, seed=seed,
                                          explain=explain, explain_frames=1, keep_images=True,  # the slider's pictures
                                          progress=lambda text, frac: progress(frac, desc=text))

        self._run = run

    def analyze(self, video, fps=1.0, max_frames=32, crf="none", spec="", seed=0, explain="none",
                progress=gr.Progress()) -> tuple[str, str]:
        """``/analyze_video``: the paths of the clip's JSON record and of its CSV.

        Raises:
            gr.Error: no detector, no clip, a clip that cannot be read, or a bad setting, in one line.
        """
        record, _, _ = self._analysis(video, fps, max_frames, crf, spec, seed, explain, progress)
        return self._files(record)

    def analyze_in_place(self, video, lab, fps=1.0, max_frames=32, crf="none", use_lab=False, explain="none",
                         progress=gr.Progress()) -> VideoView:
        """The page's analysis: the timeline, the verdict, the slider on the explained frame, the files; never raises."""
        off, hidden = gr.update(value=None, interactive=False), gr.update(value=None, visible=False)
        if not video:
            return VideoView(video_status=status_html("Upload a clip or click the example clip: it is analysed at once.", "info"),
                             video_slider=gr.update(value=0, maximum=1, interactive=False), video_report_html=off,
                             video_json_file=off, video_csv=off, video_player=hidden)
        spec, seed = (lab.spec(), lab.seed) if use_lab else (None, 0)
        try:
            record, state, report = self._analysis(video, fps, max_frames, crf, spec, seed, explain, progress)
        except gr.Error as exc:
            return VideoView(video_status=status_html(f"⚠ **{exc.message}**", "error"),
                             video_slider=gr.update(value=0, maximum=1, interactive=False), video_report_html=off,
                             video_json_file=off, video_csv=off, video_player=hidden)
        stem = Path(record["path"]).stem or "clip"
        chosen = state["chosen"]
        timeline = viz.timeline_figure(record, threshold=self.threshold, selected=chosen)
        verdict = clip_verdict_html(record, threshold=self.threshold)
        table = frames_table_html(record)
        html_path = self.scratch.write(f"{stem}_report.html", self._report(record, report, verdict, table))
        json_path, csv_path = self._files(record)
        n = len(record["frames"])
        explained = f", the most suspicious explained with {record['explain']} Score-CAM" if record["explained"] else ""
        status = status_html(f"✓ {n} frame{'s' if n != 1 else ''} of `{record['clip']['name']}` analysed{explained}. "
                             "Move the slider to see each frame.")
        state["settings"], state["status"] = _settings(lab, fps, max_frames, crf, use_lab, explain), status
        clip = record["clip"]
        playable = clip["container"] in PLAYABLE[0] and clip["codec"] in PLAYABLE[1]
        player = gr.update(value=_path(video), visible=True) if playable else hidden
        return VideoView(video_status=status, video_player=player, video_timeline=timeline, video_verdict=verdict,
                         video_slider=gr.update(value=chosen, minimum=0, maximum=max(n - 1, 1), interactive=n > 1),
                         video_table=table, video_report_html=gr.update(value=str(html_path), interactive=True),
                         video_json=record, video_json_file=gr.update(value=json_path, interactive=True),
                         video_csv=gr.update(value=csv_path, interactive=True), video_state=state)

    def settings_changed(self, video, lab, fps=1.0, max_frames=32, crf="none", use_lab=False, explain="none", state=None):
        """A setting (or, when it is applied, the lab) changed after an analysis: the status says the timeline is out of
        date until the clip is analysed again; back to what was analysed, it is current again. Nothing is recomputed."""
        if not video or not state or "settings" not in state:
            return gr.skip()
        if _settings(lab, fps, max_frames, crf, use_lab, explain) == state["settings"]:
            return state["status"]
        return status_html("⚠ **Out of date**: this timeline was made with other settings (sampling, re-encoding, "
                           "explanations or the lab's degradation on every frame). Press **Analyze the clip** to update it.",
                           "stale")

    def show_frame(self, index, state) -> tuple:
        """The slider moved: that frame with its regions (and overlays when it was explained), and the timeline marking it."""
        if not state:
            return (None, "Analyse a clip to see its frames here.", *(gr.update(value=None, visible=False),) * len(STREAMS),
                    *(f"**{viz.STREAM_TITLES[n]}**" for n in STREAMS), gr.skip())
        frames = state["frames"]
        i = min(max(int(index or 0), 0), len(frames) - 1)
        f = frames[i]
        captions = f.get("overlay_captions") or {n: f"**{viz.STREAM_TITLES[n]}**: Score-CAM only on the explained frame "
                                                     "(the star on the timeline)" for n in STREAMS}
        timeline = viz.timeline_figure(state["record"], threshold=self.threshold, selected=i)
        overlays = [_unjpeg((f.get("overlays") or {}).get(n)) for n in STREAMS]  # shown only where there is one
        return (_unjpeg(f["picture"]), f["caption"], *(gr.update(value=o, visible=o is not None) for o in overlays),
                *(captions.get(n, "") for n in STREAMS), timeline)

    # -------------------------------------------------------------------------------------------- internals
    def _files(self, record: dict) -> tuple[str, str]:
        stem = Path(record["path"]).stem or "clip"
        json_path = self.scratch.write(f"{stem}_report.json", json.dumps(record, indent=2, allow_nan=False))
        return str(json_path), str(self.scratch.write(f"{stem}_frames.csv", _csv(record)))

    def _analysis(self, video, fps, max_frames, crf, spec, seed, explain, progress):
        if self.detector is None:
            raise gr.Error(self.error or "No detector is loaded.", title="No detector loaded", print_exception=False)
        if not video:
            raise gr.Error("Upload a clip first (mp4, mov, webm, mkv or avi), or click the example clip.", title="No clip",
                           print_exception=False)
        path = _path(video)
        try:
            fps, max_frames, crf = _checked_sampling(fps, max_frames, crf)
            seed = check_seed(0 if seed is None else int(seed))
            report = on_model_thread(self._run, path, fps, max_frames, crf, spec or None, seed, explain or "none", progress)
        except (ImageError, SpecError, ValueError) as exc:  # VideoError is an ImageError
            raise user_error(exc) from exc
        record = render.jsonable(video_record(Path(path).name, report, preset=self.detector.preset,
                                              untrained=self.detector.untrained))
        return record, self._state(record, report), report

    def _state(self, record: dict, report) -> dict:
        """What the slider needs, per session: each frame's regions picture and explained overlays as small JPEGs."""
        explained = set(record["explained"])
        frames = []
        for f, fr in zip(record["frames"], report.frames):
            r = fr.report
            entry = {"caption": _frame_caption(f, len(record["frames"]), f["index"] in explained,
                                               r.face.reason if r is not None else ""),
                     "picture": _jpeg(viz.regions_picture(r)) if r is not None and r.image is not None else None}
            if f["index"] in explained and r is not None:
                entry["overlays"] = {n: _jpeg(img) for n, img in viz.stream_overlays(r).items()}
                entry["overlay_captions"] = {n: render.overlay_caption(r, n, on=_frame_name(fr)) for n in STREAMS}
            frames.append(entry)
        chosen = record["explained"][0] if record["explained"] else 0
        return {"frames": frames, "record": record, "chosen": chosen}

    def _report(self, record: dict, report, verdict: str, table: str) -> str:
        pictures = []
        for index in record["explained"]:
            r = report.frame(index).report
            at = f"frame {index} at {report.frame(index).time_s:.2f} s"
            pictures.append(Picture(f"Where each stream looked on the most suspicious {at}", viz.regions_picture(r)))
            pictures += [Picture(render.overlay_caption(r, n, on=_frame_name(report.frame(index))), img)
                         for n, img in viz.stream_overlays(r).items()]
        details = "<h3>Every sampled frame</h3>" + table + (colour_scale_html() if pictures else "")
        chart = Chart("Timeline", viz.timeline_figure(record, threshold=self.threshold),
                      "Each stream's P(fake) and the vote (black, on the 0.1 grid) at each sampled frame; grey bands: "
                      "frames without the main face; star: the explained frame.")
        name = record["clip"]["name"]
        text = report_html(title=f"{name}: {len(record['frames'])} sampled frames", model=self.detector.describe(),
                           untrained=False, vote=verdict, details=details, pictures=pictures, charts=[chart], record=record,
                           md=render.md_inline)  # untrained: the verdict panel says it, about the clip
        return text


def _path(video) -> str:
    """The upload's path (a path, or a file object or dict with one)."""
    if isinstance(video, dict):
        return str(video.get("path") or (video.get("video") or {}).get("path"))
    return str(getattr(video, "path", None) or getattr(video, "name", None) or video)


def _settings(lab, fps, max_frames, crf, use_lab, explain) -> list:
    """What an analysis of the tab depends on, comparable between events (the lab only when it is applied)."""
    def number(x):
        try:
            return round(float(x), 6)
        except (TypeError, ValueError):
            return str(x)

    return [number(fps), number(max_frames), str(crf or "none"), bool(use_lab), str(explain or "none"),
            *((lab.spec(), lab.seed) if use_lab else (None, 0))]


def _checked_sampling(fps, max_frames, crf) -> tuple[float, int, int | None]:
    """fps in (0, 30], max_frames 1..:data:`MAX_FRAMES`, crf a preset name, a number 0-51 or none; else ValueError."""
    try:
        fps = float(fps)
        max_frames = int(max_frames)
    except (TypeError, ValueError):
        raise ValueError(f"fps and max_frames must be numbers, got {fps!r} and {max_frames!r}") from None
    if not 0 < fps <= 30:
        raise ValueError(f"fps must be above 0 and at most 30 frames per second, got {fps:g}")
    if not 1 <= max_frames <= MAX_FRAMES:
        raise ValueError(f"max_frames must be 1 to {MAX_FRAMES} here, got {max_frames} "
                         "(use `python -m forensic predict --max-frames` for more)")
    text = str(crf if crf is not None else "none").strip().lower()
    if text in ("", "none"):
        return fps, max_frames, None
    if text in REENCODE_PRESETS:
        return fps, max_frames, int(REENCODE_PRESETS[text])
    try:
        value = int(float(text))
    except ValueError:
        raise ValueError(f"crf must be none, a CRF 0-51 or one of {', '.join(REENCODE_PRESETS)}; got {crf!r}") from None
    if not 0 <= value <= 51:
        raise ValueError(f"crf must be 0 to 51 (libx264), got {value}")
    return fps, max_frames, value
