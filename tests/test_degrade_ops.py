"""Single degradation operations: the registry, the op contract, and measured effects."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensic.degrade.ops import OPS, PAPER_OPS, AppliedOp, SpecError, as_float, as_uint8, psnr

STRENGTHS = (0.0, 0.5, 1.0)


@pytest.fixture(scope="module")
def img(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut at 128x128, float32 in [0, 1]."""
    return as_float(cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA))


def _run(name: str, x: np.ndarray, seed: int = 0, **params) -> np.ndarray:
    return OPS[name](x, rng=np.random.default_rng(seed), **params)


def _psnr_restored(x: np.ndarray, y: np.ndarray) -> float:
    if y.shape != x.shape:  # resize, prelude: compare after scaling back, as the spec layer does
        y = np.clip(cv2.resize(y, (x.shape[1], x.shape[0]), interpolation=cv2.INTER_CUBIC), 0, 1)
    return psnr(x, y)


def _blockiness(x: np.ndarray) -> float:
    """Mean |step| across 8-pixel block boundaries divided by the mean |step| inside blocks."""
    luma = x @ np.float32([0.299, 0.587, 0.114])
    ratios = []
    for d in (np.abs(np.diff(luma, axis=1)), np.abs(np.diff(luma, axis=0)).T):
        at_boundary = (np.arange(d.shape[1]) % 8) == 7  # step between pixel 8k+7 and 8k+8
        ratios.append(d[:, at_boundary].mean() / d[:, ~at_boundary].mean())
    return float(np.mean(ratios))


# -- registry -------------------------------------------------------------------------------


def test_registry_lists_every_documented_operation() -> None:
    expected = {
        "jpeg", "gblur", "motion-blur", "gnoise", "resize", "aniso-blur", "box-blur", "speckle", "poisson",
        "salt-pepper", "grayscale", "color-cast", "chroma-420", "posterize", "brightness-contrast",
        "chromatic-aberration", "moire", "glitch", "vignette", "distractor-text", "distractor-patch",
        "df-saturation", "df-contrast", "df-block", "df-noise", "df-blur", "df-pixelate", "df-compress",
        "smooth", "noise", "color", "distractor", "h264", "prelude",
    }  # fmt: skip
    assert expected <= set(OPS)  # each one's name and description: tests/test_registries.py


def test_paper_ops_are_the_15_of_the_table_in_order() -> None:
    assert PAPER_OPS == (
        "smooth", "motion-blur", "noise", "resize", "color", "gnoise", "jpeg", "chroma-420", "posterize",
        "brightness-contrast", "chromatic-aberration", "moire", "glitch", "vignette", "distractor",
    )  # fmt: skip


#: module of forensic.degrade.ops -> the group of every operation it defines, in registration order
FAMILY_MODULES = {
    "blurs": "blur",
    "noises": "noise",
    "geometry": "geometry",
    "compression": "compression",
    "colours": "color",
    "artefacts": "artifact",
    "distractors": "distractor",
    "deeperforensics": "deeperforensics",
}


def test_the_registry_is_exactly_the_family_modules_operations_in_family_order() -> None:
    import importlib

    from forensic.degrade.ops import OpInfo

    found: dict[str, str] = {}
    for module_name, group in FAMILY_MODULES.items():
        module = importlib.import_module(f"forensic.degrade.ops.{module_name}")
        defined = [v for v in vars(module).values() if isinstance(v, OpInfo) and v.fn.__module__ == module.__name__]
        assert defined, f"{module_name} defines no operation"
        for op in defined:
            assert op.group == group and OPS[op.name] is op, op.name  # registered once, under its name
            found[op.name] = module_name
    assert set(found) == set(OPS)
    # OPS (and so --list and the UI) lists family after family, in the package's import order
    assert list(dict.fromkeys(op.group for op in OPS.values())) == list(FAMILY_MODULES.values())


def test_shared_machinery_is_public() -> None:
    from forensic.degrade import compound, ops
    from forensic.degrade.ops import INTERPOLATIONS, Params, make_op, resize_to

    x = np.zeros((10, 6, 3), np.float32)
    assert resize_to(x, (5, 3), "area").shape == (5, 3, 3) and resize_to(x, (10, 6), "cubic") is x
    assert compound._INTERPS == tuple(INTERPOLATIONS) == ("nearest", "linear", "cubic", "area")
    op = make_op("half", "halve", [ops.strength_param()])(lambda img, p: img * (1 - p.strength))
    out, resolved = op.apply(np.ones((4, 4, 3), np.float32), rng=np.random.default_rng(0), params={"strength": 0.25})
    assert np.allclose(out, 0.75) and resolved == {"strength": 0.25} and "half" not in OPS  # make_op does not register
    assert not hasattr(ops, "_Params") and isinstance(Params, type)
    assert [OPS[n].paper_index for n in PAPER_OPS] == list(range(15))
    without_strength = {n for n in PAPER_OPS if not OPS[n].has_strength}
    assert without_strength == {"jpeg", "chroma-420", "distractor"}  # the ops the paper gives no strength
    assert OPS["prelude"].has_strength and {"cycles", "start", "min_quality"} <= set(OPS["prelude"].param_names)


@pytest.mark.parametrize("name", sorted(OPS))
def test_param_declarations_are_consistent(name: str) -> None:
    for p in OPS[name].params:
        assert p.help, (name, p.name)
        if p.choices:
            assert p.type is str and p.default in p.choices
        elif p.default is not None and p.type is not str:
            assert p.min <= p.default <= p.max, (name, p.name)


# -- the op contract ----------------------------------------------------------------------


@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_keeps_dtype_range_shape_and_input(name: str, strength: float, img: np.ndarray) -> None:
    before = img.copy()
    params = {"strength": strength} if OPS[name].has_strength else {}
    out, resolved = OPS[name].apply(img, rng=np.random.default_rng(3), params=params)
    assert out.dtype == np.float32 and out.ndim == 3 and out.shape[2] == 3
    if name not in {"resize", "prelude"}:
        assert out.shape == img.shape
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(img, before), "ops must not modify their input"
    assert set(resolved) - set(OPS[name].param_names) <= {"crf", "jpeg_quality", "steps"}  # informative extras


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_runs_on_a_tiny_odd_image(name: str) -> None:
    x = np.random.default_rng(0).random((13, 17, 3), dtype=np.float32)
    params = {"strength": 1.0} if OPS[name].has_strength else {}
    out = OPS[name](x, rng=np.random.default_rng(0), **params)
    assert out.dtype == np.float32 and (name in {"resize", "prelude"} or out.shape == x.shape)


@pytest.mark.parametrize("name", sorted(OPS))
def test_same_seed_same_output(name: str, img: np.ndarray) -> None:
    assert np.array_equal(_run(name, img, seed=11), _run(name, img, seed=11))


def test_ops_reject_non_float_images_and_unknown_params(img: np.ndarray) -> None:
    with pytest.raises(TypeError, match="float32"):
        OPS["gblur"](as_uint8(img), rng=np.random.default_rng(0), sigma=1.0)
    with pytest.raises(SpecError, match=r"quality \(int 1\.\.100\)"):
        OPS["jpeg"](img, rng=np.random.default_rng(0), qualty=20)
    with pytest.raises(SpecError, match="must be float 0..50"):
        OPS["gblur"](img, rng=np.random.default_rng(0), sigma=-1)


def test_uint8_float_conversion_is_exact() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(as_uint8(as_float(values)), values)


# -- severity grows with strength / the main parameter -------------------------------------

_STRENGTH_CASES = [
    ("smooth", {"kernel": "gauss"}),
    ("smooth", {"kernel": "box"}),
    ("smooth", {"kernel": "aniso"}),
    ("gblur", {}),
    ("aniso-blur", {}),
    ("box-blur", {}),
    ("motion-blur", {}),
    ("noise", {"kind": "speckle"}),
    ("noise", {"kind": "poisson"}),
    ("noise", {"kind": "salt-pepper"}),
    ("speckle", {}),
    ("poisson", {}),
    ("salt-pepper", {}),
    ("gnoise", {"mode": "pixel"}),
    ("gnoise", {"mode": "shared"}),
    ("gnoise", {"mode": "correlated"}),
    ("resize", {"direction": "down", "interp": "area"}),
    ("prelude", {"cycles": 1, "start": "resize", "min_quality": 95}),
    ("color", {"mode": "cast"}),
    ("color-cast", {}),
    ("posterize", {}),
    ("brightness-contrast", {}),
    ("chromatic-aberration", {}),
    ("moire", {}),
    ("glitch", {}),
    ("vignette", {}),
]


def test_every_op_with_a_strength_is_covered_below() -> None:
    covered = {name for name, _ in _STRENGTH_CASES}
    assert covered == {name for name, op in OPS.items() if op.has_strength}


@pytest.mark.parametrize(("name", "fixed"), _STRENGTH_CASES, ids=[f"{n}-{'-'.join(map(str, f.values()))}" for n, f in _STRENGTH_CASES])
def test_psnr_falls_as_strength_rises(name: str, fixed: dict, img: np.ndarray) -> None:
    seeds = range(6)
    curve = [
        np.mean([_psnr_restored(img, _run(name, img, seed, strength=s, **fixed)) for seed in seeds])
        for s in (0.2, 0.5, 0.9)
    ]
    assert curve[0] > curve[1] > curve[2], curve


@pytest.mark.parametrize(
    ("name", "param", "values"),
    [
        ("jpeg", "quality", (90, 50, 10)),
        ("h264", "crf", (23, 32, 40)),
        ("gnoise", "sigma", (5.0, 20.0, 50.0)),
        ("gblur", "sigma", (0.5, 1.5, 3.0)),
        ("box-blur", "size", (3, 7, 15)),
        ("motion-blur", "length", (3, 9, 21)),
        ("posterize", "levels", (64, 16, 4)),
        ("salt-pepper", "amount", (0.01, 0.05, 0.2)),
        ("resize", "scale", (0.8, 0.5, 0.25)),
        ("moire", "alpha", (0.05, 0.1, 0.3)),
    ],
)
def test_psnr_falls_as_main_parameter_grows(name: str, param: str, values: tuple, img: np.ndarray) -> None:
    curve = [_psnr_restored(img, _run(name, img, 0, **{param: v})) for v in values]
    assert curve[0] > curve[1] > curve[2], curve


@pytest.mark.parametrize("kind", ["saturation", "contrast", "block", "noise", "blur", "pixelate", "compress"])
def test_deeperforensics_levels_get_worse(kind: str, img: np.ndarray) -> None:
    if kind == "block":  # the reference draws min(H, W) // 256 * N blocks: none on the 128 px image
        img = cv2.resize(img, (256, 256), interpolation=cv2.INTER_CUBIC)
    curve = [np.mean([psnr(img, _run(f"df-{kind}", img, seed, level=lv)) for seed in range(3)]) for lv in range(1, 6)]
    assert all(a > b for a, b in zip(curve, curve[1:])), curve


# -- what each op really does ---------------------------------------------------------------


def test_jpeg_really_reencodes_with_8x8_blocks(astronaut: np.ndarray) -> None:
    x = as_float(cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA))
    before = _blockiness(x)
    after = _blockiness(_run("jpeg", x, quality=10))
    assert 0.85 < before < 1.15
    assert after > 1.5 * before
    assert psnr(x, _run("jpeg", x, quality=95)) > 33.0  # and a high quality stays close


def test_chroma_420_keeps_luma_and_blurs_chroma(img: np.ndarray) -> None:
    out = _run("chroma-420", img)
    ycc_in, ycc_out = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb), cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)
    assert np.abs(ycc_in[..., 0] - ycc_out[..., 0]).mean() < 2e-3
    assert np.abs(ycc_in[..., 1:] - ycc_out[..., 1:]).mean() > 2e-3


def test_grayscale_and_df_saturation_5_remove_colour(img: np.ndarray) -> None:
    grey = _run("grayscale", img)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() < 1e-6
    desat = _run("df-saturation", img, level=5)  # chroma factor 0.0
    assert np.abs(desat[..., 0] - desat[..., 2]).max() < 2e-3


def test_gaussian_noise_has_the_requested_sigma_and_structure() -> None:
    flat = np.full((128, 128, 3), 0.5, dtype=np.float32)
    pixel = _run("gnoise", flat, sigma=10.0) - 0.5
    assert abs(pixel.std() * 255 - 10.0) < 0.4
    assert abs(np.corrcoef(pixel[..., 0].ravel(), pixel[..., 1].ravel())[0, 1]) < 0.05
    shared = _run("gnoise", flat, sigma=10.0, mode="shared") - 0.5
    assert np.allclose(shared[..., 0], shared[..., 2])
    corr = _run("gnoise", flat, sigma=10.0, mode="correlated") - 0.5
    assert abs(corr.std() * 255 - 10.0) < 1.0
    neighbour = np.corrcoef(corr[:, :-1, 0].ravel(), corr[:, 1:, 0].ravel())[0, 1]
    assert neighbour > 0.5


def test_salt_pepper_hits_the_requested_fraction() -> None:
    flat = np.full((200, 200, 3), 0.5, dtype=np.float32)
    out = _run("salt-pepper", flat, amount=0.2)
    hit = (out[..., 0] != 0.5).mean()
    assert abs(hit - 0.2) < 0.01
    assert abs((out[..., 0] == 1.0).mean() - 0.1) < 0.01  # half salt, half pepper


def test_resize_scale_and_vignette_geometry(img: np.ndarray) -> None:
    assert _run("resize", img, scale=0.5).shape == (64, 64, 3)
    assert _run("resize", img, scale=2.0, interp="nearest").shape == (256, 256, 3)
    flat = np.ones((101, 101, 3), dtype=np.float32)
    vig = _run("vignette", flat, amount=0.6)
    assert vig[50, 50, 0] == pytest.approx(1.0) and vig[0, 0, 0] == pytest.approx(0.4, abs=0.01)
    assert np.array_equal(_run("moire", img, alpha=0.0), img)


def test_motion_blur_smears_along_its_angle() -> None:
    dot = np.zeros((41, 41, 3), dtype=np.float32)
    dot[20, 20] = 1.0
    out = _run("motion-blur", dot, length=15, angle=0.0)[..., 0]
    assert (out[20] > 1e-3).sum() >= 13 and (out[:, 20] > 1e-3).sum() <= 3  # a horizontal streak


def test_distractors_change_a_local_region(img: np.ndarray) -> None:
    for name, params in (("distractor-text", {"text": "HELLO"}), ("distractor-patch", {"size": 0.2})):
        changed = (np.abs(_run(name, img, 5, **params) - img).max(axis=2) > 1e-3).mean()
        assert 0.002 < changed < 0.3, (name, changed)


def test_df_block_draws_grey_8x8_blocks() -> None:
    black = np.zeros((256, 256, 3), dtype=np.float32)
    grey_px = [(np.abs(_run("df-block", black, 0, level=lv)[..., 0] - 128 / 255) < 1e-6).sum() for lv in (1, 5)]
    assert 0 < grey_px[0] <= 16 * 64 < grey_px[1] <= 80 * 64


def test_applied_op_text_and_resolved_params(img: np.ndarray) -> None:
    _, resolved = OPS["motion-blur"].apply(img, rng=np.random.default_rng(0), params={"strength": 0.5})
    assert list(resolved) == ["length", "angle", "strength"]  # declaration order
    assert resolved["length"] % 2 == 1 and 3 <= resolved["length"] <= 6
    assert str(AppliedOp("gblur", {"sigma": 1.23456})) == "gblur:sigma=1.235"
