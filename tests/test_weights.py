"""Our weights format: round trip, strict loading, offline errors, Hub upload."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from forensic import weights as W
from forensic.model import ForensicModel
from forensic.pipeline import Detector
from forensic.presets import get_preset
from forensic.weights import WeightsInvalid, WeightsUnavailable, build_model, load_model, save_pretrained
from tests import awkward

TINY = get_preset("tiny-random").config


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = ForensicModel.random(TINY, seed=3).eval()
    folder = save_pretrained(model, tmp_path_factory.mktemp("w") / "weights")
    return model, folder


def test_round_trip_gives_the_same_logits(saved):
    model, folder = saved
    loaded = load_model(folder)
    x = torch.randn(1, 3, 252, 252, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name in ("texture", "face"):
            assert torch.equal(loaded.forward_stream(name, x).logits, model.forward_stream(name, x).logits)
        x224 = x[:, :, :224, :224]
        # the tensors are equal (checked below) but the CPU kernels may pick another summation order for
        # the CLIP tower's memory-mapped weights: equal to float32 rounding, not always bit for bit
        torch.testing.assert_close(loaded.forward_stream("fusion", x224).logits, model.forward_stream("fusion", x224).logits, rtol=1e-5, atol=1e-5)
    _assert_same_state(loaded.state_dict(), model.state_dict())


def _assert_same_state(a: dict, b: dict) -> None:
    """The same keys in the same order, and each tensor equal in dtype, shape and value."""
    assert list(a) == list(b) and len(a) > 10
    for key in a:
        assert (a[key].dtype, a[key].shape) == (b[key].dtype, b[key].shape), key
        assert torch.equal(a[key], b[key]), key


def test_folder_layout_and_stream_files_hold_only_adapters_and_heads(saved):
    _, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "base_clip.safetensors", "base_dinov2.safetensors", "config.json",
        "face.safetensors", "fusion.safetensors", "texture.safetensors",
    ]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["preset"] == "tiny-random" and cfg["dinov2"]["weights_file"] == "base_dinov2.safetensors"
    assert [s["name"] for s in cfg["streams"]] == ["texture", "face", "fusion"]
    texture = load_file(folder / "texture.safetensors")
    assert all(k.startswith(("adapter.", "head.")) for k in texture)
    assert "head.weight" in texture and "adapter.blocks.1.attn.proj.lora_B" in texture
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "untrained" in card.lower()


def test_missing_or_unexpected_keys_are_listed(saved, tmp_path):
    _, folder = saved
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    state = load_file(broken / "face.safetensors")
    del state["head.bias"]
    state["head.extra"] = torch.zeros(1)
    save_file(state, str(broken / "face.safetensors"))
    with pytest.raises(WeightsInvalid) as err:  # still a ValueError, as before
        load_model(broken)
    assert isinstance(err.value, ValueError)
    assert "heads.face.bias" in str(err.value) and "heads.face.extra" in str(err.value)
    assert "face.safetensors" in str(err.value)


def test_missing_stream_file_is_weights_unavailable(saved, tmp_path):
    _, folder = saved
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    (partial / "fusion.safetensors").unlink()
    with pytest.raises(WeightsUnavailable, match="fusion stream"):
        load_model(partial)


def test_not_a_weights_folder(tmp_path):
    with pytest.raises(WeightsUnavailable, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(WeightsUnavailable, match="No such folder"):
        load_model(tmp_path / "nope")
    with pytest.raises(WeightsUnavailable, match="hf-hub:owner/repo"):
        load_model("hf-hub:not-a-repo")


def test_paper_preset_fails_fast_and_clearly_offline(monkeypatch):
    """Offline, the paper preset fails within seconds with the ways out, not after minutes of retries."""
    import inspect

    import huggingface_hub

    # the real probe gives up within seconds; patched here to an unreachable Hub
    assert inspect.signature(W._hub_reachable).parameters["timeout"].default <= 5
    probes, downloads = [], []
    monkeypatch.setattr(W, "_hub_reachable", lambda timeout=3.0: probes.append(timeout) or False)
    real_download = huggingface_hub.hf_hub_download

    def cache_only(*args, **kwargs):
        downloads.append(kwargs.get("local_files_only", False))
        return real_download(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", cache_only)
    with pytest.raises(WeightsUnavailable) as err:
        Detector.from_preset("paper", device="cpu")
    # only cache look-ups, no download (with its minutes of retries), and at most one quick probe:
    # checked, not timed, so that a busy CI machine cannot fail it
    assert downloads and all(downloads), downloads
    assert len(probes) <= 1, probes
    message = str(err.value)
    assert "dinov2_252.pth" in message and "lpmkhoa/hcmusaqua-ntire26-weights" in message
    assert "--weights DIR" in message and "HF_HUB_OFFLINE" in message and "tiny-random" in message


def test_hub_offline_flag(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailable, match="HF_HUB_OFFLINE is set"):
        W.hub_file("timm/vit_small_patch14_dinov2.lvd142m", "model.safetensors")


def test_small_preset_without_weights_says_how_to_get_them():
    with pytest.raises(WeightsUnavailable, match="python -m train"):
        Detector.from_preset("small", device="cpu")


def test_tiny_random_is_deterministic():
    _assert_same_state(build_model(TINY).state_dict(), build_model(TINY).state_dict())


def test_state_comparison_sees_a_missing_key_and_a_changed_shape(saved):
    """The helper above fails where ``zip`` over two state dicts would have passed."""
    a = saved[0].state_dict()
    fewer = dict(list(a.items())[:-1])
    more = {**a, "extra": torch.zeros(1)}
    first = next(iter(a))
    for other in (fewer, more, {**a, first: a[first].reshape(-1)}, {**a, first: a[first].double()}):
        with pytest.raises(AssertionError):
            _assert_same_state(a, other)


def test_base_from_hub_file_is_read_without_the_clip_projection(tmp_path):
    """Published open_clip files hold the text tower and ``visual.proj`` too; we keep ``visual.*`` minus proj."""
    path = tmp_path / "open_clip_model.safetensors"
    save_file({"visual.conv1.weight": torch.ones(2), "visual.proj": torch.ones(2), "transformer.x": torch.ones(1)}, str(path))
    assert list(W.read_base_file(path, "clip")) == ["conv1.weight"]


def test_push_to_hub_uploads_the_folder(saved, monkeypatch):
    _, folder = saved
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["create"] = (repo_id, kw)

        def upload_folder(self, **kw):
            calls["upload"] = kw
            return type("Info", (), {"commit_url": "https://hub/commit/1"})()

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    url = W.push_to_hub(folder, "me/detector", private=True, token="t")
    assert url == "https://hub/commit/1"
    assert calls["create"] == ("me/detector", {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls["upload"]["folder_path"] == str(folder) and calls["upload"]["repo_id"] == "me/detector"
    assert set(calls["upload"]["allow_patterns"]) == {"config.json", "*.safetensors", "README.md"}


# ------------------------------------------------------------------------------ damaged or invalid folders
# (generator in tests/awkward.py, file or field the one-line message must name, a piece of the reason)
DAMAGED = {
    "truncated safetensors": (awkward.truncated_safetensors, "texture.safetensors", "truncated or not a safetensors file"),
    "empty safetensors": (lambda g, d: awkward.empty_file(g, d, "fusion.safetensors"), "fusion.safetensors", "is empty"),
    "truncated base": (lambda g, d: awkward.truncated_safetensors(g, d, "base_dinov2.safetensors", keep=0.9), "base_dinov2.safetensors", "truncated"),
    "wrong shapes": (awkward.wrong_shapes, "face.safetensors", "shape mismatch for heads.face.weight"),
    "float64 weights": (awkward.float64_weights, "texture.safetensors", "is float64; weights must be float32, float16 or bfloat16"),
    "float64 base": (lambda g, d: awkward.float64_weights(g, d, "base_clip.safetensors"), "base_clip.safetensors", "float64"),
    "config as a list": (awkward.config_as_list, "config.json", "must be a JSON object, not a list"),
    "config not JSON": (awkward.config_not_json, "config.json", "is not valid JSON"),
    "config without preset": (awkward.config_without, "config.json", "field preset is missing"),
    "unknown preset": (awkward.unknown_preset, "config.json", "field preset must be one of"),
    "negative temperature": (awkward.negative_temperature, "config.json", "field streams[0].temperature must be a number > 0"),
    "weights_file ../": (awkward.weights_file_outside, "config.json", "field dinov2.weights_file must be a file name inside"),
    "huge depth": (awkward.huge_depth, "config.json", "field dinov2.overrides.depth must be an integer in [1, 64], got 200"),
    "threshold as text": (lambda g, d: awkward.set_config_field(g, d, "vote.threshold", "0.5"), "config.json", "field vote.threshold"),
    "not a stream file": (lambda g, d: awkward.rewrite_tensors(g, d, "texture.safetensors", lambda s: {**s, "junk": s["head.bias"].clone()}),
                          "texture.safetensors", "not a texture stream file"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_folder_is_one_weights_invalid_line_naming_the_file(saved, tmp_path, case):
    """Every way a folder can be damaged ends in WeightsInvalid (a WeightsUnavailable: callers catch one type)."""
    make, name, reason = DAMAGED[case]
    folder = make(saved[1], tmp_path / "w")
    with pytest.raises(WeightsInvalid) as err:
        load_model(folder)
    assert isinstance(err.value, WeightsUnavailable)
    message = str(err.value)
    assert "\n" not in message and message.startswith("Invalid weights: ")
    assert f"{folder / name}:" in message and reason in message
    assert "tiny-random" in message  # what to do


def test_an_absolute_weights_file_is_refused_even_though_it_exists(saved, tmp_path):
    outside = tmp_path / "elsewhere" / "base.safetensors"
    folder = awkward.weights_file_outside(saved[1], tmp_path / "w", str(outside))
    assert outside.is_file()
    with pytest.raises(WeightsInvalid, match="dinov2.weights_file must be a file name inside the weights folder, not the absolute path"):
        load_model(folder)


def test_a_huge_depth_is_refused_before_any_allocation(saved, tmp_path, monkeypatch):
    """depth 200 of a seeded random base used to allocate until killed; now refused in milliseconds."""
    folder = awkward.huge_depth(saved[1], tmp_path / "w", depth=200, embed_dim=1536)
    # refused from config.json alone: nothing is built or read (checked, not timed: CI machines are busy)
    monkeypatch.setattr(W, "ForensicModel", lambda *a, **k: pytest.fail("the model was built"))
    monkeypatch.setattr(W, "bases_state_dict", lambda *a, **k: pytest.fail("the base weights were read"))
    with pytest.raises(WeightsInvalid, match="dinov2.overrides.depth"):
        load_model(folder)


def test_the_cli_prints_one_line_for_a_damaged_folder(saved, tmp_path, capsys):
    """predict/explain catch WeightsUnavailable: the new WeightsInvalid is caught there with no CLI change."""
    import argparse

    from forensic._cli._common import load_detector

    folder = awkward.config_without(saved[1], tmp_path / "w")
    args = argparse.Namespace(preset="tiny-random", weights=str(folder), device="cpu", dtype=None)
    assert load_detector(args) is None
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Invalid weights: ") and "field preset is missing" in err
    assert err != "error: preset" and "\n" not in err
