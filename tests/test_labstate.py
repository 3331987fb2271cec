"""Issue 24: the lab state as a code and a link (webapp.labstate): round trips, hostile codes, the page's events."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr
import pytest

from forensic.degrade import MAX_SEED
from webapp.lab import NEUTRAL, LabSettings
from webapp.labstate import MAX_CODE, RANGES, LabState, LabStateError, decode, encode, page_events

TEACHER = LabState(replace(NEUTRAL, jpeg_quality=30, seed=7), "jpeg", "fast")
SKIP = type(gr.skip())


def _controls(lab: LabSettings) -> list:
    return [lab.preset, lab.jpeg_quality, lab.gblur_sigma, lab.motion_length, lab.motion_angle, lab.gnoise_sigma,
            lab.resize_scale, lab.compound, lab.seed]


def test_the_teachers_code_is_short_readable_and_round_trips():
    code = encode(TEACHER)
    assert code == "jpeg:30,seed:7,family:jpeg,explain:fast"
    assert decode(code) == TEACHER
    assert decode(f"http://127.0.0.1:7860/?lab={code}") == TEACHER  # a whole link works too
    assert decode(f"https://x.hf.space/?__theme=dark&lab={code.replace(':', '%3A').replace(',', '%2C')}") == TEACHER
    every = LabState(LabSettings(preset="ffpp-c40", compound=0.3, gblur_sigma=1.5, motion_length=9, motion_angle=45,
                                 gnoise_sigma=12, resize_scale=0.55, jpeg_quality=5, seed=MAX_SEED), "gblur", "none")
    assert decode(encode(every)) == every
    assert encode(LabState(NEUTRAL)) == "neutral" and decode("neutral") == LabState(NEUTRAL)
    assert decode("seed:7") == LabState(replace(NEUTRAL, seed=7))  # what a code leaves out is neutral (family, explain: kept)


@pytest.mark.parametrize("code, why", [
    ("", "empty"),
    ("   ", "empty"),
    ("jpeg:abc", "not a number"),
    ("jpeg:1000", "between 5 and 100"),
    ("jpeg:nan", "between"),
    ("gblur:inf", "between"),
    ("seed:-1", "between 0 and 4294967295"),
    ("seed:1.5", "whole number"),
    ("seed:99999999999999999999999", "between"),
    ("jpeg:30,jpeg:40", "twice"),
    ("colour:red", "unknown setting"),
    ("jpeg", "not key:value"),
    ("jpeg:", "not key:value"),
    ("preset:../../etc/passwd", "unknown preset"),
    ("family:<script>alert(1)</script>", "unknown family"),
    ("explain:rm -rf", "unknown explanation method"),
    ("http://host/?other=1", "no lab= part"),
    ("jpeg:30," * 60, "at most 400"),
    ("jpeg:30\nseed:7", "not a number"),
])
def test_a_hostile_code_is_one_clear_line(code, why):
    with pytest.raises(LabStateError) as info:
        decode(code)
    message = str(info.value)
    assert why in message and "\n" not in message and len(message) < 200


def test_the_code_ranges_are_the_sliders_ranges():
    from webapp import layout

    with gr.Blocks():
        page = layout.build_page(header="", detector_ready=True, start_explain="fast", example_list=[])
    names = dict(zip(LabSettings.CONTROLS, layout.LAB_NAMES))
    for key, (field, low, high, _) in RANGES.items():
        control = page.blocks[names["compound_strength" if field == "compound" else field]]
        assert (control.minimum, control.maximum) == (low, high), key
    assert len("jpeg:30," * 60) > MAX_CODE


def test_the_page_events_link_restore_and_load():
    link, restore, load = page_events(explain_ready=True)
    code, status = link(*_controls(TEACHER.lab), "jpeg", "fast")
    assert code == encode(TEACHER) and "Copy the link" in status
    bad_seed = link(*_controls(replace(NEUTRAL, seed=1.5)), "jpeg", "fast")
    assert isinstance(bad_seed[0], SKIP) and "No link" in bad_seed[1]

    *values, status = restore(code)
    assert values == [*_controls(TEACHER.lab), "jpeg", "fast"] and "restored" in status
    *values, status = restore("jpeg:999")
    assert all(isinstance(v, SKIP) for v in values) and "Not a lab code" in status and "Nothing was changed" in status

    class Request:
        query_params = {"lab": code}

    *values, status, box = load(Request())
    assert values == [*_controls(TEACHER.lab), "jpeg", "fast"] and box == code
    Request.query_params = {}
    assert all(isinstance(v, SKIP) for v in load(Request()))  # no ?lab=: nothing changes (no change events fire)

    # without a detector, the explanation control stays as it is
    *values, _ = page_events(explain_ready=False)[1](code)
    assert isinstance(values[-1], SKIP) and values[-2] == "jpeg"
