"""The converter against a reference we did not write: transformers DINOv2/CLIP + peft LoRA.

We rebuild the authors' training wrappers from small configs with random weights, save their
state dicts with the authors' key layout (transformers 4.x names, ``backbone.`` prefix), convert
them, and check that our streams give the same logits as the reference forward passes.
"""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from forensic.convert import ConversionError, convert_seed, read_seed_checkpoint  # noqa: E402
from forensic.presets import get_preset  # noqa: E402
from forensic.weights import WeightsInvalid, load_model  # noqa: E402
from tests import awkward  # noqa: E402

_PRESET = get_preset("tiny-random").config
# the reference models below are 48 wide with 2 heads: the tiny-random architecture at that width
TINY = _PRESET.replace(dinov2=dataclasses.replace(_PRESET.dinov2, overrides={**_PRESET.dinov2.overrides, "embed_dim": 48, "num_heads": 2}))
RANK, ALPHA = 4, 8  # scaling 2.0, as the authors' rank 32 / alpha 64


def _randomize(module: nn.Module, seed: int) -> None:
    """O(1) random weights (the libraries' own inits give near-zero outputs that hide errors)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5 if "embedding" not in name else torch.randn(p.shape, generator=gen) * 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def _hf_dinov2() -> nn.Module:
    cfg = transformers.Dinov2Config(
        hidden_size=48, num_hidden_layers=2, num_attention_heads=2, use_swiglu_ffn=True,
        image_size=518, patch_size=14, mlp_ratio=4, layerscale_value=1.0,
    )
    model = transformers.Dinov2Model(cfg)
    _randomize(model, 0)
    return model.eval()


def _hf_clip() -> nn.Module:
    cfg = transformers.CLIPVisionConfig(
        hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        image_size=224, patch_size=14, hidden_act="quick_gelu",
    )
    model = transformers.CLIPVisionModel(cfg)
    _randomize(model, 1)
    return model.eval()


def _lora(model: nn.Module, seed: int) -> nn.Module:
    config = peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.15, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    wrapped = peft.get_peft_model(copy.deepcopy(model), config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # peft starts B at zero: give the adapters something to do
        for name, p in wrapped.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return wrapped.eval()


class _Wrapper(nn.Module):
    """The authors' per-stream module: peft DINOv2 (+ frozen CLIP) + head."""

    def __init__(self, dino, *, clip=None, seed=0):
        super().__init__()
        self.vision_model = dino
        gen = torch.Generator().manual_seed(seed + 100)
        if clip is None:
            self.last_layer = nn.Linear(48, 2)
            head = self.last_layer
        else:
            self.clip_model = clip
            self.fusion_head = nn.Sequential(nn.Linear(48 + 64, 32), nn.GELU(), nn.Dropout(0.2), nn.Linear(32, 2))
            head = self.fusion_head
        with torch.no_grad():
            for p in head.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)

    def forward(self, x):
        feat = self.vision_model(pixel_values=x).pooler_output
        if hasattr(self, "clip_model"):
            feat = torch.cat([feat, self.clip_model(pixel_values=x).pooler_output], dim=-1)
            return self.fusion_head(feat)
        return self.last_layer(feat)


class _Outer(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


def _to_authors_layout(state: dict[str, torch.Tensor], *, module_prefix: bool) -> dict[str, torch.Tensor]:
    """transformers 5 names -> the 4.x names the authors' files carry (SEED_FACTS section 1)."""
    out: dict[str, torch.Tensor] = {}
    gate: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.replace(".attention.q_proj.", ".attention.attention.query.")
        key = key.replace(".attention.k_proj.", ".attention.attention.key.")
        key = key.replace(".attention.v_proj.", ".attention.attention.value.")
        key = key.replace(".attention.o_proj.", ".attention.output.dense.")
        key = key.replace(".mlp.down_proj.", ".mlp.weights_out.")
        key = key.replace("clip_model.", "clip_model.vision_model.")
        m = re.match(r"(.*)\.mlp\.(gate_proj|up_proj)\.(weight|bias)$", key)
        if m:
            gate[f"{m.group(1)}|{m.group(2)}|{m.group(3)}"] = value
            continue
        out[key] = value
    for k in [k for k in gate if "|gate_proj|" in k]:
        prefix, _, param = k.split("|")
        out[f"{prefix}.mlp.weights_in.{param}"] = torch.cat([gate[k], gate[f"{prefix}|up_proj|{param}"]], dim=0)
    if module_prefix:
        out = {f"module.{k}": v for k, v in out.items()}
    return out


@pytest.fixture(scope="module")
def authors_models():
    dino, clip = _hf_dinov2(), _hf_clip()
    return {
        "texture": _Wrapper(_lora(dino, 1), seed=1).eval(),
        "face": _Wrapper(_lora(dino, 2), seed=2).eval(),
        "fusion": _Wrapper(_lora(dino, 3), clip=clip, seed=3).eval(),
    }


@pytest.fixture(scope="module")
def converted(authors_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("converted")
    ckpts = tmp_path_factory.mktemp("ckpts")
    for i, (stream, model) in enumerate(authors_models.items()):
        state = _to_authors_layout(_Outer(model).state_dict(), module_prefix=(i == 1))
        path = ckpts / f"{stream}.pth"
        torch.save(state, path)
        report = convert_seed(path, stream=stream, out=folder, config=TINY, base="embed")
        assert report.lora_rank == RANK and report.layout == "transformers-4"
    return folder


@pytest.mark.parametrize("stream,size", [("texture", 252), ("face", 252), ("fusion", 224)])
def test_converted_streams_match_reference_logits(authors_models, converted, stream, size):
    model = load_model(converted)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = authors_models[stream](x)
        ours = model.forward_stream(stream, x).logits
    assert ref.abs().max() > 0.1  # a meaningful comparison
    assert torch.allclose(ours, ref, atol=5e-5 * ref.abs().max(), rtol=0), (ours - ref).abs().max()  # fusion logits reach ~25


def test_reference_at_other_resolution(authors_models, converted):
    """The texture stream also matches at 224 (position embeddings resized without antialiasing)."""
    model = load_model(converted)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        ref = authors_models["texture"](x)
        ours = model.forward_stream("texture", x).logits
    assert (ours - ref).abs().max() < 5e-5 * ref.abs().max()


def test_converted_folder_layout(converted):
    names = sorted(p.name for p in converted.iterdir())
    assert names == ["README.md", "base_clip.safetensors", "base_dinov2.safetensors", "config.json",
                     "face.safetensors", "fusion.safetensors", "texture.safetensors"]
    from safetensors.torch import load_file

    texture = load_file(converted / "texture.safetensors")
    # only the adapter and the head: no base tensors are duplicated per stream
    assert all(k.startswith(("adapter.", "head.")) for k in texture)
    assert texture["adapter.blocks.0.attn.qkv.lora_B"].shape == (3, 48, RANK)  # block-diagonal, stored as 3 blocks
    assert texture["adapter.blocks.0.attn.qkv.lora_A"].shape == (3 * RANK, 48)


def test_unmapped_keys_are_listed(authors_models, tmp_path):
    state = _to_authors_layout(_Outer(authors_models["texture"]).state_dict(), module_prefix=False)
    state["backbone.vision_model.base_model.model.encoder.layer.0.attention.attention.query.lora_magnitude_vector.default.weight"] = torch.ones(48)
    state["backbone.extra_head.weight"] = torch.ones(2, 48)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ConversionError) as err:
        read_seed_checkpoint(path, stream="texture")
    assert "lora_magnitude_vector" in str(err.value) and "backbone.extra_head.weight" in str(err.value)


def test_reference_base_mismatch_is_an_error(authors_models, tmp_path):
    """With base='reference' a base that differs from the preset's base is refused, not silently used."""
    state = _to_authors_layout(_Outer(authors_models["texture"]).state_dict(), module_prefix=False)
    path = tmp_path / "t.pth"
    torch.save(state, path)
    with pytest.raises(ConversionError, match="differs from the public weights"):
        # the tiny preset's base is a seeded random init, not the checkpoint's base
        convert_seed(path, stream="texture", out=tmp_path / "out", config=TINY, base="reference")


def test_architecture_mismatch_is_an_error(authors_models, tmp_path):
    state = _to_authors_layout(_Outer(authors_models["texture"]).state_dict(), module_prefix=False)
    path = tmp_path / "t.pth"
    torch.save(state, path)
    with pytest.raises(ConversionError, match="does not fit"):
        convert_seed(path, stream="texture", out=tmp_path / "out", base="embed")  # paper preset: giant


# ------------------------------------------------------------------------------ awkward checkpoint files
BAD_FILES = {
    "truncated .pth": (lambda d: awkward.truncated_pth(d), "is truncated or not a PyTorch checkpoint"),
    "empty .pth": (lambda d: awkward.empty_path(d, "empty.pth"), "is empty"),
    "empty .safetensors": (lambda d: awkward.empty_path(d, "empty.safetensors"), "is empty"),
    "junk .safetensors": (lambda d: _junk(d / "junk.safetensors"), "is truncated or not a safetensors file"),
    "missing file": (lambda d: d / "nope.pth", "no such file"),
}


def _junk(path):
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    return path


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_checkpoint_file_is_one_line(tmp_path, case):
    make, piece = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(ConversionError) as err:
        read_seed_checkpoint(path, stream="texture")
    message = str(err.value)
    assert message.startswith(str(path)) and piece in message
    assert "\n" not in message and "weights_only" not in message and len(message) < 400


def test_a_malicious_pickle_is_refused_without_running_it_or_advising_weights_only_false(tmp_path, capsys):
    path, marker = awkward.malicious_pth(tmp_path)
    with pytest.raises(ConversionError) as err:
        read_seed_checkpoint(path, stream="texture")
    message = str(err.value)
    assert not marker.exists()
    assert "not a plain checkpoint of tensors" in message and "mkdir" in message
    assert "weights_only" not in message and "\n" not in message
    # the same through the command line: one line on stderr, nothing run
    from forensic.__main__ import main

    assert main(["convert-seed", str(path), "--stream", "texture", "--out", str(tmp_path / "out")]) == 2
    err_text = capsys.readouterr().err.strip()
    assert err_text.startswith("error: ") and "\n" not in err_text and "weights_only" not in err_text.lower()
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_converting_into_a_folder_with_a_bad_config_names_it(authors_models, tmp_path):
    """Adding a stream to a folder whose config.json is damaged: one WeightsInvalid line, not a traceback."""
    state = _to_authors_layout(_Outer(authors_models["texture"]).state_dict(), module_prefix=False)
    path = tmp_path / "t.pth"
    torch.save(state, path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text("[]")
    with pytest.raises(WeightsInvalid, match=r"config.json: must be a JSON object, not a list"):
        convert_seed(path, stream="texture", out=out, config=TINY, base="embed")
