"""config.json comes from outside: every field is checked on load, and a bad one is named in one line."""

from __future__ import annotations

import copy
import json

import pytest

from forensic.config import PRESET_NAMES, ConfigError, ModelConfig
from forensic.presets import PRESETS, get_preset

TINY = get_preset("tiny-random").config.to_dict()


def _with(dotted: str, value) -> dict:
    """The tiny-random config as JSON data with one field set (``None`` path parts index lists)."""
    data = copy.deepcopy(TINY)
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[int(last) if isinstance(node, list) else last] = value
    return data


def _without(dotted: str) -> dict:
    data = copy.deepcopy(TINY)
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    del node[last]
    return data


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_the_checks(name):
    config = get_preset(name).config
    assert ModelConfig.from_dict(json.loads(config.to_json())) == config


def test_a_config_may_name_exactly_the_presets_there_are():
    assert tuple(PRESETS) == PRESET_NAMES


# (config data, the field the error must name, a piece of the message)
BAD = {
    "config is a list": ([TINY], "", "must be a JSON object, not a list"),
    "no preset": (_without("preset"), "preset", "is missing"),
    "unknown preset": (_with("preset", "huge"), "preset", "must be one of paper, small, tiny-random"),
    "negative temperature": (_with("streams.0.temperature", -1.0), "streams[0].temperature", "> 0"),
    "zero temperature": (_with("streams.1.temperature", 0), "streams[1].temperature", "> 0"),
    "NaN temperature": (_with("streams.1.temperature", float("nan")), "streams[1].temperature", "finite"),
    "temperature as text": (_with("streams.0.temperature", "1.5"), "streams[0].temperature", "finite number"),
    "threshold as text": (_with("vote.threshold", "0.5"), "vote.threshold", "finite number"),
    "threshold above 1": (_with("vote.threshold", 1.5), "vote.threshold", "in [0, 1]"),
    "size as text": (_with("streams.0.size", "252"), "streams[0].size", "must be an integer"),
    "size as float": (_with("streams.0.size", 252.0), "streams[0].size", "must be an integer"),
    "huge decimals": (_with("vote.decimals", 10**9), "vote.decimals", "in [0, 6]"),
    "untrained as text": (_with("untrained", "yes"), "untrained", "true or false"),
    "depth 200": (_with("dinov2.overrides.depth", 200), "dinov2.overrides.depth", "in [1, 64]"),
    "clip layers 500": (_with("clip.overrides.vision_cfg.layers", 500), "clip.overrides.vision_cfg.layers", "in [1, 64]"),
    "unknown override": (_with("dinov2.overrides.mlp_layer", "x"), "dinov2.overrides.mlp_layer", "not a known field"),
    "unknown arch": (_with("dinov2.arch", "vit_7b_patch16_dinov3"), "dinov2.arch", "must be one of"),
    "wrong family": (_with("clip.family", "dinov2"), "clip.family", "must be one of clip"),
    "heads do not divide": (_with("dinov2.overrides.num_heads", 5), "dinov2.overrides", "heads do not divide"),
    "weights_file ../": (_with("dinov2.weights_file", "../base.safetensors"), "dinov2.weights_file", "inside the weights folder"),
    "weights_file deep ../": (_with("clip.weights_file", "a/../../b.safetensors"), "clip.weights_file", "inside the weights folder"),
    "weights_file absolute": (_with("dinov2.weights_file", "/etc/base.safetensors"), "dinov2.weights_file", "absolute path"),
    "weights_file windows": (_with("dinov2.weights_file", "C:\\w\\base.safetensors"), "dinov2.weights_file", "absolute path"),
    "weights_file not safetensors": (_with("dinov2.weights_file", "base.pth"), "dinov2.weights_file", ".safetensors"),
    "negative seed": (_with("dinov2.init_seed", -1), "dinov2.init_seed", ">= 0"),
    "bad hub id": (_with("clip.hub_id", "../../etc"), "clip.hub_id", "owner/repo"),
    "uses clip without clip": (_with("clip", None), "streams[2].uses_clip", "no clip base"),
    "mlp head without hidden": (_with("streams.2.head.hidden", None), "streams[2].head.hidden", "must be an integer"),
    "unknown stream": (_with("streams.0.name", "audio"), "streams[0].name", "must be one of texture, face, fusion"),
    "repeated stream": (_with("streams.1.name", "texture"), "streams[1].name", "repeats"),
    "no streams": (_with("streams", []), "streams", "1 to 3 items"),
    "streams as object": (_with("streams", {}), "streams", "must be a list"),
    "vote weight missing": (_with("vote.weights", {"texture": 2, "face": 1}), "vote.weights", "no weight for the stream(s) ['fusion']"),
    "negative vote weight": (_with("vote.weights.face", -1), "vote.weights.face", ">= 0"),
    "zero std": (_with("streams.0.std", [0.2, 0.0, 0.2]), "streams[0].std[1]", "> 0"),
    "short mean": (_with("streams.0.mean", [0.5, 0.5]), "streams[0].mean", "3 items"),
    "face_size below size": (_with("streams.1.face_size", 100), "streams[1].face_size", "in [252, 4096]"),
    "lora rank 0": (_with("lora.rank", 0), "lora.rank", "in [1, 1024]"),
    "unknown field": (_with("streams.0.temprature", 1.0), "streams[0].temprature", "not a known field"),
    "newer format": (_with("format_version", 99), "format_version", "upgrade the forensic package"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_field_is_refused_in_one_line_naming_it(case):
    data, field, piece = BAD[case]
    with pytest.raises(ConfigError) as err:
        ModelConfig.from_dict(data)
    assert err.value.field == field
    message = str(err.value)
    assert piece in message and "\n" not in message
    assert message.startswith(f"config.json field {field} " if field else "config.json ")


def test_a_huge_random_base_is_refused_before_anything_is_allocated():
    """Depth and width each in bounds, together 12.9 billion parameters: refused at once by the size estimate."""
    data = _with("dinov2.overrides.depth", 64)
    data["dinov2"]["overrides"]["embed_dim"] = 4096
    # from_dict only reads and checks the config: refused there, no model is ever built (checked by
    # the refusal itself, not by a wall-clock bound that a busy CI machine could miss)
    with pytest.raises(ConfigError, match=r"about 12\.9 billion parameters .*limit is 2 billion") as err:
        ModelConfig.from_dict(data)
    assert err.value.field == "dinov2.overrides"


def test_the_paper_giant_base_is_within_bounds():
    """Bounds are generous: the paper's DINOv2-giant (depth 40, width 1536) as a seeded random base passes."""
    data = json.loads(get_preset("paper").config.to_json())
    data["dinov2"].update(hub_id=None, filename=None, revision=None, init_seed=0)
    assert ModelConfig.from_dict(data).dinov2.init_seed == 0


def test_json_errors_name_the_file_problem(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"preset": "tiny-random",')
    with pytest.raises(ConfigError, match=r"config.json is not valid JSON \(.* at line 1 column"):
        ModelConfig.from_json_file(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        ModelConfig.from_json_file(path)


def test_an_older_exports_collapsed_temperature_is_bounded_on_load(caplog):
    """An export from before calibration was bounded may store T = 0.001 (every P(fake) 0 or 1):
    loading applies the same range as training, with a warning."""
    from forensic.calibration import TEMPERATURE_RANGE
    from forensic.config import StreamConfig

    with caplog.at_level("WARNING"):
        stream = StreamConfig.from_dict({"name": "texture", "input": "center-crop", "size": 252, "temperature": 0.001})
    assert stream.temperature == TEMPERATURE_RANGE[0]
    assert "outside the sane range" in caplog.text
    assert StreamConfig.from_dict({"name": "texture", "input": "center-crop", "size": 252, "temperature": 0.7}).temperature == 0.7
