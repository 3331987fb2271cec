"""Robustness and explainability studies of a detector on a labelled data set.

``python -m analysis {robustness,cam-drift,entropy,stability,complementarity,report} --data D --out O``
(see :mod:`analysis.__main__`), or from Python::

    from analysis import Analysis, AnalysisOptions
    from forensic import Detector

    result = Analysis(Detector.from_preset("small", weights="runs/small_all"),
                      AnalysisOptions(data="data/", out="runs/analysis", limit=200)).robustness()
    print(result.csv)

Sits on top of :mod:`forensic` (the pipeline, degradations, metrics, explanations) and reads data
with :func:`forensic.data.read_samples`; :mod:`forensic` never imports it.
"""

from __future__ import annotations

from .conditions import Condition, resolve_families, robustness_conditions, sweep_conditions
from .data import AnalysisSample, load_samples
from .options import AnalysisOptions
from .session import STUDIES, Analysis
from .store import AnalysisError
from .study import StudyResult

__all__ = [
    "Analysis",
    "AnalysisError",
    "AnalysisOptions",
    "AnalysisSample",
    "Condition",
    "STUDIES",
    "StudyResult",
    "load_samples",
    "resolve_families",
    "robustness_conditions",
    "sweep_conditions",
]
