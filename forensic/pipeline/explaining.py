"""The explain stage: a report with each stream's Score-CAM, from the verdict's own pass (the device).

The methods, their plan and their engine live in :mod:`forensic.explain`; this stage hands them one
image's pass (:meth:`~forensic.pipeline.Forwarded.item`) and returns the new report.
"""

from __future__ import annotations

from collections.abc import Callable

from ..explain import explain_report
from ..model import ForensicModel
from ..report import Report
from ..runtime import RuntimeConfig
from .forwarding import Forwarded

__all__ = ["explain"]


def explain(
    model: ForensicModel,
    report: Report,
    forwarded: Forwarded,
    *,
    method: str,
    runtime: RuntimeConfig | None = None,
    progress: Callable[[str, float], None] | None = None,
    cam_groups: int | None = None,
) -> Report:
    """``report`` with each stream's Score-CAM by ``method`` (a new report; ``forwarded`` is that image's pass)."""
    return explain_report(model, report, forwarded, method=method, progress=progress, runtime=runtime, n_groups=cam_groups)
