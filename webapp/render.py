"""A :class:`forensic.report.Report` (or a lab preview) turned into the page's text.

Pure functions of their inputs, returning Markdown or HTML. Every result says which image it
describes (:func:`subject`); the figures live in :mod:`webapp.figures`, the vote in :mod:`webapp.vote`.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from forensic import viz
from forensic.config import STREAM_NAMES
from forensic.limits import TITLE as LIMITS_TITLE

if TYPE_CHECKING:  # pragma: no cover
    from forensic.faces import FaceResult
    from forensic.limits import Limits
    from forensic.report import Report, StreamReport

    from .lab import LabPreview

__all__ = [
    "STREAMS",
    "banner",
    "header_markdown",
    "lab_markdown",
    "subject",
    "describe_lab",
    "details_html",
    "overlay_caption",
    "regions_caption",
    "fidelity",
    "face_only_html",
    "jsonable",
    "md_inline",
    "Waited",
    "limits_html",
]

#: the streams in display order
STREAMS = STREAM_NAMES
_BANNER = ("<div style='background:{bg};color:{fg};padding:10px 16px;border-radius:8px;font-size:1.5em;"
           "font-weight:700;line-height:1.3;margin:6px 0'>{text}</div>")
_KIND = {
    "center-crop": "centre crop, native pixels",
    "face-crop": "face crop",
    "face-fallback": "<b>no face crop: centre crop</b>",
    "whole-image": "whole image, resized",
}
#: longest spec shown in a caption or a figure before it is cut with "..."
_SPEC_CHARS = 80


class Waited(NamedTuple):
    """How long one analysis took on the server: ``total`` seconds from receiving the request to the result (reading
    the upload, scaled down from ``scaled_from`` (width x height) if it was larger, and drawing the figures included)."""

    total: float
    scaled_from: tuple[int, int] | None = None


def _swatch(name: str) -> str:
    r, g, b = viz.STREAM_COLORS.get(name, (128, 128, 128))
    return f"<span style='color:#{r:02x}{g:02x}{b:02x}'>■</span>"


def banner(text: str, *, error: bool = False) -> str:
    """A block of large letters (inline styles: they survive Gradio's Markdown sanitiser, unlike classes)."""
    bg, fg = ("#fecaca", "#7f1d1d") if error else ("#fde68a", "#78350f")
    return _BANNER.format(bg=bg, fg=fg, text=text)


def jsonable(value: Any) -> Any:
    """A deep copy that ``json`` accepts (numpy scalars -> float/int, tuples -> lists, NaN -> None)."""

    def default(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
        return str(x)

    text = json.dumps(value, default=default, allow_nan=True)
    return json.loads(text, parse_constant=lambda _: None)


def header_markdown(describe: str | None, *, untrained: bool, error: str | None) -> str:
    """The page header: what runs, and a loud warning when the verdicts mean nothing."""
    lines = ["# Robust deepfake forensics lab", ""]
    if error is not None:
        lines += [
            banner("⚠ NO DETECTOR LOADED: the model weights are unavailable", error=True),
            "",
            f"**Why:** {error}",
            "",
            "The degradation lab below still works, and *Analyze* shows what the face detector finds. "
            "Controls that need the detector are switched off and say so.",
        ]
    else:
        lines.append(f"Running: `{describe}`")
        if untrained:
            lines += [
                "",
                banner("⚠ UNTRAINED WEIGHTS: every number below is random"),
                "",
                "This is the `tiny-random` preset, for trying the tool: it gives no verdicts. Start the app with "
                "`--preset paper` (GPU) or `--weights DIR` for a trained detector.",
            ]
    lines += [
        "",
        "Upload a photo (or paste, or use the webcam), degrade it with the lab's sliders, then *Analyze*: "
        "the ensemble's vote on the paper's 0.1 grid, what each of the three streams said, and where each looked.",
    ]
    return "\n".join(lines)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)


def lab_markdown(preview: LabPreview) -> str:
    """PSNR, SSIM and the operations applied (with the parameters the seed drew), in a few lines."""
    if preview.spec is None:
        return "No degradation: the preview is the original. Move a slider or pick a preset."
    psnr = "∞" if not math.isfinite(preview.psnr) else f"{preview.psnr:.2f} dB"
    lines = [f"**PSNR** {psnr} · **SSIM** {preview.ssim:.4f} (vs. the original) · seed {preview.seed}"]
    if preview.downscaled:
        (w, h), (big_w, big_h) = preview.computed_size, preview.input_size
        lines += ["", f"Preview, PSNR and SSIM computed on a {w}x{h} copy of the {big_w}x{big_h} image "
                  "(the lab's size limit); the spec itself applies at any size."]
    steps = []
    for i, op in enumerate(preview.applied, 1):
        params = ", ".join(f"{k}={_short(v)}" for k, v in op["params"].items())
        stage = "" if op.get("stage") in (None, "op") else f" ({op['stage']})"
        steps.append(f"{i}. `{op['name']}`{stage} {params}")
    applied = " → ".join(steps) if steps else "nothing: every step was a no-op at these values"
    return "\n".join([*lines, "", f"Applied, in order: {applied}"])


def _cut(spec: str) -> str:
    return spec if len(spec) <= _SPEC_CHARS else spec[: _SPEC_CHARS - 3] + "..."


def describe_lab(spec: str | None, seed: int, *, markdown: bool = True) -> str:
    """Which image a result describes: ``the clean upload`` or ``the degraded upload (spec, seed N)``."""
    if spec is None:
        return "the clean upload (no degradation)"
    shown = f"`{_cut(spec)}`" if markdown else _cut(spec)
    return f"the degraded upload ({shown}, seed {seed})"


def subject(report: Report, *, markdown: bool = True) -> str:
    """Which image ``report`` describes, in the words of :func:`describe_lab`."""
    d = report.degradation
    if d is None:
        return describe_lab(None, 0, markdown=markdown)
    return describe_lab(d.spec or f"compound:strength={d.compound:g}", d.seed, markdown=markdown)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def fidelity(stream: StreamReport):
    """A fast map's :class:`~forensic.explain.CamFidelity` (None for an exact map or no map)."""
    return getattr(stream.cam, "fidelity", None) if stream.cam is not None else None


def details_html(report: Report, *, waited: Waited | None = None) -> str:
    """The per-stream table (words never broken: see the page's CSS) and every note the user needs; with ``waited``,
    the time the user waited (decoding and scaling the upload included) next to the detector's own time."""
    rows = []
    for name in STREAMS:
        s = report.streams.get(name)
        if s is None:
            continue
        weight = report.vote.weights.get(name, s.weight)
        abstained = " (abstained)" if name in report.vote.abstained else ""
        entropy = _fmt(s.attention.normalized, 2) if s.attention else "-"
        cam_entropy = _fmt(s.cam_entropy.normalized, 2) if s.cam_entropy else "off" if s.cam is None else "-"
        rows.append(
            f"<tr><td title='{viz.STREAM_TITLES.get(name, name)}'>{_swatch(name)} {name}</td><td>{_fmt(s.prob_fake)}</td>"
            f"<td>{s.vote_prob:.1f} × {weight:g}{abstained}</td><td class='wrap'>{_KIND.get(s.input.kind, s.input.kind)}</td>"
            f"<td>{entropy}</td><td>{cam_entropy}</td><td>{_fmt(s.stability)}</td></tr>"
        )
    table = (
        "<div class='table-scroll'><table class='streams'><thead><tr><th>stream</th><th>P(fake)</th><th>vote<br>× weight</th>"
        "<th>what it saw</th><th>attention<br>spread</th><th>Score-CAM<br>spread</th><th>stability</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    lines = [
        table,
        "<p class='note'><b>What am I looking at?</b> <i>P(fake)</i>: each stream's calibrated probability. "
        "<i>vote × weight</i>: that probability rounded to 0.1, and its weight in the vote. "
        "<i>spread</i>: entropy / ln N, how spread out the attention is (1 = evenly everywhere, low = focused on a few spots). "
        "<i>stability</i>: cosine between the stream's features on the clean and on the degraded image (1 = unchanged).</p>",
        "<ul class='notes'>",
        *(f"<li>{md_inline(n)}</li>" for n in _face_notes(report.face, report)),
    ]
    if report.degradation is not None:
        d = report.degradation
        lines.append(f"<li><b>Degradation</b> {_md_code('`' + (d.spec or f'compound:strength={d.compound:g}') + '`')} "
                     f"(seed {d.seed}), PSNR {_fmt(d.psnr, 2)} dB: the streams saw the degraded image.</li>")
    for image_note in report.image_notes:
        lines.append(f"<li>Image: {html.escape(image_note)}</li>")
    total = sum(report.timings.values())
    steps = ", ".join(f"{k} {v:.2f}" for k, v in report.timings.items())
    took = f"The detector took {total:.2f} s on {report.device} ({steps})"
    if waited is not None:
        size = " the upload," if waited.scaled_from is None else f" and scaling down the {waited.scaled_from[0]}x{waited.scaled_from[1]} upload,"
        took += (f". The whole analysis took {max(waited.total, total):.2f} s on the server (reading{size} the detector, "
                 "drawing the figures); the status line says how long you waited in all, sending the image included")
    lines.append(f"<li>{took}.</li>")
    lines.append("</ul>")
    return "\n".join(lines)


def _md_code(text: str) -> str:
    """Escapes ``text`` and turns its `backticks` into <code> (for HTML built from Markdown-ish strings)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def md_inline(text: str) -> str:
    """Escapes ``text`` and renders its `code` and **bold** marks as HTML."""
    parts = _md_code(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _face_notes(face: FaceResult, report: Report | None) -> list[str]:
    face_stream = None if report is None else report.streams.get("face")
    if face_stream is not None and face_stream.input.kind == "face-fallback":
        # the stream's note starts with the face stage's reason and says what the stream saw instead
        notes = [f"⚠ **The face stream fell back ({face.mode})**: {face_stream.input.note}"]
    else:
        icon = "✓" if face.mode == "crop" else "⚠"
        notes = [f"{icon} **Face ({face.mode})**: {face.reason}"]
    if report is not None:
        for name in STREAMS:
            s = report.streams.get(name)
            if s is not None and s.input.note and s.input.kind != "face-fallback":
                notes.append(f"{viz.STREAM_TITLES.get(name, name)}: {s.input.note}")
    return notes


def overlay_caption(report: Report, name: str, *, on: str | None = None) -> str:
    """The title of one stream's overlay: method (and fidelity), what the stream saw, which image
    (``on``: how to name it, e.g. a clip's frame; default :func:`subject`)."""
    s = report.streams.get(name)
    title = f"**{viz.STREAM_TITLES.get(name, name)}**"
    if s is None:
        return f"{title}: not in this model"
    saw = {"center-crop": "its centre crop (native pixels)", "face-crop": "the face crop",
           "whole-image": "the whole image, resized"}.get(s.input.kind, s.input.kind)
    if s.input.kind == "face-fallback":
        saw = "⚠ **fell back: no usable face crop**, so it saw the centre crop"
    if s.cam is None:
        return f"{title}: explanations are off (choose a Score-CAM method above, then Analyze). Saw {saw}."
    from forensic.explain import method_labels

    method = {name: label for label, name in method_labels()}.get(s.cam.method, f"{s.cam.method} Score-CAM")
    fid = fidelity(s)
    if fid is not None and fid.level == "exact":
        method += f", finished exactly{fid.why_exact}"
    elif fid is not None:
        advice = {"high": "", "fair": ": check with adaptive or exact", "low": ": choose adaptive or exact for this map"}.get(fid.level, "")
        method += f", estimated fidelity {fid.expected_pearson:.2f} ({fid.level}{advice})"
    return f"{title} · {method} · saw {saw} · on {on or subject(report)}"


def regions_caption(report: Report | None, *, face_only: bool = False) -> str:
    """The title above the regions picture."""
    if report is None:
        return ("**Where each stream would look** (no detector: only the face detector ran). White dashed: the detected "
                "face; green: the face stream's crop." if face_only else "**Where each stream looked**")
    return (f"**Where each stream looked**, on {subject(report)}: each coloured box is what one stream saw "
            "(labelled in its colour); white dashed: the detected face.")


def face_only_html(face: FaceResult) -> str:
    """What *Analyze* shows without a detector, under the vote panel: what the face detector found."""
    notes = "".join(f"<li>{md_inline(n)}</li>" for n in _face_notes(face, None))
    return (f"<ul class='notes'>{notes}</ul><p class='note'>The picture shows the detected face (white, dashed) and, "
            "when the face is large enough for a face crop, the crop the face stream would see (green).</p>")


#: the box's look, inline (the page and the report file share it; no class of the shared style sheet needed)
_LIMITS_BOX = "border:2px solid #6b7280;border-radius:8px;padding:8px 12px;margin:8px 0;background:#f9fafb;color:#111827"


def limits_html(limits: Limits) -> str:
    """The box "What this can and cannot tell you" (:mod:`forensic.limits`): the page shows it under the vote and
    the report file under its vote, the same HTML. Short: the weights' facts, "evidence, not proof" and the limits
    that apply to the image analysed (saying so) are open; the method's other limits are one click away."""
    facts = [("Trained on", limits.trained_on), ("Validation", limits.validation), ("Calibration", limits.calibration)]
    items = [f"<li><b>{topic}:</b> {md_inline(text)}</li>" for topic, text in facts]
    shown = [x for x in limits.limits if x.here or x is limits.limits[0]]  # the first is "Evidence, not proof"
    rest = [x for x in limits.limits if x not in shown]

    def item(x) -> str:
        here = f" <b>⚠ Here: {html.escape(x.here)}</b>" if x.here else ""
        cls = " class='fl-here'" if x.here else ""
        return f"<li{cls}><b>{html.escape(x.topic)}:</b> {md_inline(x.text)}{here}</li>"

    items += [item(x) for x in shown]
    more = (f"<details style='margin-top:4px'><summary>The method's other limits ({len(rest)})</summary>"
            f"<ul style='margin:4px 0 0 1.1em;padding:0'>{''.join(item(x) for x in rest)}</ul></details>" if rest else "")
    return (f"<div class='fl' style='{_LIMITS_BOX}'><div style='font-weight:700;font-size:1.05em'>{LIMITS_TITLE}</div>"
            f"<ul style='margin:4px 0 0 1.1em;padding:0'>{''.join(items)}</ul>{more}</div>")
