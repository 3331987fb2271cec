"""The look every picture shares: stream colours and titles, the figure factory, titles in words.

Figures are matplotlib ``Figure`` objects made with the Agg backend (no display needed), turned
into arrays or files by :func:`figure_to_array` / ``fig.savefig``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["STREAM_COLORS", "STREAM_TITLES", "ENTROPY_LABEL", "SMALL_TEXT", "new_figure", "stream_rgb", "set_titles", "figure_to_array",
           "message_figure"]

#: one colour per stream, used everywhere (RGB)
STREAM_COLORS = {"texture": (255, 140, 0), "face": (40, 180, 90), "fusion": (60, 120, 230)}
STREAM_TITLES = {"texture": "Global Texture", "face": "Localized Facial", "fusion": "Hybrid Semantic Fusion"}
#: the y label of every entropy axis, in words (the number is the entropy divided by ln N, its maximum)
ENTROPY_LABEL = "how spread out the attention is\n(1 = evenly everywhere)"
#: the smallest text in any figure, in points (at 100 dpi: 13.2 px). The app's figures are at most 4.6 in wide,
#: so on a 390-px phone (~340 px of figure) this text is still >= 9 px on screen
SMALL_TEXT = 9.5


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
    if layout == "constrained":  # a margin around the outermost text: tick labels at the edge are never cut
        fig.get_layout_engine().set(w_pad=6 / 72, h_pad=5 / 72)
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
        fig.supxlabel(f"Image: {subject}", fontsize=SMALL_TEXT, color="0.3", wrap=True)


def message_figure(text: str, *, title: str = "", size: tuple[float, float] = (4.6, 3.4)) -> Figure:
    """A figure holding only a sentence (e.g. why a panel is empty)."""
    fig = new_figure(*size, layout="constrained")
    ax = fig.subplots()
    ax.set_axis_off()
    set_titles(fig, title)
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10.5, wrap=True, transform=ax.transAxes, color="0.25")
    return fig
