"""Geometry: the paper's resize (op 3) and :func:`resize_to`, which other operations and the compound engine use."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import cv2
import numpy as np

from forensic.degrade.ops.params import ParamInfo
from forensic.degrade.ops.registry import Params, register, strength_param

__all__ = ["INTERPOLATIONS", "resize", "resize_to"]

#: OpenCV flag of each ``interp`` word; random draws index into this order (nearest, linear, cubic, area)
INTERPOLATIONS: Mapping[str, int] = MappingProxyType(
    {
        "nearest": cv2.INTER_NEAREST,
        "linear": cv2.INTER_LINEAR,
        "cubic": cv2.INTER_CUBIC,
        "area": cv2.INTER_AREA,
    }
)


def resize_to(x: np.ndarray, size_hw: tuple[int, int], interp: str) -> np.ndarray:
    """``x`` resized to ``size_hw`` (height, width) by the ``interp`` word; ``x`` itself if already that size."""
    h, w = size_hw
    if (h, w) == x.shape[:2]:
        return x
    return cv2.resize(x, (w, h), interpolation=INTERPOLATIONS[interp])


@register(
    "resize",
    "Resize by `scale` (the spec layer resizes back to the input size at the end)",
    [
        ParamInfo("scale", float, None, 0.02, 4.0, "size factor (auto: down to 0.25/strength or up to 1+strength)"),
        ParamInfo("interp", str, "random", help="interpolation (random: uniform)", choices=("random", *INTERPOLATIONS)),
        ParamInfo(
            "direction", str, "random", help="for an auto scale: down, up or random", choices=("random", "down", "up")
        ),
        strength_param(),
    ],
    group="geometry",
    paper_index=3,
)
def resize(x: np.ndarray, p: Params) -> np.ndarray:
    def auto_scale() -> float:
        direction = p.choice("direction")
        u = p.rng.random()
        if direction == "up":
            return 1.0 + u * p.strength
        low = min(1.0, 0.25 / max(p.strength, 1e-6))
        return low + u * (1.0 - low)

    scale = p.get("scale", auto_scale)
    interp = p.choice("interp")
    h, w = x.shape[:2]
    # never below 8 px a side (or the input's size if smaller): later ops need a real image
    size = (max(min(h, 8), round(h * scale)), max(min(w, 8), round(w * scale)))
    return resize_to(x, size, interp)
