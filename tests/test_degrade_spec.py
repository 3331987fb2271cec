"""Specs, presets, the robustness protocol and the public ``degrade`` API."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensic.degrade import (
    ALL_OPS,
    FAMILIES,
    DEGRADATION_PRESETS,
    OPS,
    DegradationSpec,
    OpCall,
    PRESET_REFERENCES,
    SpecError,
    apply_spec,
    at_strength,
    degrade,
    degrade_result,
    describe_ops,
    parse_spec,
    protocol_levels,
    psnr,
    run_spec,
)
from forensic.degrade.ops import DF_TYPES


@pytest.fixture(scope="module")
def img(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(cv2.resize(astronaut, (120, 100), interpolation=cv2.INTER_AREA))


# -- parsing ------------------------------------------------------------------------------


def test_parse_types_values_and_formats_canonically() -> None:
    spec = parse_spec("  JPEG : quality = 20 ;gblur:sigma=2;  chroma-420 ; motion-blur:angle=30,length=9;")
    assert spec.calls == (
        OpCall("jpeg", {"quality": 20}),
        OpCall("gblur", {"sigma": 2.0}),
        OpCall("chroma-420"),
        OpCall("motion-blur", {"length": 9, "angle": 30.0}),
    )
    assert isinstance(spec.calls[0].params["quality"], int) and isinstance(spec.calls[1].params["sigma"], float)
    assert str(spec) == "jpeg:quality=20;gblur:sigma=2;chroma-420;motion-blur:length=9,angle=30"


@pytest.mark.parametrize(
    "text",
    [
        "jpeg:quality=20;gblur:sigma=2",
        "gnoise:sigma=12.5,mode=correlated;resize:scale=0.333,interp=area",
        "smooth:kernel=aniso,size=9,ratio=0.3,angle=45,strength=0.25",
        "distractor-text:text=FAKE NEWS,size=0.1;poisson:peak=1000000",
        "compound:strength=0.5,op_p=0.4,cap=1",
        "prelude:cycles=3,start=jpeg,min_quality=30,strength=0.8",
        "none",
    ],
)
def test_round_trip(text: str) -> None:
    spec = parse_spec(text)
    assert str(spec) == text
    assert parse_spec(str(spec)) == spec and hash(parse_spec(text)) == hash(spec)


def test_auto_values_are_the_same_as_leaving_them_out() -> None:
    assert parse_spec("gblur:sigma=auto") == parse_spec("gblur")
    assert parse_spec("smooth:kernel=random,size=auto") == parse_spec("smooth")
    assert parse_spec("") == parse_spec("none") == DegradationSpec()


def test_presets_resolve_and_mix_with_ops() -> None:
    assert str(parse_spec("ffpp-c40;gnoise:sigma=5")) == "h264:crf=40;gnoise:sigma=5"
    assert str(parse_spec("jpeg-q20")) == "jpeg:quality=20"
    assert str(parse_spec("df-blur-3")) == "df-blur:level=3"
    assert str(parse_spec("compound-0.5")) == "compound:strength=0.5"
    assert str(parse_spec("compound-0.37")) == "compound:strength=0.37"  # any strength, not only listed ones
    assert str(parse_spec("gnoise-sigma30")) == "gnoise:sigma=30"
    assert str(parse_spec("gblur-0.0")) == "none"


def test_preset_table_is_complete() -> None:
    """The named presets exist (each one parses and applies: tests/test_registries.py)."""
    for q in (100, 80, 60, 40, 20, 10, 5):
        assert f"jpeg-q{q}" in DEGRADATION_PRESETS
    for kind in ("saturation", "contrast", "block", "noise", "blur", "pixelate", "compress"):
        for level in range(1, 6):
            assert DEGRADATION_PRESETS[f"df-{kind}-{level}"] == f"df-{kind}:level={level}"
    assert {"ffpp-c23", "ffpp-c40", "compound-0.5", "paper-train", "none"} <= set(DEGRADATION_PRESETS)
    for family in FAMILIES:
        for level in protocol_levels(family):
            assert parse_spec(f"{family}-{level.label}") == level.spec


def test_unknown_op_lists_the_valid_ops() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("jpeg:quality=20;blurr:sigma=2")
    message = str(info.value)
    assert "'blurr'" in message and "Did you mean" in message and "gblur" in message
    for name in ALL_OPS:
        assert name in message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("jpeg:qualty=20", ["unknown parameter 'qualty'", "quality (int 1..100)"]),
        ("gblur:radius=3", ["unknown parameter 'radius'", "sigma (float 0..50)", "strength (float 0..1)"]),
        ("chroma-420:x=1", ["takes no parameters"]),
        ("jpeg:quality=0", ["must be int 1..100", "got 0"]),
        ("jpeg:quality=20.5", ["must be an integer"]),
        ("gblur:sigma=two", ["must be float 0..50", "'two'"]),
        ("gblur:sigma=nan", ["finite"]),
        ("smooth:kernel=gaussian", ["one of random|aniso|gauss|box"]),
        ("jpeg:quality", ["'quality' is not param=value"]),
        ("gblur:sigma=1,sigma=2", ["given twice"]),
        ("df-blur-3:level=2", ["takes no parameters"]),
        ("compound-1.5", ["must be float 0..1"]),
        (":quality=3", ["missing operation name"]),
    ],
)
def test_bad_specs_raise_spec_error_saying_what_is_valid(text: str, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value)


# -- applying --------------------------------------------------------------------------------


def test_apply_spec_keeps_shape_and_dtype_even_after_resize(img: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    out = apply_spec(img, "resize:scale=0.3;jpeg:quality=50", rng=rng)
    assert out.shape == img.shape and out.dtype == np.uint8
    result = run_spec(img / 255.0, "resize:scale=2.0", rng=rng)
    assert result.image.shape == img.shape and result.image.dtype == np.float32
    assert [a.stage for a in result.applied] == ["op", "final"]


def test_apply_spec_runs_left_to_right_and_reports_resolved_params(img: np.ndarray) -> None:
    result = run_spec(img, "gblur:sigma=2;jpeg", rng=np.random.default_rng(5))
    assert [a.name for a in result.applied] == ["gblur", "jpeg"]
    assert 10 <= result.applied[1].params["quality"] <= 95  # auto quality drawn and recorded
    rng = np.random.default_rng(0)
    x = img.astype(np.float32) / 255
    by_hand = OPS["jpeg"](OPS["gblur"](x, rng=rng, sigma=2.0), rng=rng, quality=result.applied[1].params["quality"])
    assert np.array_equal(result.image, (by_hand * 255 + 0.5).astype(np.uint8))


def test_compound_inside_a_spec_reports_its_steps(img: np.ndarray) -> None:
    result = run_spec(img, "jpeg-q80;compound:strength=1,op_p=1", rng=np.random.default_rng(2))
    names = [a.name for a in result.applied]
    assert names[0] == "jpeg" and len(names) >= 14  # op_p=1: every regular op ran
    assert result.image.shape == img.shape


# -- the public degrade() -------------------------------------------------------------------


def test_degrade_api(img: np.ndarray) -> None:
    a = degrade(img, "jpeg:quality=20;gnoise:sigma=5", seed=1)
    assert a.shape == img.shape and a.dtype == np.uint8 and not np.array_equal(a, img)
    assert np.array_equal(a, degrade(img, parse_spec("jpeg-q20;gnoise:sigma=5"), seed=np.random.default_rng(1)))
    assert not np.array_equal(a, degrade(img, "jpeg:quality=20;gnoise:sigma=5", seed=2))
    copy = degrade(img)
    assert copy is not img and np.array_equal(copy, img)
    assert np.array_equal(degrade(img, compound=0.0, seed=3), img)
    c = degrade_result(img, compound=0.7, seed=3)
    assert np.array_equal(c.image, degrade(img, "compound:strength=0.7", seed=3))
    with pytest.raises(ValueError, match="not both"):
        degrade(img, "jpeg-q20", compound=0.5)
    with pytest.raises(ValueError, match="uint8"):
        degrade(img.astype(np.float32), "jpeg-q20")
    with pytest.raises(SpecError):
        degrade(img, "nope")


def test_package_exports_degrade_image(img: np.ndarray) -> None:
    import forensic

    expected = degrade(img, "jpeg-q20", seed=0)
    assert np.array_equal(forensic.degrade_image(img, "jpeg-q20", seed=0), expected)
    assert forensic.degrade.parse_spec is parse_spec  # the subpackage keeps its name


def test_degradation_presets_are_not_the_model_presets() -> None:
    import forensic
    import forensic.degrade

    assert "ffpp-c40" in DEGRADATION_PRESETS and "ffpp-c40" not in forensic.PRESETS
    assert set(DEGRADATION_PRESETS).isdisjoint(forensic.PRESETS)
    assert not hasattr(forensic.degrade, "PRESETS")  # one name for one thing


@pytest.mark.parametrize("module", ["forensic.degrade.spec", "forensic.degrade.protocol", "forensic.degrade.families"])
def test_each_degrade_module_imports_alone_in_a_fresh_interpreter(module: str) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_degrade_modules_import_only_at_the_top() -> None:
    # an import inside a function hid the spec <-> protocol cycle; the layers now import one way
    import ast
    from pathlib import Path

    import forensic.degrade

    root = Path(forensic.degrade.__file__).parent
    late = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                late += [f"{path.name}:{n.lineno}" for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not late, f"imports inside functions: {late}"


# -- the protocol ----------------------------------------------------------------------------


def test_protocol_levels_match_the_paper() -> None:
    assert FAMILIES == ("jpeg", "gnoise", "gblur", "motion-blur", "resize", "compound")
    jpeg = protocol_levels("jpeg")
    assert [lv.label for lv in jpeg] == ["q100", "q80", "q60", "q40", "q20", "q10", "q5"]
    assert [lv.spec.calls[0].params["quality"] for lv in jpeg] == [100, 80, 60, 40, 20, 10, 5]
    gnoise = protocol_levels("gnoise")
    assert gnoise[0].spec.is_identity
    assert [lv.spec.calls[0].params["sigma"] for lv in gnoise[1:]] == [10, 20, 30, 40, 50, 60]
    for family in ("gblur", "motion-blur", "compound"):
        levels = protocol_levels(family)
        assert [lv.label for lv in levels] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        assert levels[0].spec.is_identity and not levels[1].spec.is_identity


def _main_value(family: str, strength: float) -> float:
    params = at_strength(family, strength).calls[0].params
    key = {"jpeg": "quality", "gnoise": "sigma", "gblur": "sigma", "motion-blur": "length", "resize": "scale"}
    return params[key.get(family, "strength")]


def test_at_strength_is_monotone_and_none_at_zero() -> None:
    strengths = [i / 10 for i in range(1, 11)]
    for family in FAMILIES:
        assert at_strength(family, 0.0) is None
    quality = [_main_value("jpeg", s) for s in strengths]
    assert all(a > b for a, b in zip(quality, quality[1:])) and quality[-1] == 5
    for family, last in (("gnoise", 60.0), ("gblur", 4.0), ("motion-blur", 25), ("compound", 1.0)):
        values = [_main_value(family, s) for s in strengths]
        assert all(a < b for a, b in zip(values, values[1:])) and values[-1] == last, family
    scale = [_main_value("resize", s) for s in strengths]
    assert all(a > b for a, b in zip(scale, scale[1:])) and scale[-1] == 0.25
    with pytest.raises(ValueError, match="valid families: jpeg"):
        at_strength("blur", 0.5)
    with pytest.raises(ValueError, match="strength"):
        at_strength("jpeg", 1.2)


@pytest.mark.parametrize("family", FAMILIES)
def test_at_strength_psnr_falls(family: str, img: np.ndarray) -> None:
    seeds = range(12) if family == "compound" else range(1)
    curve = [
        np.mean([min(psnr(img, degrade(img, at_strength(family, s), seed=seed)), 60.0) for seed in seeds])
        for s in (0.2, 0.6, 1.0)
    ]
    assert curve[0] > curve[1] > curve[2], curve


def test_describe_ops_lists_ops_params_and_presets() -> None:
    text = describe_ops()
    for name, op in ALL_OPS.items():
        assert name in text
        for p in op.params:
            assert f"{p.name}: {p.range_text()}" in text
    for fragment in ("jpeg-q", "ffpp-c40", "df-blur", "compound-<S>", "[paper op 14]", "libx264 CRF 23 / 40"):
        assert fragment in text
    assert set(DF_TYPES) <= set(text.replace("{", ",").replace("}", ",").replace("-", ",").split(","))
    full = describe_ops(full_presets=True)
    assert all(name in full for name in DEGRADATION_PRESETS)
    for names, note in PRESET_REFERENCES:  # what each named preset reproduces, and how closely, in both
        assert f"  {names}\n      {note}" in text and f"  {names}\n      {note}" in full
    notes = " ".join(note for _, note in PRESET_REFERENCES)
    assert "intra frame" in notes and "to the grey level" in notes and "none on an image under 256 px" in notes


# -- limits: spec size, seeds, psnr's memory ---------------------------------------------------


def test_a_huge_spec_is_refused_at_once_with_a_short_message(img: np.ndarray) -> None:
    import time

    from forensic.degrade import MAX_SPEC_CHARS
    from tests import awkward

    text = awkward.long_spec(8500)  # ~136 KB; applying it took minutes
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        degrade(img, text)
    assert time.perf_counter() - start < 5  # refused on its length: applying it took minutes
    message = str(info.value)
    assert f"{len(text)} characters long, over the limit of {MAX_SPEC_CHARS}" in message and len(message) < 200


def test_operation_count_is_limited_presets_included() -> None:
    from forensic.degrade import MAX_SPEC_OPS

    assert len(parse_spec(";".join(["jpeg-q50"] * MAX_SPEC_OPS)).calls) == MAX_SPEC_OPS
    for text in (";".join(["gblur"] * (MAX_SPEC_OPS + 1)), ";".join(["df-blur-3"] * (MAX_SPEC_OPS + 1))):
        with pytest.raises(SpecError, match=f"more than {MAX_SPEC_OPS} operations"):
            parse_spec(text)
    parsed = parse_spec(";".join(["gblur"] * MAX_SPEC_OPS))
    with pytest.raises(SpecError, match="more than"):  # specs built in code are held to it too
        run_spec(np.zeros((16, 16, 3), np.uint8), parsed + parse_spec("jpeg"), rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "text",
    ["x" * 1900, "jpeg:quality=" + "9" * 1900, "jpeg:" + "q" * 1900 + "=1", "gblur:sigma=1," + "y" * 1900, ";:" + "z" * 1900],
)
def test_errors_quote_only_a_short_piece_of_the_input(text: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert len(message) < 800 and text[:100] not in message and "characters)" in message


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70, 1.5, 2.0, "3", True, None])
def test_seeds_outside_the_range_are_refused_in_one_line(img: np.ndarray, seed) -> None:
    from forensic.degrade import MAX_SEED

    with pytest.raises(ValueError) as info:
        degrade_result(img, "gnoise:sigma=5", seed=seed)
    message = str(info.value)
    assert message.startswith(f"the seed must be a whole number from 0 to {MAX_SEED}, got ")
    assert "\n" not in message and len(message) < 120


def test_seed_range_ends_are_accepted(img: np.ndarray) -> None:
    from forensic.degrade import MAX_SEED, check_seed

    assert check_seed(np.int64(7)) == 7 and check_seed(MAX_SEED) == MAX_SEED
    top = degrade(img, "gnoise:sigma=5", seed=MAX_SEED)
    assert np.array_equal(top, degrade(img, "gnoise:sigma=5", seed=np.random.default_rng(MAX_SEED)))
    assert not np.array_equal(top, degrade(img, "gnoise:sigma=5", seed=0))
    with pytest.raises(ValueError, match="got a 201-bit number"):
        check_seed(2**200)


def test_psnr_in_blocks_equals_the_whole_image_formula() -> None:
    rng = np.random.default_rng(5)
    for shape in [(2300, 700, 3), (17, 33, 3), (64, 64)]:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a.astype(np.int16) + rng.integers(-9, 10, shape), 0, 255).astype(np.uint8)
        for x, y, peak in ((a, b, 255.0), (a / 255.0, b / 255.0, 1.0)):
            whole = 10 * np.log10(peak**2 / np.mean((x.astype(np.float64) - y) ** 2))
            assert psnr(x, y) == pytest.approx(whole, abs=1e-9)
    assert psnr(a, a) == float("inf")
