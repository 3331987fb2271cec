"""One test per registry entry, read from the registry at collection time: a new degradation
operation, degradation preset, model preset, explanation method or analysis study is tested
without editing a test.

The per-family behaviour (what an operation does, how a method scores) is tested next to each
family; these are the contracts every entry keeps.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from analysis.studies import REGISTRY as STUDIES
from analysis.studies import get_study
from forensic.degrade import ALL_OPS, DEGRADATION_PRESETS, MAX_SPEC_OPS, degrade, parse_spec
from forensic.explain import StreamInputs, explain_streams, method_names
from forensic.model import ForensicModel
from forensic.presets import PRESETS, get_preset
from forensic.streams import prepare_input, to_tensor

#: the option groups a study may declare (analysis.study.Study.options)
STUDY_OPTION_GROUPS = {"families", "sweep", "cam"}
#: where a model preset's default weights may come from (forensic.presets.Preset.weights)
WEIGHT_SOURCES = ("paper-seed", "hf-hub:")


@pytest.fixture(scope="module")
def photo(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut at 64x48 (not square: a spec keeps both sides), RGB uint8."""
    return np.ascontiguousarray(cv2.resize(astronaut, (48, 64), interpolation=cv2.INTER_AREA))


# ------------------------------------------------------------------------------ degradation operations
@pytest.mark.parametrize("name", list(ALL_OPS))
def test_every_operation_with_auto_parameters_keeps_the_image_format_and_is_seeded(name: str, photo: np.ndarray) -> None:
    """Each operation (and ``compound``) as a one-step spec, every parameter auto, on a real photo."""
    before = photo.copy()
    out = degrade(photo, name, seed=7)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(photo, before)  # the input is never modified
    assert np.array_equal(degrade(photo, name, seed=7), out)  # the same seed, the same bytes
    assert ALL_OPS[name].description and name == name.lower() and " " not in name  # as a spec spells it


# ------------------------------------------------------------------------------ degradation presets
@pytest.mark.parametrize("name", list(DEGRADATION_PRESETS))
def test_every_degradation_preset_parses_and_applies(name: str, photo: np.ndarray) -> None:
    text = DEGRADATION_PRESETS[name]
    assert parse_spec(name) == parse_spec(text)  # the name stands for its spec
    assert len(text) < 200 and len(parse_spec(name).calls) <= MAX_SPEC_OPS  # far inside a spec's limits
    out = degrade(photo, name, seed=3)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(degrade(photo, name, seed=3), out)
    if parse_spec(text).is_identity:
        assert np.array_equal(out, photo)  # the clean presets (none, ffpp-raw, strength 0) change nothing


# ------------------------------------------------------------------------------ model presets
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_model_preset_is_complete_and_builds(name: str) -> None:
    """A preset names itself, says who it is for and where its weights come from, and its
    architecture builds (on the meta device: no memory, no download)."""
    preset = get_preset(name)
    config = preset.config
    assert preset.name == name == config.preset and config.description and preset.hardware
    assert preset.weights is None or preset.weights.startswith(WEIGHT_SOURCES), preset.weights
    assert not (config.untrained and preset.weights)  # an untrained preset has nothing to download
    streams = config.stream_names
    assert streams and len(set(streams)) == len(streams)
    model = ForensicModel(config, device="meta")
    assert model.stream_names == streams and all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.config.untrained])
def test_every_untrained_preset_runs_each_stream(name: str) -> None:
    """The untrained presets are their random initialisation: they build and run here, in float32."""
    config = get_preset(name).config
    model = ForensicModel.random(config, seed=0).eval()
    gen = torch.Generator().manual_seed(0)
    inputs = {s: torch.randn(1, 3, config.stream(s).size, config.stream(s).size, generator=gen) for s in config.stream_names}
    with torch.no_grad():
        outputs = model.forward_streams(inputs)
    assert set(outputs) == set(config.stream_names)
    for stream, out in outputs.items():
        assert out.logits.shape[0] == 1 and torch.isfinite(out.logits).all(), stream


# ------------------------------------------------------------------------------ explanation methods
@pytest.fixture(scope="module")
def tiny() -> ForensicModel:
    return ForensicModel.random(get_preset("tiny-random").config, seed=0).eval()


@pytest.fixture(scope="module")
def tiny_inputs(tiny: ForensicModel, astronaut: np.ndarray) -> dict[str, StreamInputs]:
    """The astronaut as the texture stream sees it (252 px)."""
    cfg = tiny.config.stream("texture")
    return {"texture": StreamInputs(to_tensor(prepare_input(astronaut, cfg).pixels, cfg))}


@pytest.mark.usefixtures("one_torch_thread")  # exact Score-CAM is 193 passes: ~1 s on one thread, 10x more on two busy cores
@pytest.mark.parametrize("method", method_names())
def test_every_explanation_method_gives_a_map_of_each_input(method: str, tiny: ForensicModel, tiny_inputs) -> None:
    cams = explain_streams(tiny, tiny_inputs, method=method)
    assert set(cams) == set(tiny_inputs)
    for name, cam in cams.items():
        size = tuple(tiny_inputs[name].x.shape[-2:])
        assert cam.method == method and cam.forward_passes > 0, name
        assert cam.input_map.shape == size and cam.input_map.dtype == np.float32, name
        assert np.isfinite(cam.input_map).all() and cam.input_map.min() >= 0.0, name
        assert np.isfinite(cam.grid_map).all() and cam.grid_map.min() >= 0.0, name
        assert cam.input_map.max() > 0.0, name  # a map, not nothing


# ------------------------------------------------------------------------------ analysis studies
@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_declares_what_it_writes_and_takes(name: str, tmp_path: Path) -> None:
    study = get_study(name)
    assert study.name == name and name == name.lower() and " " not in name
    assert study.title and study.summary and callable(study.compute)
    assert study.csv.endswith(".csv") and study.columns and len(set(study.columns)) == len(study.columns)
    assert set(study.options) <= STUDY_OPTION_GROUPS, study.options
    assert not study.needs_cam or "cam" in study.options  # it must be able to name a method
    # the description, whether fixed or written from the analysis it runs in
    context = SimpleNamespace(
        out=tmp_path, samples=(), cam_samples=(), streams=("texture",), maps_dir=tmp_path, cam_label="fast/g4",
        robustness_conditions=(), sweep_conditions=(),
    )
    description = study.describe(context)
    assert isinstance(description, str) and len(description) > 20


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_is_a_command_taking_its_options(name: str) -> None:
    """``python -m analysis NAME`` exists and takes its option groups; ``--cam none`` is refused by
    a study that needs Score-CAM."""
    from analysis.__main__ import build_parser

    study = get_study(name)
    parser = build_parser()
    base = [name, "--data", "d", "--out", "o", "--preset", "tiny-random"]
    assert parser.parse_args(base).study == name
    flags = {"families": ["--levels", "q100"], "sweep": ["--strengths", "0,1"], "cam": ["--cam", method_names()[0]]}
    for group, extra in flags.items():
        if group in study.options:
            parser.parse_args([*base, *extra])
        else:
            with pytest.raises(SystemExit):
                parser.parse_args([*base, *extra])
    if "cam" in study.options:
        if study.needs_cam:
            with pytest.raises(SystemExit):
                parser.parse_args([*base, "--cam", "none"])
        else:
            assert parser.parse_args([*base, "--cam", "none"]).cam == "none"


def test_the_registries_are_not_empty() -> None:
    """A registry that lost its entries would make the tests above vanish, not fail."""
    assert len(ALL_OPS) > 30 and len(DEGRADATION_PRESETS) > 50 and len(PRESETS) >= 2
    assert len(method_names()) >= 2 and len(STUDIES) >= 5
