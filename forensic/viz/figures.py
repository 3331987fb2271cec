"""Figures of one analysis or sweep, for students: plain-language labels, axes from 0, legends that
match and do not cover, and a subtitle naming the image (:func:`~forensic.viz.style.set_titles`).
The app, the CLI and the analyses draw the same figures (the app only lays them out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .pictures import regions_picture, stream_overlays
from .style import ENTROPY_LABEL, SMALL_TEXT, STREAM_COLORS, STREAM_TITLES, message_figure, new_figure, set_titles, stream_rgb

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..report import Report

__all__ = ["cam_caption", "explanation_figure", "entropy_figure", "similarity_heatmap", "similarity_figure", "sweep_figure",
           "filmstrip_figure", "param_text",
           "stability_figure", "drift_figure"]


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
    axes[0].imshow(regions_picture(report))
    axes[0].set_title(f"P(fake) {report.prob_fake:.1f}: {report.verdict.word}")
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
    fig = new_figure(4.6, 3.9, layout="constrained")
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
                ax.text(bar.get_x() + bar.get_width() / 2, v + 0.015, f"{v:.2f}", ha="center", va="bottom", fontsize=SMALL_TEXT)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.12)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_ylabel(ENTROPY_LABEL, fontsize=SMALL_TEXT)
    handles = [Patch(facecolor="0.55", edgecolor="black", label="CLS attention (solid)")]
    handles.append(Patch(facecolor=(0.55, 0.55, 0.55, 0.35), edgecolor="0.3", hatch="///", label="Score-CAM map (hatched)")
                   if has_cam else Patch(facecolor="white", edgecolor="0.7", label="Score-CAM: explanations off"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=SMALL_TEXT, frameon=False,
              borderaxespad=0.2, handlelength=1.5, columnspacing=1.0)
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


def similarity_figure(matrix, *, title: str = "Inter-stream cosine similarity", subject: str = "", empty: str = "") -> Figure:
    """A heatmap of a :class:`~forensic.explain.similarity.SimilarityMatrix`, values written in, with a
    colour bar in words (-1 opposite, 0 unrelated, 1 the same); without a matrix, why (``empty``)."""
    if matrix is None:
        return message_figure(empty or "Not available for this analysis.", title=title, size=(4.6, 3.9))
    fig = new_figure(4.6, 3.9, layout="constrained")
    ax = fig.subplots()
    im = similarity_heatmap(ax, matrix)
    bar = fig.colorbar(im, ax=ax, ticks=[-1, 0, 1])
    bar.ax.set_yticklabels(["-1 opposite", "0 unrelated", "1 the same"], fontsize=SMALL_TEXT)
    set_titles(fig, title, subject)
    return fig


def param_text(param: Mapping | None) -> str:
    """A family parameter's value as a short tick text: ``40``, ``2.4``, ``0.53``."""
    if not param:
        return ""
    v = param["value"]
    return f"{v:.2g}" if isinstance(v, float) and 0 < abs(v) < 1 else f"{v:g}"


def _param_axis(axes, rows: Sequence[Mapping]) -> None:
    # x positions are the strengths (more degradation to the right); ticks and label in the family's units
    if not rows or "param" not in rows[0]:
        for ax in axes:
            ax.set_xlabel("strength (0 = clean, 1 = strongest)")
        return
    strengths = [r["strength"] for r in rows]
    texts = [param_text(r["param"]) for r in rows]
    step = 1 if len(rows) <= 6 or max(len(t) for t in texts) <= 3 else 2
    for ax in axes:
        ax.set_xticks(strengths[::step], texts[::step], fontsize=SMALL_TEXT)
        ax.set_xlabel(f"{rows[0]['param']['label']}\n(stronger degradation \u2192)", fontsize=SMALL_TEXT)


def sweep_figure(rows: Sequence[Mapping], *, title: str = "Robustness sweep") -> Figure:
    """A robustness sweep (:attr:`forensic.sweep.SweepResult.rows`) for students: the vote and each
    stream's P(fake), attention spread and feature stability against the family's own parameter
    (e.g. JPEG quality 100 ... 5, more degradation to the right), every axis from 0 and one legend
    under the panels (it covers no line)."""
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
    ax_p.set(ylim=(0, 1.02), ylabel="P(fake)", title="The vote and each stream's P(fake)")
    ax_e.set(ylim=(0, 1.02), ylabel=ENTROPY_LABEL, title="How spread out the attention is")
    low = min([0.0] + [r["streams"][n]["stability"] for r in rows for n in names if r["streams"][n]["stability"] is not None])
    ax_s.set(ylim=(low, 1.02), ylabel="how alike the features stay\n(1 = unchanged)", title="How far the features moved")
    _param_axis((ax_p, ax_e, ax_s), rows)
    handles, labels = ax_p.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=SMALL_TEXT, frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig


def filmstrip_figure(strip, *, title: str = "", subject: str = "") -> Figure:
    """An attention film-strip (:class:`forensic.sweep.FilmStrip`): one row per stream, one column per
    level (clean first), each panel captioned with the family's parameter and the map's cosine to
    the clean map (1 = the same map); a colour scale under the panels."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    rows = strip.rows
    names = [n for n in STREAM_COLORS if rows and n in rows[0]["streams"]]
    if not names or not any(strip.overlays):
        return message_figure("No Score-CAM maps to show: the film-strip needs explanations.", title=title or "Attention film-strip")
    label = rows[0]["param"]["label"]
    fig = new_figure(2.3 * len(rows) + 0.6, 2.75 * len(names) + 1.7, layout="constrained")
    axes = fig.subplots(len(names), len(rows), squeeze=False)
    for j, (row, overlays) in enumerate(zip(rows, strip.overlays)):
        head = "clean image (not degraded)" if j == 0 else f"{label} {param_text(row['param'])}"
        for i, name in enumerate(names):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if name in overlays:
                ax.imshow(overlays[name])
            cos = row["streams"][name].get("map_cosine")
            caption = ("the reference map" if j == 0 else "map cosine to clean: " + ("n/a" if cos is None else f"{cos:.2f}"))
            ax.set_title((head + "\n" if i == 0 else "") + caption, fontsize=SMALL_TEXT,
                         fontweight="normal")
            if j == 0:
                ax.set_ylabel(STREAM_TITLES.get(name, name), fontsize=SMALL_TEXT, color=stream_rgb(name))
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="jet"), ax=axes, orientation="horizontal",
                       fraction=0.035, aspect=60, ticks=[0, 1])
    bar.ax.set_xticklabels(["0 least", "1 most"], fontsize=SMALL_TEXT)
    for tick, align in zip(bar.ax.get_xticklabels(), ("left", "right")):
        tick.set_horizontalalignment(align)  # inside the bar's ends, never cut at the figure's edge
    bar.set_label(f"Colour = how much that part of the stream's input raised its P(fake) ({strip.method} Score-CAM, "
                  "each map scaled to its own 0-1); outside the input region the photo is dimmed", fontsize=SMALL_TEXT)
    set_titles(fig, title or f"Where each stream looks as {label} degrades ({strip.family}, seed {strip.seed})", subject)
    return fig


def stability_figure(report: Report, *, subject: str = "") -> Figure:
    """Each stream's cosine between its clean and degraded features, on an axis from 0 to 1."""
    names = [n for n in STREAM_COLORS if n in report.streams]
    values = [report.streams[n].stability for n in names]
    if all(v is None for v in values):
        return message_figure("Nothing was degraded, so there is nothing to compare:\nmove a lab slider, then Analyze,\n"
                              "to see how far each stream's features move.", title="Feature stability under the degradation")
    fig = new_figure(4.6, 3.9, layout="constrained")
    ax = fig.subplots()
    shown = [np.nan if v is None else v for v in values]
    bars = ax.bar(names, shown, color=[stream_rgb(n) for n in names], edgecolor="black", linewidth=0.6, width=0.55)
    for bar, v in zip(bars, values):
        if v is not None:
            ax.text(bar.get_x() + bar.get_width() / 2, max(v, 0) + 0.015, f"{v:.3f}", ha="center", va="bottom", fontsize=SMALL_TEXT)
    low = min(0.0, *(v for v in values if v is not None))
    ax.set_ylim(low, 1.12)
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_ylabel("how alike the clean and degraded\nfeatures are (1 = unchanged)", fontsize=SMALL_TEXT)
    set_titles(fig, "Did the degradation move each stream's features?", subject)
    return fig


def drift_figure(cosines: Mapping[str, float | None], stability: Mapping[str, float | None], *, subject: str = "") -> Figure:
    """Per stream: cosine between the clean and degraded Score-CAM maps, next to the feature cosine."""
    names = [n for n in STREAM_COLORS if n in cosines]
    fig = new_figure(4.6, 3.9, layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(names))
    maps = [np.nan if cosines[n] is None else cosines[n] for n in names]
    feats = [np.nan if stability.get(n) is None else stability[n] for n in names]
    colours = [stream_rgb(n) for n in names]
    a = ax.bar(x - 0.19, maps, 0.38, color=colours, edgecolor="black", linewidth=0.6)
    b = ax.bar(x + 0.19, feats, 0.38, color=[(*c, 0.35) for c in colours], edgecolor=colours, hatch="///")
    for group in (a, b):
        for bar in group:
            v = bar.get_height()
            if np.isfinite(v):
                ax.text(bar.get_x() + bar.get_width() / 2, max(v, 0) + 0.015, f"{v:.2f}", ha="center", va="bottom", fontsize=SMALL_TEXT)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor="0.55", edgecolor="black", label="Score-CAM maps (solid)"),
                       Patch(facecolor=(0.55, 0.55, 0.55, 0.35), edgecolor="0.3", hatch="///", label="features (hatched)")],
              loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=SMALL_TEXT, frameon=False, borderaxespad=0.2,
              handlelength=1.5, columnspacing=1.0)
    ax.set_xticks(x, names)
    ax.set_ylim(min(0.0, *(v for v in maps + feats if np.isfinite(v))), 1.12)
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_ylabel("how alike clean and degraded are\n(1 = did not move)", fontsize=SMALL_TEXT)
    set_titles(fig, "How far did each stream's attention drift?", subject)
    return fig
