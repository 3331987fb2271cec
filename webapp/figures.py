"""What the app adds to :mod:`forensic.viz`'s pictures: the overlays' colour scale as HTML (the
overlays are RGB pictures and carry no scale of their own). Every figure and picture the app shows
is drawn by :mod:`forensic.viz`, as in the CLI and the analyses.
"""

from __future__ import annotations

import numpy as np

__all__ = ["colour_scale_html"]


def colour_scale_html(*, cmap: str = "jet") -> str:
    """The overlays' colour scale as an HTML bar (the overlays are RGB pictures; they carry no scale)."""
    from matplotlib import colormaps

    stops = ", ".join(
        "#{:02x}{:02x}{:02x} {:.0f}%".format(*(int(255 * c) for c in colormaps[cmap](t)[:3]), 100 * t)
        for t in np.linspace(0, 1, 9)
    )
    return (
        "<div class='colour-scale'><span>0 least</span>"
        f"<span class='colour-bar' style='background:linear-gradient(to right, {stops})'></span>"
        "<span>1 most</span></div>"
        "<div class='note'>Colour = how much that part of the stream's input raised its P(fake) (Score-CAM, each map "
        "scaled to its own 0-1). Outside the stream's input region the photo is dimmed and uncoloured.</div>"
    )
