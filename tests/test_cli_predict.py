"""``python -m forensic predict | explain | presets``: the command-line contracts of DESIGN.md section 4."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.cli import run_cli

FIELDS = ("path", "prob_fake", "label", "verdict", "streams", "face", "preset", "untrained", "error")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, astronaut, landscape):
    root = tmp_path_factory.mktemp("imgs")
    (root / "sub").mkdir()
    Image.fromarray(astronaut).save(root / "b_astronaut.png")
    Image.fromarray(landscape).save(root / "sub" / "a_coffee.jpg", quality=90)
    (root / "c_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("ignored: not an image extension")
    return root


def test_predict_json_lines_on_the_astronaut(capsys, folder):
    code, out, err = run_cli(capsys, "predict", str(folder / "b_astronaut.png"), "--preset", "tiny-random", "--no-progress")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert all(k in record for k in FIELDS)
    assert record["prob_fake"] in [round(0.1 * i, 1) for i in range(11)]
    # untrained weights: no label, the verdict word says why (forensic.verdict)
    assert record["label"] is None and record["verdict"] == "none (untrained)" and record["error"] is None
    assert set(record["streams"]) == {"texture", "face", "fusion"}
    assert all(0 <= s["prob_fake"] <= 1 for s in record["streams"].values())
    assert record["face"]["mode"] == "small-face" and record["face"]["box"] is not None
    assert record["preset"] == "tiny-random" and record["untrained"] is True
    assert "UNTRAINED" in err


def test_folders_are_walked_and_a_bad_file_does_not_stop_the_batch(capsys, folder):
    code, out, err = run_cli(capsys, "predict", str(folder), "--preset", "tiny-random", "--format", "json")
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 1 and "1 of 3 files failed" in err
    assert [r["path"].rsplit("/", 1)[-1] for r in records] == ["a_coffee.jpg", "b_astronaut.png", "c_broken.jpg"]
    broken = records[2]
    assert broken["prob_fake"] is None and broken["label"] is None and "truncated" in broken["error"]
    assert records[0]["face"]["mode"] == "no-face" and records[0]["error"] is None
    assert "predict" in err  # the progress bar went to stderr


def test_ntire_format_is_one_probability_per_line_in_file_name_order(capsys, folder, tmp_path):
    out_file = tmp_path / "submission.txt"
    code, out, _ = run_cli(capsys, "predict", str(folder), "--preset", "tiny-random", "--format", "ntire", "--out", str(out_file))
    assert code == 1 and out == ""
    lines = out_file.read_text().splitlines()
    assert len(lines) == 3 and lines[2] == "0.5"  # the unreadable file keeps its place
    assert all(0 <= float(v) <= 1 for v in lines)


def test_csv_format(capsys, folder):
    code, out, _ = run_cli(capsys, "predict", str(folder / "b_astronaut.png"), "--preset", "tiny-random", "--format", "csv", "--degrade", "jpeg-q20")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1
    assert list(rows[0]) == ["path", "prob_fake", "label", "verdict", "texture", "face", "fusion", "face_mode", "preset", "untrained", "error"]
    assert rows[0]["preset"] == "tiny-random" and rows[0]["error"] == "" and 0 <= float(rows[0]["texture"]) <= 1


def test_a_failed_file_is_a_record_with_the_same_keys_and_a_one_line_error():
    from forensic.records import CSV_COLUMNS, csv_row, report_record

    record = report_record("x/broken.png", OSError("\nimage file is truncated\nmore detail"), preset="small", untrained=False)
    assert record["path"] == "x/broken.png" and record["error"] == "image file is truncated"
    assert set(FIELDS) <= set(record) and record["prob_fake"] is None and record["streams"] == {}
    row = csv_row(record)
    assert tuple(row) == CSV_COLUMNS and row["texture"] is None and row["preset"] == "small"
    assert report_record("y.png", ValueError())["error"] == "ValueError"  # no message: its type


def test_bad_spec_and_missing_weights_exit_2_without_traceback(capsys, folder):
    code, _, err = run_cli(capsys, "predict", str(folder), "--preset", "tiny-random", "--degrade", "jpg:q=1")
    assert code == 2 and "unknown operation" in err.lower() and "jpeg" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "predict", str(folder), "--weights", str(folder))
    assert code == 2 and "no config.json" in err and "Traceback" not in err


@pytest.mark.slow  # ~8 s: a fresh interpreter imports torch, timm and open_clip
def test_paper_preset_offline_in_a_subprocess(folder):
    """A user on this offline machine: the message, the ways out, no traceback, within seconds."""
    proc = subprocess.run(
        [sys.executable, "-m", "forensic", "predict", str(folder / "b_astronaut.png"), "--preset", "paper"],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 2
    assert "Weights unavailable" in proc.stderr and "--preset tiny-random" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow  # ~3-4 s: Score-CAM of three streams and five figures
def test_explain_writes_overlays_figures_and_report(capsys, folder, tmp_path):
    out = tmp_path / "explained"
    code, stdout, _ = run_cli(capsys, "explain", str(folder / "b_astronaut.png"), "--out", str(out), "--preset", "tiny-random")
    assert code == 0 and "P(fake)" in stdout
    names = {p.name for p in out.iterdir()}
    assert names == {"regions.png", "cam_texture.png", "cam_face.png", "cam_fusion.png", "explanation.png",
                     "entropy.png", "similarity.png", "report.json"}
    overlay = np.asarray(Image.open(out / "cam_texture.png"))
    assert overlay.shape == (512, 512, 3)
    report = json.loads((out / "report.json").read_text())
    assert report["explain"] == "fast" and report["streams"]["texture"]["cam"]["forward_passes"] > 0


def test_presets_lists_backbones_inputs_and_weights(capsys):
    code, out, _ = run_cli(capsys, "presets", "--json")
    rows = {r["preset"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {"paper", "small", "tiny-random"}
    assert "vit_giant_patch14_dinov2" in rows["paper"]["dinov2"] and rows["paper"]["clip"] == "ViT-L-14-quickgelu"
    assert "lpmkhoa/hcmusaqua-ntire26-weights" in rows["paper"]["weights"]
    assert rows["paper"]["inputs"]["texture"] == "center-crop 252px"
    assert "UNTRAINED" in rows["tiny-random"]["weights"]
