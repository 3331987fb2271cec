"""``torchrun --nproc_per_node 2`` (gloo on CPU) runs the unchanged CLI: same AUC range as one
process, each training sample seen once per epoch across the ranks, and only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs `python -m train` as is, recording which rank calls the functions that write files.
LAUNCHER = textwrap.dedent(
    """
    import json, os, sys
    import forensic.weights, train.checkpoint, train.engine, train.export, train.face_cache
    from train.__main__ import main

    rank = int(os.environ["RANK"])
    writes = []

    def spy(module, name):
        original = getattr(module, name)
        def wrapper(*args, **kwargs):
            writes.append(name)
            return original(*args, **kwargs)
        setattr(module, name, wrapper)

    spy(train.engine, "save_checkpoint")
    spy(train.engine, "_write_json_line")
    spy(train.export, "save_pretrained")
    spy(train.engine, "export")
    spy(train.face_cache.FaceCache, "save")
    code = main(sys.argv[1:])
    with open(os.path.join(os.environ["SPY_DIR"], f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world_size": int(os.environ["WORLD_SIZE"]), "writes": writes, "code": code}, f)
    sys.exit(code)
    """
)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(planted_artifact_data, tmp_path):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    out, spy = tmp_path / "out", tmp_path / "spy"
    spy.mkdir()
    env = {**os.environ, "SPY_DIR": str(spy), "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(launcher),
        "--config", "tiny", "--data", str(planted_artifact_data), "--out", str(out), "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    ranks = {r["rank"]: r for r in (json.loads(p.read_text()) for p in spy.glob("rank*.json"))}
    assert sorted(ranks) == [0, 1] and all(r["world_size"] == 2 and r["code"] == 0 for r in ranks.values())
    assert ranks[1]["writes"] == [], "only rank 0 writes"
    assert ranks[0]["writes"].count("save_checkpoint") == 2 and "save_pretrained" in ranks[0]["writes"]

    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    start, epochs = records[0], records[1:]
    assert start["event"] == "start" and start["world_size"] == 2 and len(epochs) == 2
    for r in epochs:
        # 48 training images over two ranks: each seen exactly once per epoch
        assert r["samples_seen"] == r["unique_samples"] == 48
        assert r["step"] == 3 * r["epoch"]  # 24 images per rank, batch 8
    assert epochs[-1]["val"]["clean"]["auc"] >= 0.8 and epochs[-1]["val"]["clean"]["n"] == 16
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"epoch_001.pt", "epoch_002.pt", "best.pt"}
    assert sorted(p.name for p in (out / "export").iterdir()) == ["README.md", "base_dinov2.safetensors", "config.json", "texture.safetensors"]
    assert not list(out.rglob("*.tmp"))
    config = json.loads((out / "export" / "config.json").read_text())
    assert config["meta"]["training"]["world_size"] == 2
