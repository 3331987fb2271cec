"""forensic.viz: captions a student reads correctly."""

from __future__ import annotations

from types import SimpleNamespace

from forensic.explain import CamFidelity
from forensic.viz import _cam_caption


def test_each_overlay_caption_says_how_far_to_trust_the_map():
    low = CamFidelity(expected_pearson=0.69, low_pearson=-0.06, agreement=1.0, checked=12, channels=192, rounds=2)
    assert _cam_caption(SimpleNamespace(method="fast", fidelity=low)) == "fast Score-CAM, fidelity low (expected r 0.69)"
    assert _cam_caption(SimpleNamespace(method="exact", fidelity=None)) == "exact Score-CAM"
    finished = CamFidelity(1.0, 1.0, 0.99, 192, 192, 2, fast_estimate=0.69)
    assert _cam_caption(SimpleNamespace(method="adaptive", fidelity=finished)) == (
        "adaptive Score-CAM: the exact map\n(the fast estimate, expected r 0.69, was not high)")
    assert _cam_caption(None) == ""


def test_app_overlay_captions_name_the_method_and_an_adaptive_maps_exact_finish():
    from webapp.render import overlay_caption

    def report(method, fidelity):
        cam = SimpleNamespace(method=method, fidelity=fidelity)
        stream = SimpleNamespace(cam=cam, input=SimpleNamespace(kind="center-crop"))
        return SimpleNamespace(streams={"texture": stream}, degradation=None)

    finished = CamFidelity(1.0, 1.0, 0.99, 192, 192, 2, fast_estimate=0.69)
    caption = overlay_caption(report("adaptive", finished), "texture")
    assert "adaptive Score-CAM (fast, finished exactly when unsure), finished exactly (the fast estimate, expected r 0.69, was not high)" in caption
    low = CamFidelity(0.69, -0.06, 1.0, 12, 192, 2)
    assert "estimated fidelity 0.69 (low: choose adaptive or exact for this map)" in overlay_caption(report("fast", low), "texture")
    assert "exact Score-CAM (one pass per channel, slow)" in overlay_caption(report("exact", None), "texture")
