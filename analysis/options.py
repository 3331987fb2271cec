"""What one analysis run analyses and how: :class:`AnalysisOptions` (the options of ``python -m analysis``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .conditions import DEFAULT_ROBUSTNESS_FAMILIES, DEFAULT_SWEEP_FAMILIES, SWEEP_STRENGTHS

__all__ = ["AnalysisOptions"]


@dataclass(frozen=True)
class AnalysisOptions:
    """What to analyse and how (the command-line options of ``python -m analysis``).

    Attributes:
        data: a folder with ``real/`` and ``fake/`` or a CSV manifest ``path,label[,split]``.
        out: the output folder (records are resumed from it).
        limit: use this many images, balanced real/fake (None: all).
        seed: seed of the image order and of every image's degradation seed.
        split: only a manifest's ``train`` or ``val`` rows.
        batch_size: images per batched stream pass.
        families: robustness families (see :mod:`analysis.conditions`).
        levels: keep only these level labels in robustness (None: all).
        sweep_families: families of the strength sweeps (stability, entropy, Score-CAM drift).
        strengths: the sweeps' strengths in [0, 1].
        cam: a Score-CAM method of the registry (:func:`forensic.explain.method_names`); ``none`` skips the Score-CAM parts.
        cam_limit: Score-CAM on only the first this-many images (None: all of them).
        cam_groups: channel groups of the fast Score-CAM (None: channels / 16).
        box: a fixed reference box (x0, y0, x1, y1) in image pixels for the CAM box metrics
            (default: the face box found on each clean image).
        figure_images: images shown in the Score-CAM overlay grid.
        fresh: delete earlier records in ``out`` instead of resuming.
    """

    data: Path
    out: Path
    limit: int | None = None
    seed: int = 0
    split: str | None = None
    batch_size: int = 8
    families: tuple[str, ...] = DEFAULT_ROBUSTNESS_FAMILIES
    levels: tuple[str, ...] | None = None
    sweep_families: tuple[str, ...] = DEFAULT_SWEEP_FAMILIES
    strengths: tuple[float, ...] = SWEEP_STRENGTHS
    cam: str = "fast"
    cam_limit: int | None = None
    cam_groups: int | None = None
    box: tuple[float, float, float, float] | None = None
    figure_images: int = 2
    fresh: bool = False

    def __post_init__(self) -> None:
        from forensic.explain import check_method

        check_method(self.cam, allow_none=True)
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if any(not 0.0 <= float(s) <= 1.0 for s in self.strengths) or not self.strengths:
            raise ValueError(f"strengths must be in [0, 1], got {list(self.strengths)}")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"box must be x0,y0,x1,y1 with x1 > x0 and y1 > y0, got {self.box}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        return d
