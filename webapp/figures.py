"""What the app adds to :mod:`forensic.viz`'s pictures: the overlays' and the map differences' colour
scales as HTML (the overlays are RGB pictures and carry no scale of their own). Every figure and picture the app shows
is drawn by :mod:`forensic.viz`, as in the CLI and the analyses.
"""

from __future__ import annotations

import numpy as np

from forensic.viz.closeup import DIVERGING

__all__ = ["colour_scale_html", "diverging_scale_html"]


def _bar(cmap: str, low: str, high: str) -> str:
    """A colour map as an HTML bar between two words."""
    from matplotlib import colormaps

    stops = ", ".join(
        "#{:02x}{:02x}{:02x} {:.0f}%".format(*(int(255 * c) for c in colormaps[cmap](t)[:3]), 100 * t)
        for t in np.linspace(0, 1, 9)
    )
    return (f"<div class='colour-scale'><span>{low}</span>"
            f"<span class='colour-bar' style='background:linear-gradient(to right, {stops})'></span>"
            f"<span>{high}</span></div>")


def colour_scale_html(*, cmap: str = "jet") -> str:
    """The overlays' colour scale as an HTML bar (the overlays are RGB pictures; they carry no scale)."""
    return (
        _bar(cmap, "0 least", "1 most")
        + "<div class='note'>Colour = how much that part of the stream's input raised its P(fake) (Score-CAM, each map "
        "scaled to its own 0-1). Outside the stream's input region the photo is dimmed and uncoloured.</div>"
    )


def diverging_scale_html() -> str:
    """The map differences' colour scale (each picture also carries it, drawn under the map)."""
    return (
        _bar(DIVERGING, "−1 less", "+1 more")
        + "<div class='note'>This blue-white-red scale is for the pictures \u201c... degraded minus clean\u201d (the rainbow "
        "scale above is for the clean and degraded maps): where attention moved, the degraded map minus the clean map "
        "(each 0-1). <b>Red</b>: the stream looks here more after the degradation; <b>blue</b>: less; white: no change.</div>"
    )
