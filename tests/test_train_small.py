"""The ``small`` preset goes through the same code path as ``tiny-random``: only the config differs.

Its DINOv2-small base would come from the Hub (offline here), so ``model.random_bases`` swaps it for
a seeded random base of the same architecture; one optimiser step on 2 images shows that the LoRA
and head train, the base stays frozen, and the export (with the base embedded) loads back.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forensic.weights import load_model
from train.config import load_config
from train.engine import fit
from train.modeling import build_training_model, training_model_config


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_small_config_differs_from_paper_only_in_architecture():
    small, paper = training_model_config(load_config("small_texture")), training_model_config(load_config("paper_texture"))
    assert small.dinov2.arch == "vit_small_patch14_dinov2" and small.dinov2.hub_id and small.clip is None
    assert small.streams == paper.streams and paper.dinov2.hub_id.startswith("timm/vit_giant")
    randomised = training_model_config(load_config("small_texture", {"model.random_bases": True}))
    assert randomised.dinov2.hub_id is None and randomised.dinov2.init_seed == 0 and randomised.dinov2.arch == small.dinov2.arch


@pytest.mark.slow
def test_small_preset_trains_one_step(tmp_path, make_planted_artifact_set):
    data = make_planted_artifact_set(tmp_path / "data", n=4, seed=5)
    cfg = load_config("small_texture", {
        "data.path": str(data), "model.random_bases": True, "epochs": 1, "data.batch_size": 2, "data.val_fraction": 0.5,
        "data.num_workers": 0, "optim.grad_accum": 1, "optim.warmup_fraction": 0.0, "eval.degradations": [], "progress": False,
        "threads": 1,
    })
    before = build_training_model(cfg, training_model_config(cfg))
    base_before = {k: v.clone() for k, v in before.dinov2.state_dict().items()}
    assert sum(p.numel() for p in before.trainable_parameters()) == 12 * (48 * 384 + 3 * 384 * 16 + 16 * 384 + 384 * 16) + 384 * 2 + 2  # LoRA r16 on qkv (3 groups) + proj, head
    result = fit(cfg, out=tmp_path / "out")
    record = result.history[0]
    assert record["samples_seen"] == 2 and record["step"] == 1 and np.isfinite(record["train_loss"])
    model = load_model(result.export_dir)
    assert model.config.dinov2.arch == "vit_small_patch14_dinov2" and model.config.dinov2.weights_file == "base_dinov2.safetensors"
    for key, value in model.dinov2.state_dict().items():  # the base is untouched by training
        assert torch.equal(value, base_before[key]), key
    trained = model.stream_state_dict("texture")
    fresh = before.stream_state_dict("texture")
    assert any(not torch.equal(trained[k], fresh[k]) for k in trained if ".lora_B" in k)  # the LoRA moved off zero
    predictions = [json.loads(line) for line in (tmp_path / "out" / "val_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 2 and {p["label"] for p in predictions} == {0, 1}
