"""Pictures shared by the app, the CLI and the analysis package: overlays, regions and figures.

Overlays are plain RGB uint8 arrays (cv2 + a matplotlib colormap); figures are matplotlib
``Figure`` objects made with the Agg backend (no display needed), turned into arrays or files by
:func:`figure_to_array` / ``fig.savefig``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .faces import CropRegion
    from .report import Report

__all__ = [
    "STREAM_COLORS",
    "STREAM_TITLES",
    "ENTROPY_LABEL",
    "new_figure",
    "stream_rgb",
    "set_titles",
    "overlay",
    "draw_regions",
    "stream_overlays",
    "figure_to_array",
    "cam_caption",
    "explanation_figure",
    "entropy_figure",
    "similarity_figure",
    "similarity_heatmap",
    "sweep_figure",
]

#: one colour per stream, used everywhere (RGB)
STREAM_COLORS = {"texture": (255, 140, 0), "face": (40, 180, 90), "fusion": (60, 120, 230)}
STREAM_TITLES = {"texture": "Global Texture", "face": "Localized Facial", "fusion": "Hybrid Semantic Fusion"}
#: the y label of every entropy axis: the number and what it means
ENTROPY_LABEL = "entropy / ln N\n(how spread out the attention is)"


def _colormap(values: np.ndarray, name: str = "jet") -> np.ndarray:
    from matplotlib import colormaps

    rgba = colormaps[name](np.clip(values, 0.0, 1.0))
    return (rgba[..., :3] * 255).astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.5, region: CropRegion | None = None, cmap: str = "jet") -> np.ndarray:
    """A heatmap in [0, 1] blended over an RGB uint8 image; outside ``region`` the image is only dimmed."""
    h, w = image.shape[:2]
    if heatmap.shape != (h, w):
        heatmap = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colored = _colormap(heatmap, cmap).astype(np.float32)
    base = image.astype(np.float32)
    weight = np.full((h, w, 1), alpha, dtype=np.float32)
    if region is not None:
        inside = np.zeros((h, w), dtype=bool)
        c = region.clipped((w, h))
        inside[int(round(c.y0)) : int(round(c.y1)), int(round(c.x0)) : int(round(c.x1))] = True
        weight[~inside] = 0.0
        base[~inside] *= 0.45
    return np.clip(base * (1 - weight) + colored * weight, 0, 255).astype(np.uint8)


def _thickness(image: np.ndarray) -> int:
    return max(2, round(max(image.shape[:2]) / 300))


def draw_regions(image: np.ndarray, regions: Mapping[str, CropRegion], *, face_box: Sequence[float] | None = None, labels: bool = True) -> np.ndarray:
    """Draws each stream's region (its colour) and the detected face box (white, dashed look) on a copy."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = _thickness(out)
    scale = max(0.4, max(h, w) / 900)
    for i, (name, region) in enumerate(regions.items()):
        c = region.clipped((w, h))
        inset = t * i  # nested rectangles stay visible when regions coincide
        p0 = (int(c.x0) + inset, int(c.y0) + inset)
        p1 = (max(int(c.x1) - 1 - inset, p0[0]), max(int(c.y1) - 1 - inset, p0[1]))
        color = STREAM_COLORS.get(name, (255, 255, 255))
        cv2.rectangle(out, p0, p1, color, t)
        if labels:
            cv2.putText(out, name, (p0[0] + 2 * t, p0[1] + int(22 * scale) + t), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, color, max(1, t // 2 + 1), cv2.LINE_AA)
    if face_box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in face_box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), max(1, t // 2))
    return out


def stream_overlays(report: Report, *, alpha: float = 0.5) -> dict[str, np.ndarray]:
    """Each stream's Score-CAM over the analysed image, in image coordinates (needs ``explain``)."""
    out = {}
    for name, stream in report.streams.items():
        if stream.cam_image is None:
            continue
        out[name] = overlay(report.image, stream.cam_image, alpha=alpha, region=stream.input.region)
    return out


def figure_to_array(fig: Figure) -> np.ndarray:
    """Renders a matplotlib figure to an RGB uint8 array and closes it."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    arr = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return arr


def new_figure(width: float, height: float, *, layout: str | None = None) -> Figure:
    """An empty Agg figure of ``width`` x ``height`` inches at 100 dpi (``layout="constrained"``
    gives colour bars and legends outside the axes their room)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def stream_rgb(name: str) -> tuple[float, float, float]:
    """The stream's colour (:data:`STREAM_COLORS`) as matplotlib's 0..1 floats; grey for an unknown name."""
    r, g, b = STREAM_COLORS.get(name, (128, 128, 128))
    return (r / 255, g / 255, b / 255)


def set_titles(fig: Figure, title: str, subject: str = "") -> None:
    """A figure's title on top and, under it all, which image it describes (``Image: <subject>``)."""
    if title:
        fig.suptitle(title, fontsize=11)
    if subject:
        fig.supxlabel(f"Image: {subject}", fontsize=8, color="0.35")


def cam_caption(cam) -> str:
    """``exact Score-CAM`` or ``fast Score-CAM, fidelity high (expected r 0.98)``: how far to trust the map."""
    if cam is None:
        return ""
    if cam.fidelity is None:
        return f"{cam.method} Score-CAM"
    if cam.fidelity.level == "exact":
        return f"{cam.method} Score-CAM: the exact map" + cam.fidelity.why_exact.replace(" (", "\n(", 1)  # a second line: titles are narrow
    return f"{cam.method} Score-CAM, fidelity {cam.fidelity.level} (expected r {cam.fidelity.expected_pearson:.2f})"


def explanation_figure(report: Report) -> Figure:
    """Side by side: the image with the streams' regions, then each stream's Score-CAM overlay."""
    overlays = stream_overlays(report)
    names = list(overlays)
    fig = new_figure(4.0 * (1 + len(names)), 5.0)
    axes = fig.subplots(1, 1 + len(names), squeeze=False)[0]
    face_box = None if report.face.box is None else (report.face.box.x0, report.face.box.y0, report.face.box.x1, report.face.box.y1)
    axes[0].imshow(draw_regions(report.image, {n: s.input.region for n, s in report.streams.items()}, face_box=face_box))
    axes[0].set_title(f"P(fake) {report.prob_fake:.1f}: {report.label}" + ("  [UNTRAINED]" if report.untrained else ""))
    for ax, name in zip(axes[1:], names):
        s = report.streams[name]
        ax.imshow(overlays[name])
        ent = f", CAM entropy {s.cam_entropy.normalized:.2f}" if s.cam_entropy else ""
        ax.set_title(f"{STREAM_TITLES.get(name, name)}\nP(fake) {s.prob_fake:.2f}{ent}\n{cam_caption(s.cam)}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def entropy_figure(report: Report, *, subject: str = "",
                   title: str = "How spread out is each stream's attention?\n(1 = evenly everywhere, 0 = one spot)") -> Figure:
    """Each stream's attention entropy / ln N (solid) and Score-CAM entropy (hatched, if explained),
    values written in, on an axis from 0 to 1; the legend sits above the axes (it covers no bar)."""
    from matplotlib.patches import Patch

    names = list(report.streams)
    fig = new_figure(5.6, 3.9, layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(names))
    att = [report.streams[n].attention.normalized if report.streams[n].attention else np.nan for n in names]
    cam = [report.streams[n].cam_entropy.normalized if report.streams[n].cam_entropy else np.nan for n in names]
    colours = [stream_rgb(n) for n in names]
    has_cam = not all(np.isnan(cam))
    width = 0.38 if has_cam else 0.55
    groups = [ax.bar(x - (width / 2 if has_cam else 0), att, width, color=colours, edgecolor="black", linewidth=0.6)]
    if has_cam:
        groups.append(ax.bar(x + width / 2, cam, width, color=[(*c, 0.35) for c in colours], edgecolor=colours,
                             hatch="///", linewidth=1.0))
    for group in groups:
        for bar in group:
            v = bar.get_height()
            if np.isfinite(v):
                ax.text(bar.get_x() + bar.get_width() / 2, v + 0.015, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.12)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_ylabel(ENTROPY_LABEL, fontsize=9)
    handles = [Patch(facecolor="0.55", edgecolor="black", label="CLS attention (solid)")]
    handles.append(Patch(facecolor=(0.55, 0.55, 0.55, 0.35), edgecolor="0.3", hatch="///", label="Score-CAM map (hatched)")
                   if has_cam else Patch(facecolor="white", edgecolor="0.7", label="Score-CAM: explanations off"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=8, frameon=False,
              borderaxespad=0.2)
    set_titles(fig, title, subject)
    return fig


def similarity_heatmap(ax, matrix):
    """Draws a cosine matrix (names on both axes, -1..1 in coolwarm, values written in) on ``ax``; returns the image for a colour bar."""
    values = np.asarray(matrix.values, dtype=float)
    im = ax.imshow(values, vmin=-1, vmax=1, cmap="coolwarm")
    n = len(matrix.names)
    ax.set_xticks(range(n), matrix.names)
    ax.set_yticks(range(n), matrix.names)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=10)
    return im


def similarity_figure(matrix, *, title: str = "Inter-stream cosine similarity", subject: str = "") -> Figure:
    """A heatmap of a :class:`~forensic.explain.similarity.SimilarityMatrix`, values written in, with a
    colour bar in words (-1 opposite, 0 unrelated, 1 the same)."""
    fig = new_figure(4.8, 3.9, layout="constrained")
    ax = fig.subplots()
    im = similarity_heatmap(ax, matrix)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, ticks=[-1, 0, 1])
    bar.ax.set_yticklabels(["-1 opposite", "0 unrelated", "1 the same"], fontsize=8)
    set_titles(fig, title, subject)
    return fig


def sweep_figure(rows: Sequence[Mapping], *, title: str = "Robustness sweep") -> Figure:
    """A robustness sweep (:attr:`forensic.sweep.SweepResult.rows`) for students: the vote and each
    stream's P(fake), attention spread and feature stability against strength, every axis from 0
    and one legend under the panels (it covers no line)."""
    strengths = [r["strength"] for r in rows]
    names = [n for n in STREAM_COLORS if rows and n in rows[0]["streams"]]
    fig = new_figure(12.0, 4.0, layout="constrained")  # room for the legend outside
    ax_p, ax_e, ax_s = fig.subplots(1, 3)
    for name in names:
        style = {"color": stream_rgb(name), "marker": "o", "ms": 3, "label": name}
        ax_p.plot(strengths, [r["streams"][name]["prob_fake"] for r in rows], **style)
        ax_e.plot(strengths, [r["streams"][name]["attention_entropy"] for r in rows], **style)
        ax_s.plot(strengths, [r["streams"][name]["stability"] for r in rows], **style)
    ax_p.step(strengths, [r["prob_fake"] for r in rows], where="mid", color="k", lw=2, label="vote (0.1 grid)")
    ax_p.axhline(0.5, color="0.5", ls=":", lw=1)
    ax_p.set(ylim=(0, 1.02), xlabel="strength", ylabel="P(fake)", title="The vote and each stream's P(fake)")
    ax_e.set(ylim=(0, 1.02), xlabel="strength", ylabel="entropy / ln N", title="How spread out the attention is")
    low = min([0.0] + [r["streams"][n]["stability"] for r in rows for n in names if r["streams"][n]["stability"] is not None])
    ax_s.set(ylim=(low, 1.02), xlabel="strength", ylabel="cosine to the clean features", title="How far the features moved")
    handles, labels = ax_p.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig

