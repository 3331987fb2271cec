"""Pictures shared by the app, the CLI and the analysis package: overlays, regions and figures.

- :mod:`~forensic.viz.style`: stream colours and titles, the figure factory, titles in words;
- :mod:`~forensic.viz.pictures`: Score-CAM overlays and the labelled regions picture (RGB arrays);
- :mod:`~forensic.viz.figures`: the figures of one analysis or sweep (matplotlib, Agg);
- :mod:`~forensic.viz.timeline`: a clip's P(fake) against time, with its verdict;
- :mod:`~forensic.viz.closeup`: look closely: clean vs degraded crops magnified, their difference, map differences.
"""

from __future__ import annotations

from .closeup import (
    DIFF_GAIN,
    Closeup,
    closeup,
    crop_box,
    difference_gain,
    difference_image,
    magnify,
    map_difference,
    map_difference_picture,
    where_picture,
    where_scale,
)
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
from .timeline import timeline_figure, timeline_title
from .pictures import Tag, draw_regions, label_font, overlay, place_tags, regions_picture, stream_overlays
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
    "timeline_figure",
    "timeline_title",
    "label_font",
    "Closeup",
    "DIFF_GAIN",
    "closeup",
    "crop_box",
    "magnify",
    "difference_image",
    "difference_gain",
    "where_picture",
    "where_scale",
    "map_difference",
    "map_difference_picture",
]
