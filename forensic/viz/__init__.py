"""Pictures shared by the app, the CLI and the analysis package: overlays, regions and figures.

- :mod:`~forensic.viz.style`: stream colours and titles, the figure factory, titles in words;
- :mod:`~forensic.viz.pictures`: Score-CAM overlays and the labelled regions picture (RGB arrays);
- :mod:`~forensic.viz.figures`: the figures of one analysis or sweep (matplotlib, Agg).
"""

from __future__ import annotations

from .figures import (
    cam_caption,
    drift_figure,
    entropy_figure,
    explanation_figure,
    filmstrip_figure,
    param_text,
    similarity_figure,
    similarity_heatmap,
    stability_figure,
    sweep_figure,
)
from .pictures import Tag, draw_regions, overlay, place_tags, regions_picture, stream_overlays
from .style import (
    ENTROPY_LABEL,
    STREAM_COLORS,
    STREAM_TITLES,
    figure_to_array,
    message_figure,
    new_figure,
    set_titles,
    stream_rgb,
)

__all__ = [
    "STREAM_COLORS",
    "STREAM_TITLES",
    "ENTROPY_LABEL",
    "new_figure",
    "stream_rgb",
    "set_titles",
    "figure_to_array",
    "message_figure",
    "overlay",
    "stream_overlays",
    "Tag",
    "place_tags",
    "draw_regions",
    "regions_picture",
    "cam_caption",
    "explanation_figure",
    "entropy_figure",
    "similarity_heatmap",
    "similarity_figure",
    "sweep_figure",
    "filmstrip_figure",
    "param_text",
    "stability_figure",
    "drift_figure",
]
