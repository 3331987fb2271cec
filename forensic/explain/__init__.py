"""Explanations: Score-CAM methods behind one interface, the plan that runs them, and map metrics.

- :mod:`~forensic.explain.cam`: :class:`ScoreCAM`, the base every method subclasses (a grad-cam
  ``BaseCAM``), the exact method, the result types.
- :mod:`~forensic.explain.fast`: the ``fast`` method (grouped estimates refined where they
  matter, with a fidelity estimate).
- :mod:`~forensic.explain.adaptive`: the ``adaptive`` method (``fast``, finished exactly when
  its fidelity is not high).
- :mod:`~forensic.explain.methods`: the registry (``fast``, ``adaptive``, ``exact``); names are
  checked there.
- :mod:`~forensic.explain.plan`: how explanations run on a model and device (precision, merged
  copy, batch sizes, lockstep streams, the lock).
- :mod:`~forensic.explain.engine`: the masked passes.
- :mod:`~forensic.explain.run`: the explanation stage (:func:`explain_report`) and :func:`stream_cam`.
- :mod:`~forensic.explain.faithfulness`: deletion and insertion AUC with a random-map baseline.
- :mod:`~forensic.explain.attention`, :mod:`~forensic.explain.similarity`: entropy and cosine.
"""

from .adaptive import AdaptiveScoreCAM
from .cam import CamFidelity, CamResult, ExactScoreCAM, ScoreCAM
from .fast import FastScoreCAM
from .methods import METHODS, check_method, get_method, method_labels, method_names
from .plan import ExplainPlan, default_method, explanation_lock, plan_for
from .run import StreamInputs, explain_report, explain_streams, stream_cam

__all__ = [
    "AdaptiveScoreCAM",
    "CamFidelity",
    "CamResult",
    "ExactScoreCAM",
    "ExplainPlan",
    "FastScoreCAM",
    "METHODS",
    "ScoreCAM",
    "StreamInputs",
    "check_method",
    "default_method",
    "explain_report",
    "explain_streams",
    "explanation_lock",
    "get_method",
    "method_labels",
    "method_names",
    "plan_for",
    "stream_cam",
]
