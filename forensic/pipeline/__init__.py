"""The analysis pipeline: work items in, complete reports out, one module per stage.

::

    items       WorkItem: a source and what to do with it (degradation, seed, clean twin, explanation)
    loading     load       item -> Loaded            decode safely, then the optional degradation (CPU pool)
    locating    locate     [Loaded] -> [FaceResult]  MTCNN, batched across images (the model's device)
    preparing   prepare    Loaded + face -> Prepared what each stream sees (CPU)
    forwarding  forward    [Prepared] -> Forwarded   one batched pass of every stream (the device)
    assembling  assemble   Prepared + outputs -> Report   the vote, calibration, stability (CPU)
    explaining  explain    Report + pass -> Report   Score-CAM and its measures (the device)
    overlap     staged_map                           the CPU stages overlapped with the device
    flow        run_items                            items -> reports in input order; clean twins once per source
    detector    Detector                             loads a model and composes the above

Everything outside this package imports from ``forensic.pipeline`` (this module's ``__all__``),
never from its modules, and nothing outside it re-implements a stage (``tests/test_layering.py``).
"""

from __future__ import annotations

from .assembling import assemble, stability
from .detector import Detector, Progress, resolve_dtype
from .explaining import explain
from .forwarding import Forwarded, HostOutput, forward, to_host
from .items import WorkItem
from .loading import Loaded, degrade, load
from .locating import locate
from .overlap import staged_map
from .preparing import Prepared, prepare
from .timing import timed

__all__ = [
    "Detector",
    "WorkItem",
    "Progress",
    "resolve_dtype",
    "Loaded",
    "Prepared",
    "Forwarded",
    "HostOutput",
    "load",
    "degrade",
    "locate",
    "prepare",
    "forward",
    "to_host",
    "assemble",
    "stability",
    "explain",
    "staged_map",
    "timed",
]
