"""A :class:`forensic.report.Report` (or a lab preview, or a sweep) turned into what the page shows.

Pure functions of their inputs: text in Markdown, pictures as RGB arrays or matplotlib figures.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from forensic import viz

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from forensic.faces import FaceResult
    from forensic.report import Report

    from .lab import LabPreview

__all__ = [
    "STREAMS",
    "banner",
    "header_markdown",
    "lab_markdown",
    "verdict_label",
    "verdict_markdown",
    "regions_image",
    "face_only_markdown",
    "relayout",
    "stability_figure",
    "jsonable",
]

#: the streams in display order
STREAMS = ("texture", "face", "fusion")
_BANNER = ("<div style='background:{bg};color:{fg};padding:10px 16px;border-radius:8px;font-size:1.5em;"
           "font-weight:700;line-height:1.3;margin:6px 0'>{text}</div>")
_KIND = {
    "center-crop": "centre crop, native pixels",
    "face-crop": "face crop",
    "face-fallback": "**no face crop: centre crop**",
    "whole-image": "whole image, resized",
}


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
            "The degradation lab below still works, and *Analyze* shows what the face detector finds.",
        ]
    else:
        lines.append(f"Running: `{describe}`")
        if untrained:
            lines += [
                "",
                banner("⚠ UNTRAINED WEIGHTS: every verdict below is random"),
                "",
                "This is the `tiny-random` preset, for trying the tool. Start the app with `--preset paper` "
                "(GPU) or `--weights DIR` for real verdicts.",
            ]
    lines += [
        "",
        "Upload a photo (or paste, or use the webcam), degrade it with the lab's sliders, then *Analyze*: "
        "the ensemble's P(fake) on the paper's 0.1 grid, what each of the three streams said, and where each looked.",
    ]
    return "\n".join(lines)


def lab_markdown(preview: LabPreview) -> str:
    """PSNR, SSIM and the operations applied (with the parameters the seed drew)."""
    if preview.spec is None:
        return "No degradation: the preview is the original. Move a slider or pick a preset."
    psnr = "∞" if not math.isfinite(preview.psnr) else f"{preview.psnr:.2f} dB"
    lines = [f"**PSNR** {psnr} · **SSIM** {preview.ssim:.4f} (vs. the original) · seed {preview.seed}", ""]
    if preview.downscaled:
        (w, h), (big_w, big_h) = preview.computed_size, preview.input_size
        lines += [f"Preview, PSNR and SSIM computed on a {w}x{h} copy of the {big_w}x{big_h} image "
                  "(the lab's size limit); the spec itself applies at any size.", ""]
    lines.append("Applied, in order:")
    for i, op in enumerate(preview.applied, 1):
        params = ", ".join(f"{k}={_short(v)}" for k, v in op["params"].items())
        stage = "" if op.get("stage") in (None, "op") else f" ({op['stage']})"
        lines.append(f"{i}. `{op['name']}`{stage} {params}")
    if not preview.applied:
        lines.append("(nothing: every step was a no-op at these values)")
    return "\n".join(lines)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    return str(v)


def verdict_label(report: Report) -> dict[str, float]:
    """What ``gr.Label`` shows: the ensemble's P(fake) on the grid and its complement."""
    p = float(report.prob_fake)
    return {"fake": p, "real": round(1.0 - p, 1)}


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def verdict_markdown(report: Report) -> str:
    """The verdict, a per-stream table, and every note the user needs to read the result."""
    out = [f"## P(fake) = {report.prob_fake:.1f} → {report.label.upper()}"]
    if report.untrained:
        out.append(banner("⚠ UNTRAINED weights: this verdict is random"))
    out += [
        "",
        "| stream | P(fake) | vote × weight | input | attention entropy | CAM entropy | stability |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in STREAMS:
        s = report.streams.get(name)
        if s is None:
            continue
        title = viz.STREAM_TITLES.get(name, name)
        weight = report.vote.weights.get(name, s.weight)
        abstained = " (abstained)" if name in report.vote.abstained else ""
        entropy = _fmt(s.attention.normalized, 2) if s.attention else "-"
        cam_entropy = _fmt(s.cam_entropy.normalized, 2) if s.cam_entropy else "-"
        out.append(
            f"| {_swatch(name)} {title} | {_fmt(s.prob_fake)} | {s.vote_prob:.1f} × {weight:g}{abstained} "
            f"| {_KIND.get(s.input.kind, s.input.kind)} | {entropy} | {cam_entropy} | {_fmt(s.stability)} |"
        )
    out += ["", "*vote*: each P(fake) rounded to 0.1, averaged with the weights, rounded again. Entropies are divided "
            "by ln N (1 = spread evenly, low = focused). *stability*: cosine between the stream's feature on the "
            "clean and on the degraded image (1 = unchanged). In the regions picture: texture orange, face green, "
            "fusion blue, detected face white."]
    out += ["", *_face_notes(report.face, report)]
    if report.degradation is not None:
        d = report.degradation
        what = d.spec or f"compound:strength={d.compound:g}"
        out.append(f"- **Degradation** `{what}` (seed {d.seed}), PSNR {_fmt(d.psnr, 2)} dB; the streams saw the degraded image.")
    for note in report.image_notes:
        out.append(f"- Image: {note}")
    total = sum(report.timings.values())
    out.append(f"- Took {total:.2f} s ({', '.join(f'{k} {v:.2f}' for k, v in report.timings.items())}) on {report.device}.")
    return "\n".join(out)


def _face_notes(face: FaceResult, report: Report | None) -> list[str]:
    face_stream = None if report is None else report.streams.get("face")
    if face_stream is not None and face_stream.input.kind == "face-fallback":
        # the stream's note starts with the face stage's reason and says what the stream saw instead
        notes = [f"- ⚠ **The face stream fell back ({face.mode})**: {face_stream.input.note}"]
    else:
        icon = "✓" if face.mode == "crop" else "⚠"
        notes = [f"- {icon} **Face ({face.mode})**: {face.reason}"]
    if report is not None:
        for name in STREAMS:
            s = report.streams.get(name)
            if s is not None and s.input.note and s.input.kind != "face-fallback":
                notes.append(f"- {viz.STREAM_TITLES.get(name, name)}: {s.input.note}")
    return notes


def face_only_markdown(face: FaceResult, error: str) -> str:
    """What *Analyze* shows without a detector: the face analysis and why there is no verdict."""
    return "\n".join(
        ["## No verdict: no detector is loaded", "", f"{error}", "", *_face_notes(face, None),
         "", "The image shows the detected face box (white) and, if any, the face crop region (green)."]
    )


def regions_image(report: Report) -> np.ndarray:
    """The analysed image with each stream's region (its colour) and the face box (white)."""
    box = report.face.box
    face_box = None if box is None else (box.x0, box.y0, box.x1, box.y1)
    regions = {n: report.streams[n].input.region for n in STREAMS if n in report.streams}
    return viz.draw_regions(report.image, regions, face_box=face_box)


def relayout(fig: Figure) -> Figure:
    """Re-runs ``tight_layout`` (``viz.similarity_figure`` lays out before its colorbar settles,
    which clips the row labels) and returns the figure."""
    fig.tight_layout()
    return fig


def stability_figure(report: Report) -> Figure:
    """Bars: each stream's clean-vs-degraded feature cosine (or a hint when nothing was degraded)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    names = [n for n in STREAMS if n in report.streams]
    values = [report.streams[n].stability for n in names]
    if all(v is None for v in values):
        ax.text(0.5, 0.5, "No degradation applied:\nmove a lab slider to measure\nclean-vs-degraded stability",
                ha="center", va="center", fontsize=11, transform=ax.transAxes)
        ax.set_axis_off()
    else:
        colors = [np.array(viz.STREAM_COLORS.get(n, (128, 128, 128))) / 255 for n in names]
        bars = ax.bar(names, [np.nan if v is None else v for v in values], color=colors)
        for bar, v in zip(bars, values):
            if v is not None:
                ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=9)
        # cosines sit near 1; start the axis just below the lowest so the differences show
        low = min(v for v in values if v is not None)
        ax.set_ylim(max(-1.0, min(0.9, low - 0.05)), 1.0 + 0.1 * (1.0 - max(-1.0, min(0.9, low - 0.05))))
        ax.set_ylabel("cosine(clean, degraded)")
    ax.set_title("Feature stability under the degradation")
    fig.tight_layout()
    return fig
