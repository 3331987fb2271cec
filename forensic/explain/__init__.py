"""Explanations: Score-CAM methods behind one interface, one engine that runs them, and map metrics.

- :mod:`~forensic.explain.types`: what the rest exchanges: the method interface
  (:class:`CamMethod`), requests and replies, masks, inputs, results (:class:`CamResult`,
  :class:`CamFidelity`). It imports no other explanation module.
- :mod:`~forensic.explain.exact`, :mod:`~forensic.explain.fast`, :mod:`~forensic.explain.adaptive`:
  the methods (``exact``: every channel; ``fast``: grouped estimates refined where they matter,
  with a fidelity estimate; ``adaptive``: ``fast``, finished exactly when its fidelity is not high).
- :mod:`~forensic.explain.methods`: the registry (``fast``, ``adaptive``, ``exact``); names are
  checked there.
- :mod:`~forensic.explain.plan`: how explanations run on a model and device (precision, merged
  copy, batch sizes, lockstep streams, the lock).
- :mod:`~forensic.explain.merged`: the merged stream copy the plan may run on.
- :mod:`~forensic.explain.engine`: the one execution path (activations, masks, masked passes, maps).
- :mod:`~forensic.explain.run`: the entry points, :func:`explain_streams` and the explanation stage
  :func:`explain_report`.
- :mod:`~forensic.explain.faithfulness`: deletion and insertion AUC with a random-map baseline.
- :mod:`~forensic.explain.attention`, :mod:`~forensic.explain.similarity`: entropy and cosine.
"""

from .methods import METHODS, check_method, get_method, method_labels, method_names
from .plan import ExplainPlan, default_method, explanation_lock, plan_for
from .run import explain_report, explain_streams
from .types import CamFidelity, CamMethod, CamResult, StreamInputs

__all__ = [
    "CamFidelity",
    "CamMethod",
    "CamResult",
    "ExplainPlan",
    "METHODS",
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
]
