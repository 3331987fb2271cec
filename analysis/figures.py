"""The studies' figures, made with matplotlib's object API (no pyplot state) and saved as PNG.

Every curve figure has one panel per degradation family, strength on the x axis (the family's
level labels as ticks), one line per stream in the project's stream colours (the vote in black)
and, where the table has a spread, a band of +- one standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from forensic.viz import STREAM_TITLES, new_figure, overlay, stream_rgb

__all__ = [
    "save_figure",
    "metric_figure",
    "curve_figure",
    "entropy_figure",
    "cam_drift_figure",
    "overlay_grid",
    "complementarity_figure",
    "OverlayRow",
]

METRIC_LABELS = {"auc": "ROC AUC", "ap": "average precision", "accuracy": "accuracy", "eer": "equal error rate", "ece": "calibration error (ECE)"}


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Writes ``fig`` as a PNG and returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _color(stream: str) -> tuple[float, float, float]:
    if stream == "vote":
        return (0.0, 0.0, 0.0)
    return stream_rgb(stream)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _families(table: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for r in table:
        if r["family"] not in out:
            out.append(r["family"])
    return out


def _panels(n: int, *, ncols: int = 4, width: float = 3.6, height: float = 2.9) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = new_figure(max(width * ncols, 8.0), height * nrows + 0.9)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _ticks(ax, rows: Sequence[Mapping[str, Any]]) -> None:
    pairs = sorted({(_num(r["strength"]), str(r["level"])) for r in rows})
    if len(pairs) > 8:  # too many labels collide: keep every other one
        pairs = pairs[::2] + ([pairs[-1]] if len(pairs) % 2 == 0 else [])
    ax.set_xticks([p[0] for p in pairs], [p[1] for p in pairs], fontsize=7, rotation=45 if len(pairs) > 5 else 0)


def curve_figure(
    table: Sequence[Mapping[str, Any]],
    *,
    value: str,
    spread: str | None = None,
    streams: Sequence[str],
    title: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    where: Mapping[str, Any] | None = None,
    style: str = "-o",
    fig_axes: tuple[Figure, list] | None = None,
    label_suffix: str = "",
) -> Figure:
    """``value`` (and a +-``spread`` band) against strength, one panel per family, one line per stream.

    Args:
        table: rows with ``family``, ``level``, ``strength``, ``stream`` and the value columns.
        where: keep only rows whose columns equal these values (e.g. ``{"measure": "cam"}``).
        fig_axes: draw into these panels (to overlay two measures); the families must match.
    """
    rows = [r for r in table if all(r.get(k) == v for k, v in (where or {}).items())]
    families = _families(rows) if fig_axes is None else _families(table)
    fig, axes = fig_axes or _panels(len(families))
    for ax, family in zip(axes, families):
        fam = [r for r in rows if r["family"] == family]
        for name in streams:
            pts = sorted((_num(r["strength"]), _num(r[value]), _num(r[spread]) if spread else math.nan) for r in fam if r["stream"] == name)
            if not pts:
                continue
            x, y, s = (np.array(v) for v in zip(*pts))
            label = ("vote" if name == "vote" else STREAM_TITLES.get(name, name)) + label_suffix
            ax.plot(x, y, style, ms=3, lw=2.2 if name == "vote" else 1.5, color=_color(name), label=label)
            if spread and np.isfinite(s).any():
                ax.fill_between(x, y - s, y + s, color=_color(name), alpha=0.12, lw=0)
        ax.set_title(family, fontsize=10)
        ax.set_xlabel("strength", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        _ticks(ax, fam or [r for r in table if r["family"] == family])
    if axes and fig_axes is None:
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
        fig.suptitle(title, fontsize=11)
        fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


def metric_figure(table: Sequence[Mapping[str, Any]], metric: str, *, streams: Sequence[str]) -> Figure:
    """A robustness metric against strength per family, one line per stream and the vote."""
    ylim = (-0.02, 1.02) if metric in ("auc", "ap", "accuracy") else None
    fig = curve_figure(
        table,
        value=metric,
        streams=[*streams, "vote"],
        title=f"Robustness: {METRIC_LABELS.get(metric, metric)} against degradation strength",
        ylabel=METRIC_LABELS.get(metric, metric),
        ylim=ylim,
    )
    if metric in ("auc", "accuracy", "eer"):  # chance level
        for ax in fig.axes:
            if ax.get_visible():
                ax.axhline(0.5, color="0.5", ls=":", lw=1)
    return fig


def entropy_figure(table: Sequence[Mapping[str, Any]], *, streams: Sequence[str]) -> Figure:
    """Normalised entropy (entropy / ln N) against strength: CLS attention solid, Score-CAM dashed."""
    from matplotlib.lines import Line2D

    fig = curve_figure(
        table, value="normalized_mean", spread="normalized_std", streams=streams, where={"measure": "attention"},
        title="Entropy / ln N against degradation strength (mean +- std)", ylabel="entropy / ln N", ylim=(0.0, 1.02),
    )
    axes = [ax for ax in fig.axes if ax.get_visible()]
    with_cam = any(r.get("measure") == "cam" and r.get("n") for r in table)
    if with_cam:
        curve_figure(
            table, value="normalized_mean", spread="normalized_std", streams=streams, where={"measure": "cam"},
            title="", ylabel="entropy / ln N", ylim=(0.0, 1.02), style="--s", fig_axes=(fig, axes),
        )
    for legend in fig.legends:
        legend.remove()
    handles = [Line2D([], [], color=_color(n), lw=2) for n in streams]
    labels = [STREAM_TITLES.get(n, n) for n in streams]
    handles += [Line2D([], [], color="0.3", ls="-", marker="o", ms=3), Line2D([], [], color="0.3", ls="--", marker="s", ms=3)]
    labels += ["CLS attention", "Score-CAM" if with_cam else "Score-CAM (not run)"]
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    return fig


def cam_drift_figure(table: Sequence[Mapping[str, Any]], *, streams: Sequence[str]) -> Figure:
    """Per family (rows): correlation with the clean map, centroid shift, mass in the box, CAM entropy."""
    families = _families(table)
    panels = [
        ("clean_corr_mean", "clean_corr_std", "correlation with clean map", (-1.02, 1.02)),
        ("centroid_shift_mean", "centroid_shift_std", "centroid shift (image fractions)", None),
        ("mass_in_box_mean", "mass_in_box_std", "CAM mass inside the box", (0.0, 1.02)),
        ("cam_entropy_normalized_mean", None, "CAM entropy / ln N", (0.0, 1.02)),
    ]
    fig = new_figure(3.6 * len(panels), 2.9 * len(families) + 0.7)
    grid = fig.subplots(len(families), len(panels), squeeze=False)
    for i, family in enumerate(families):
        fam = [r for r in table if r["family"] == family]
        for j, (value, spread, label, ylim) in enumerate(panels):
            ax = grid[i, j]
            for name in streams:
                pts = sorted((_num(r["strength"]), _num(r[value]), _num(r[spread]) if spread else math.nan) for r in fam if r["stream"] == name)
                if not pts:
                    continue
                x, y, s = (np.array(v) for v in zip(*pts))
                ax.plot(x, y, "-o", ms=3, color=_color(name), label=STREAM_TITLES.get(name, name))
                if spread and np.isfinite(s).any():
                    ax.fill_between(x, y - s, y + s, color=_color(name), alpha=0.12, lw=0)
                if value == "mass_in_box_mean":  # what a uniform map would put in the box
                    frac = [_num(r["box_fraction_mean"]) for r in fam if r["stream"] == name]
                    if frac and np.isfinite(frac).any():
                        ax.axhline(float(np.nanmean(frac)), color="0.4", ls=":", lw=1)
            if ylim is not None:
                ax.set_ylim(*ylim)
            ax.set_title(f"{family}: {label}", fontsize=9)
            ax.set_xlabel("strength", fontsize=8)
            ax.grid(alpha=0.3)
            _ticks(ax, fam)
            if value == "mass_in_box_mean" and not np.isfinite([_num(r[value]) for r in fam]).any():
                ax.text(0.5, 0.5, "no reference box\n(no face found; see --box)", ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")
    handles, labels = grid[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("Score-CAM drift against degradation strength (dotted: box share of the image)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return fig


@dataclass(frozen=True)
class OverlayRow:
    """One row of the overlay grid: an image's copies at each strength and one stream's maps there.

    Attributes:
        title: the image's name.
        stream: the stream whose maps these are.
        images: RGB uint8 images, one per column (all the maps' size).
        maps: the maps (None where not computed), one per column.
        box: the reference box in those images' pixels, drawn dashed, or None.
    """

    title: str
    stream: str
    images: tuple[np.ndarray, ...]
    maps: tuple[np.ndarray | None, ...]
    box: tuple[float, float, float, float] | None = None


def overlay_grid(rows: Sequence[OverlayRow], strengths: Sequence[float], *, title: str) -> Figure:
    """A grid of Score-CAM overlays: one row per (image, stream), one column per strength.

    Each map is scaled to its own maximum, so the grid shows *where* a stream looks, not how strongly.
    """
    ncols = max(1, len(strengths))
    fig = new_figure(max(1.9 * ncols + 1.2, 6.0), 1.95 * max(1, len(rows)) + 0.6)
    grid = fig.subplots(max(1, len(rows)), ncols, squeeze=False)
    for i, row in enumerate(rows):
        for j, strength in enumerate(strengths):
            ax = grid[i, j]
            image, heat = row.images[j], row.maps[j]
            if heat is None:
                ax.imshow(image)
                ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes, fontsize=7, color="w")
            else:
                peak = float(heat.max())
                ax.imshow(overlay(image, heat / peak if peak > 0 else heat, alpha=0.45))
            if row.box is not None:
                ax.add_patch(_rect(*row.box))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"strength {strength:g}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{row.title}\n{STREAM_TITLES.get(row.stream, row.stream)}", fontsize=7, color=_color(row.stream))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def _rect(x0: float, y0: float, x1: float, y1: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="white", lw=1.0, ls="--")


def complementarity_figure(table: Sequence[Mapping[str, Any]], *, streams: Sequence[str]) -> Figure:
    """Heatmaps over stream pairs: Score-CAM cosine, CLS feature cosine and error correlation."""
    panels = [
        ("cam_cosine_mean", "Score-CAM cosine (image coords)", (0.0, 1.0), "viridis"),
        ("feature_cosine_mean", "CLS feature cosine", (-1.0, 1.0), "coolwarm"),
        ("error_corr", "error correlation (phi)", (-1.0, 1.0), "coolwarm"),
    ]
    fig = new_figure(4.3 * len(panels), 3.8)
    axes = fig.subplots(1, len(panels))
    n = len(streams)
    idx = {s: i for i, s in enumerate(streams)}
    for ax, (column, title, (lo, hi), cmap) in zip(axes, panels):
        m = np.full((n, n), np.nan)
        for r in table:
            v = _num(r.get(column))
            i, j = idx.get(r["stream_a"]), idx.get(r["stream_b"])
            if i is not None and j is not None:
                m[i, j] = m[j, i] = v
        if column != "error_corr":
            np.fill_diagonal(m, 1.0)
        im = ax.imshow(np.ma.masked_invalid(m), vmin=lo, vmax=hi, cmap=cmap)
        ax.set_xticks(range(n), streams, fontsize=8)
        ax.set_yticks(range(n), streams, fontsize=8)
        for i in range(n):
            for j in range(n):
                text = "n/a" if not np.isfinite(m[i, j]) else f"{m[i, j]:.2f}"
                dark = np.isfinite(m[i, j]) and (m[i, j] - lo) / (hi - lo) < (0.4 if cmap == "viridis" else -1.0)
                ax.text(j, i, "" if (i == j and column == "error_corr") else text, ha="center", va="center", fontsize=9, color="w" if dark else "k")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("How alike the streams are (lower = more complementary)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
