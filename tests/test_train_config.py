"""train.config: YAML configs, typed overrides, clear errors; the CLI's config handling."""

from __future__ import annotations

import pytest

import forensic.config

from train.__main__ import main
from train.config import CONFIG_DIR, ConfigError, TrainConfig, load_config, valid_keys

SHIPPED = [
    "tiny",
    "paper_texture", "paper_face", "paper_fusion_phase1", "paper_fusion_phase2",
    "small_texture", "small_face", "small_fusion_phase1", "small_fusion_phase2",
]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load(name):
    cfg = load_config(CONFIG_DIR / f"{name}.yaml")
    assert isinstance(cfg, TrainConfig)
    preset, _, rest = name.partition("_")
    assert cfg.model.preset == {"tiny": "tiny-random"}.get(preset, preset)
    stream = rest.split("_")[0] if rest else "texture"
    assert cfg.model.stream == stream
    # the paper's augmentation and loss
    assert (cfg.augment.global_p, cfg.augment.op_p, cfg.augment.strength_cap) == (0.5, 0.3, 0.8)
    assert cfg.loss.gamma == 2.0


def test_fusion_phases_follow_the_paper():
    p1, p2 = load_config("paper_fusion_phase1"), load_config("paper_fusion_phase2")
    assert p1.model.trainable == "head" and p1.init.parts == ("adapter",)
    assert p2.model.trainable == "all" and p2.optim.lr == 1e-6
    assert p2.init.from_dir == "runs/paper_fusion_phase1/export" and p2.init.parts == ("adapter", "head")
    assert load_config("paper_texture").optim.grad_accum == 8 and load_config("paper_texture").data.batch_size == 32


def test_overrides_are_typed():
    cfg = load_config("tiny", ["optim.lr=1e-4", "epochs=3", "eval.degradations=[jpeg-q40, compound-0.5]",
                               "data.pseudo_fakes=true", "optim.head_lr=null", "optim.grad_clip=2"])
    assert cfg.optim.lr == 1e-4 and isinstance(cfg.optim.lr, float)  # "1e-4" is a string to YAML 1.1
    assert cfg.epochs == 3
    assert cfg.eval.degradations == ("jpeg-q40", "compound-0.5")
    assert cfg.data.pseudo_fakes is True
    assert cfg.optim.head_lr is None
    assert cfg.optim.grad_clip == 2.0 and isinstance(cfg.optim.grad_clip, float)
    # the same through TrainConfig.override, and a round trip through to_dict
    again = TrainConfig().override({"optim.lr": 1e-4}).override(["model.stream=fusion"])
    assert again.optim.lr == 1e-4 and again.model.stream == "fusion"
    assert load_config(None, {k: v for k, v in [("epochs", 7)]}).epochs == 7


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "Did you mean optim.lr"),
        ("optim.lr=abc", "optim.lr: expected a number"),
        ("epochs=1.5", "epochs: expected an integer"),
        ("progress=maybe", "progress: expected true or false"),
        ("model.stream=eyes", "model.stream: 'eyes' is not one of"),
        ("model.preset=huge", "model.preset 'huge' is not one of"),
        ("augment.global_p=1.5", "augment.global_p must be in [0, 1]"),
        ("eval.degradations=[jpg-q40]", "jpeg-q40"),
        ("noequals", "is not key=value"),
    ],
)
def test_bad_overrides_fail_clearly(override, message):
    with pytest.raises(ConfigError) as info:
        load_config("tiny", [override])
    assert message in str(info.value)
    # one root for configuration errors: a training config's error is a forensic.config.ConfigError
    assert isinstance(info.value, forensic.config.ConfigError) and info.value.problem == str(info.value)


def test_unknown_key_lists_valid_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    text = str(info.value)
    assert "optim.learning_rate" in text and "Valid keys:" in text
    assert all(key in text for key in ("optim.lr", "augment.global_p", "data.pseudo_fakes", "init.from_dir"))
    assert "optim.lr" in valid_keys() and "model" not in valid_keys()


def test_cli_prints_resolved_config_and_rejects_bad_keys(capsys, tmp_path):
    assert main(["--config", "tiny", "--out", str(tmp_path), "--print-config", "optim.lr=5e-3", "--data", "somewhere"]) == 0
    printed = capsys.readouterr().out
    assert "lr: 0.005" in printed and "path: somewhere" in printed
    assert main(["--config", "tiny", "--out", str(tmp_path), "optim.lrr=1"]) == 2
    assert "Did you mean optim.lr" in capsys.readouterr().err
    assert main(["--config", "no_such_config", "--out", str(tmp_path)]) == 2
    assert "shipped configs" in capsys.readouterr().err
