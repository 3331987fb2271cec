"""forensic.viz: captions a student reads correctly."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from forensic import viz
from forensic.explain import CamFidelity
from forensic.viz import cam_caption


def test_each_overlay_caption_says_how_far_to_trust_the_map():
    low = CamFidelity(expected_pearson=0.69, low_pearson=-0.06, agreement=1.0, checked=12, channels=192, rounds=2)
    assert cam_caption(SimpleNamespace(method="fast", fidelity=low)) == "fast Score-CAM, fidelity low (expected r 0.69)"
    assert cam_caption(SimpleNamespace(method="exact", fidelity=None)) == "exact Score-CAM"
    finished = CamFidelity(1.0, 1.0, 0.99, 192, 192, 2, fast_estimate=0.69)
    assert cam_caption(SimpleNamespace(method="adaptive", fidelity=finished)) == (
        "adaptive Score-CAM: the exact map\n(the fast estimate, expected r 0.69, was not high)")
    assert cam_caption(None) == ""


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


def _entropy_report(cam: bool):
    def stream(att, cam_ent):
        return SimpleNamespace(attention=SimpleNamespace(normalized=att),
                               cam_entropy=SimpleNamespace(normalized=cam_ent) if cam else None)

    return SimpleNamespace(streams={"texture": stream(0.9, 0.6), "face": stream(0.7, 0.5), "fusion": stream(0.8, 0.4)})


def test_the_entropy_figure_names_its_image_writes_its_values_and_keeps_its_legend_off_the_bars():
    fig = viz.entropy_figure(_entropy_report(cam=True), subject="astronaut.png")
    fig.canvas.draw()
    ax = fig.axes[0]
    assert [round(b.get_height(), 6) for b in ax.patches] == [0.9, 0.7, 0.8, 0.6, 0.5, 0.4]  # attention, then Score-CAM
    assert {t.get_text() for t in ax.texts} == {"0.90", "0.70", "0.80", "0.60", "0.50", "0.40"}
    assert ax.get_ylim()[0] == 0 and ax.get_ylabel() == viz.ENTROPY_LABEL
    assert fig.get_supxlabel() == "Image: astronaut.png" and "attention" in fig.get_suptitle()
    legend = ax.get_legend().get_window_extent()
    assert not any(b.get_window_extent().overlaps(legend) for b in ax.patches)
    plain = viz.entropy_figure(_entropy_report(cam=False), title="t")
    labels = [t.get_text() for t in plain.axes[0].get_legend().get_texts()]
    assert len(plain.axes[0].patches) == 3 and labels[1] == "Score-CAM: explanations off" and plain.get_suptitle() == "t"


def test_the_similarity_figure_writes_the_values_and_says_what_the_colours_mean():
    matrix = SimpleNamespace(names=("texture", "face"), values=np.array([[1.0, 0.25], [0.25, 1.0]]))
    fig = viz.similarity_figure(matrix, title="How alike?", subject="x.png")
    assert {t.get_text() for t in fig.axes[0].texts} == {"1.00", "0.25"}
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["-1 opposite", "0 unrelated", "1 the same"]
    assert fig.get_suptitle() == "How alike?" and fig.get_supxlabel() == "Image: x.png"


def test_the_sweep_figure_starts_at_zero_with_its_legend_outside_the_panels():
    rows = [{"strength": s / 10, "prob_fake": 0.6, "streams": {n: {"prob_fake": 0.5 + s / 40, "attention_entropy": 0.9,
                                                                   "stability": 1 - s / 50} for n in ("texture", "face", "fusion")}}
            for s in range(11)]
    fig = viz.sweep_figure(rows, title="t")
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    assert [ax.get_ylim()[0] for ax in fig.axes] == [0, 0, 0]
    assert not any(ax.get_window_extent().overlaps(legend) for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["texture", "face", "fusion", "vote (0.1 grid)"]


def test_the_sweep_figures_x_axis_is_the_familys_own_parameter_stronger_to_the_right():
    from forensic.degrade.families import SWEEP_STRENGTHS, parameter_at

    rows = [{"strength": s, "param": parameter_at("jpeg", s), "prob_fake": 0.6,
             "streams": {n: {"prob_fake": 0.5, "attention_entropy": 0.9, "stability": 1 - s / 5} for n in ("texture", "face", "fusion")}}
            for s in SWEEP_STRENGTHS]
    fig = viz.sweep_figure(rows, title="t")
    for ax in fig.axes:
        assert ax.get_xlabel().startswith("JPEG quality") and "stronger" in ax.get_xlabel()
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks[0] == "100" and ticks[-1] == "5" and list(ax.get_xticks()) == list(SWEEP_STRENGTHS)
    old = [{k: v for k, v in r.items() if k != "param"} for r in rows]  # rows without the parameter: strengths
    assert viz.sweep_figure(old).axes[0].get_xlabel().startswith("strength")
