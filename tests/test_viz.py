"""forensic.viz: captions a student reads correctly."""

from __future__ import annotations

from types import SimpleNamespace

from forensic.explain import CamFidelity
from forensic.viz import _cam_caption


def test_each_overlay_caption_says_how_far_to_trust_the_map():
    low = CamFidelity(expected_pearson=0.69, low_pearson=-0.06, agreement=1.0, checked=12, channels=192, rounds=2)
    assert _cam_caption(SimpleNamespace(method="fast", fidelity=low)) == "fast Score-CAM, fidelity low (expected r 0.69)"
    assert _cam_caption(SimpleNamespace(method="exact", fidelity=None)) == "exact Score-CAM"
    assert _cam_caption(None) == ""
