"""The sweep's axes in each family's own units and the attention film-strip (library, figure, app)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from forensic import viz
from forensic.degrade import FAMILIES, at_strength
from forensic.degrade.families import parameter_at
from forensic.pipeline import Detector
from forensic.presets import get_preset
from forensic.sweep import attention_filmstrip, robustness_sweep, strength_for
from forensic.weights import build_model

STREAMS = ("texture", "face", "fusion")


@pytest.fixture(scope="module")
def detector():
    return Detector(build_model(get_preset("tiny-random").config, device="cpu"))


@pytest.fixture()
def forwarded(detector, count_forward):
    """The number of images each forward pass of ``detector`` saw, in order."""
    return count_forward(detector)


@pytest.fixture(scope="module")
def small(astronaut):
    return np.asarray(Image.fromarray(astronaut).resize((160, 160)))


@pytest.fixture(scope="module")
def strip(detector, small):
    return attention_filmstrip(detector, small, "jpeg", values=(90, 50, 10), method="fast", seed=1)


# ------------------------------------------------------------------------------ the family's own units
@pytest.mark.parametrize("family", FAMILIES)
def test_a_parameter_value_is_the_one_its_spec_applies(family):
    for s in (0.1, 0.5, 1.0):
        param = parameter_at(family, s)
        assert at_strength(family, s).calls[0].params[param["name"]] == param["value"]
        assert param["label"]
    assert parameter_at("jpeg", 0.0)["value"] == 100 and parameter_at("jpeg", 1.0) == {
        "name": "quality", "value": 5, "label": "JPEG quality"}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_sweep_row_carries_its_familys_parameter(detector, small, family):
    result = robustness_sweep(detector, small, family=family, strengths=(0.0, 0.6), seed=2)
    assert [r["param"] for r in result.rows] == [parameter_at(family, 0.0), parameter_at(family, 0.6)]
    assert result.rows[1]["spec"] == str(at_strength(family, 0.6))


def test_a_value_maps_back_to_a_strength_that_applies_it():
    for q in (90, 70, 50, 30, 10):
        assert parameter_at("jpeg", strength_for("jpeg", q))["value"] == q
    assert strength_for("gblur", 2.0) == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="valid families"):
        strength_for("sepia", 1)


# ------------------------------------------------------------------------------ the film-strip
def test_the_film_strip_has_the_clean_map_first_and_a_cosine_per_panel(strip):
    assert [r["param"]["value"] for r in strip.rows] == [100, 90, 50, 10]
    assert strip.rows[0]["spec"] is None and strip.rows[1]["spec"] == "jpeg:quality=90"
    assert len(strip.overlays) == len(strip.rows)
    for row, overlays in zip(strip.rows, strip.overlays):
        assert set(overlays) == set(STREAMS) == set(row["streams"])
        for name in STREAMS:
            cos = row["streams"][name]["map_cosine"]
            assert -1 - 1e-6 <= cos <= 1 + 1e-6
            assert overlays[name].dtype == np.uint8 and overlays[name].shape == (160, 160, 3)
    assert all(abs(strip.rows[0]["streams"][n]["map_cosine"] - 1.0) <= 1e-5 for n in STREAMS)  # the clean map with itself
    assert any(strip.rows[-1]["streams"][n]["map_cosine"] < 1 - 1e-4 for n in STREAMS)  # quality 10 moves some map
    assert strip.to_dict()["rows"] == strip.rows and strip.method == "fast"


def test_the_clean_image_is_analysed_once_for_every_level(detector, forwarded, small):
    attention_filmstrip(detector, small, "gblur", strengths=(0.3, 0.6, 0.9), method="fast")
    assert sum(forwarded) == 3 + 1  # three degraded copies and one clean twin, not one twin per level


def test_the_default_levels_are_jpeg_90_to_10_or_five_even_strengths(detector, small, monkeypatch):
    from forensic import sweep

    seen = []
    monkeypatch.setattr(detector, "run", lambda items, **kw: seen.append([i.degradation for i in items]) or iter(()))
    for family in ("jpeg", "gnoise"):
        with pytest.raises(IndexError):  # the fake run returns nothing; the levels asked are what counts
            sweep.attention_filmstrip(detector, small, family)
    assert seen[0] == [f"jpeg:quality={q}" for q in (90, 70, 50, 30, 10)]
    assert seen[1] == [str(at_strength("gnoise", s)) for s in (0.2, 0.4, 0.6, 0.8, 1.0)]


@pytest.mark.parametrize("kwargs, match", [({"method": "none"}, "explanation method"),
                                            ({"strengths": (0.0, 0.5)}, "above 0"),
                                            ({"strengths": (1.5,)}, r"\[0, 1\]"),
                                            ({"values": (50,), "strengths": (0.5,)}, "not both"),
                                            ({"seed": -1}, "seed")])
def test_the_film_strip_refuses_what_it_cannot_show(detector, small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_filmstrip(detector, small, "jpeg", **kwargs)


def test_the_film_strip_figure_captions_each_panel_with_its_level_and_cosine(strip):
    fig = viz.filmstrip_figure(strip, subject="astronaut")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(STREAMS) * len(strip.rows)
    top = [ax.get_title() for ax in panels[: len(strip.rows)]]
    assert top[0].startswith("clean image") and top[1].startswith("JPEG quality 90") and top[3].startswith("JPEG quality 10")
    cos = strip.rows[2]["streams"]["face"]["map_cosine"]
    assert panels[len(strip.rows) + 2].get_title() == f"map cosine to clean: {cos:.2f}"
    assert [ax.get_ylabel() for ax in panels[:: len(strip.rows)]] == [viz.STREAM_TITLES[n] for n in STREAMS]
    assert "JPEG quality" in fig.get_suptitle() and fig.get_supxlabel() == "Image: astronaut"


# ------------------------------------------------------------------------------ the app's film-strip
def test_the_apps_film_strip_shows_the_figure_and_offers_a_png(tmp_path, astronaut):
    from webapp.files import ScratchDir
    from webapp.handlers import Handlers

    path = tmp_path / "face.png"
    Image.fromarray(astronaut).resize((160, 160)).save(path)
    handlers = Handlers(Detector.from_preset("tiny-random", device="cpu"), scratch=ScratchDir(tmp_path))
    view = handlers.filmstrip_in_place(str(path), "jpeg", 3)
    assert "Film-strip" in view.sweep_status and "JPEG quality 90, 70, 50, 30, 10" in view.sweep_status
    assert "UNTRAINED" in view.filmstrip_plot.get_suptitle()
    with Image.open(view.filmstrip_png) as png:
        assert png.format == "PNG" and png.width > 1000
    assert "No image" in handlers.filmstrip_in_place(None, "jpeg", 0).sweep_status
    assert "seed" in handlers.filmstrip_in_place(str(path), "jpeg", -1).sweep_status.lower()
    offline = Handlers(None, error="Weights unavailable: test.", scratch=ScratchDir(tmp_path))
    assert "Weights unavailable" in offline.filmstrip_in_place(str(path), "jpeg", 0).sweep_status
