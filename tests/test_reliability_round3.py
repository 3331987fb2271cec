"""Reliability, round 3 (issue 25): bounded memory for every accepted image, full disks, bad
``--device`` values, one-line errors for deep configs and odd files, one record per key.

Each test failed before its fix. Commands run in-process through ``forensic.__main__.main``,
except full-disk runs, which need a subprocess with a file-size limit (:mod:`tests.awkward`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from forensic.__main__ import main
from forensic.images import MAX_ASPECT_RATIO, ImageError, decode_image
from tests import awkward
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
COFFEE = ROOT / "examples" / "coffee.jpg"


# ------------------------------------------------------------------------------ 1. bounded memory
@pytest.mark.parametrize("size", [(16, 20_000), (50_000, 16), (16, 16 * MAX_ASPECT_RATIO + 1)])
def test_a_sliver_is_refused_from_its_header(tmp_path, size):
    path = awkward.tall_narrow_png(tmp_path, *size)
    assert path.stat().st_size < 20_000  # a few KB on disk
    with pytest.raises(ImageError, match=rf"{size[0]}x{size[1]} pixels: its long side is over {MAX_ASPECT_RATIO} times"):
        decode_image(path)


def test_the_widest_accepted_shape_still_decodes(tmp_path):
    path = awkward.tall_narrow_png(tmp_path, 16, 16 * MAX_ASPECT_RATIO)
    assert decode_image(path).pixels.shape == (16 * MAX_ASPECT_RATIO, 16, 3)


@pytest.mark.parametrize("shape", [(5000, 16), (16, 5000), (20_000, 40), (640, 480)])
def test_every_face_search_copy_is_bounded_whatever_the_shape(monkeypatch, shape):
    """The retries' copies (padded, upscaled) stay within a few times retry_side^2 pixels: before,
    padding by a quarter of the long side made a 16x5000 sliver a 1423x4242 image for MTCNN."""
    from forensic.faces import FaceDetector

    detector = FaceDetector()
    seen: list[tuple[int, ...]] = []

    def fake_mtcnn(batch, _min_face):
        seen.append(batch.shape)
        return [(np.zeros((0, 4)), np.zeros(0))] * len(batch)

    monkeypatch.setattr(detector, "_mtcnn_detect", fake_mtcnn)
    image = np.full((*shape, 3), 90, np.uint8)
    assert detector.analyze(image).mode == "no-face"
    assert seen or min(shape) < 100, "the retries never ran"  # a sliver's copies may all be too thin to search
    for _, h, w, _ in seen:
        assert max(h, w) <= 2 * detector.max_side
        assert h * w <= max(detector.max_side**2, 4 * 4 * detector.retry_side**2)


def test_predict_over_a_folder_with_a_sliver_writes_every_record(capsys, tmp_path):
    folder = tmp_path / "in"
    awkward.tall_narrow_png(folder, 16, 4_000_000, name="a_tall.png")
    (folder / "b.jpg").write_bytes(COFFEE.read_bytes())
    code, out, err = run_cli(capsys, "predict", "--preset", "tiny-random", "--device", "cpu", "--no-progress", str(folder))
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and [Path(r["path"]).name for r in records] == ["a_tall.png", "b.jpg"]
    assert f"at most {MAX_ASPECT_RATIO}:1 is accepted" in records[0]["error"]
    assert records[1]["error"] is None


# ------------------------------------------------------------------------------ 4. bad --device
def _bad_devices() -> list[str]:
    import torch

    bad = ["bogus", "cuda:99"]
    if not torch.cuda.is_available():
        bad.append("cuda")
    if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        bad.append("mps")
    return bad


@pytest.mark.parametrize("device", _bad_devices())
@pytest.mark.parametrize("command", ["predict", "explain", "analysis", "train"])
def test_a_bad_device_is_refused_in_one_line_before_any_model_loads(capsys, monkeypatch, tmp_path, command, device):
    import forensic.pipeline as pipeline

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded before --device was checked")

    monkeypatch.setattr(pipeline.Detector, "from_runtime", refuse)
    if command == "train":
        from train.__main__ import main as train_main

        code = train_main(["--config", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "run"), f"device={device}"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: device={device!r}")
        assert not (tmp_path / "run").exists()
        return
    if command == "analysis":
        from analysis.__main__ import main as entry

        argv = ["robustness", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--device", device]
    else:
        entry = main
        argv = [command, str(COFFEE), "--device", device] + (["--out", str(tmp_path / "x")] if command == "explain" else [])
    with pytest.raises(SystemExit) as stop:
        entry(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert f"argument --device: {device!r}" in err.splitlines()[-1] and "Traceback" not in err


def test_a_bad_device_in_the_environment_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("FORENSIC_DEVICE", "bogus")
    code, out, err = run_cli(capsys, "predict", "--preset", "tiny-random", str(COFFEE))
    assert code == 2 and out == "" and err == "error: FORENSIC_DEVICE='bogus' is not a device: use cpu, cuda or cuda:N\n"


# ------------------------------------------------------------------------------ 7. one line, not a traceback
@pytest.fixture(scope="module")
def good_weights(tmp_path_factory):
    return awkward.good_weights_folder(tmp_path_factory.mktemp("good") / "w")


def test_a_config_nested_100000_levels_deep_is_one_line(capsys, tmp_path, good_weights):
    folder = awkward.copy_weights(good_weights, tmp_path / "deep")
    (folder / "config.json").write_text(awkward.deep_json(100_000))
    code, out, err = run_cli(capsys, "predict", "--weights", str(folder), "--device", "cpu", "--no-progress", str(COFFEE))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "config.json: is nested too deeply" in err


def test_a_deep_teacher_config_stops_distillation_in_one_line(capsys, tmp_path, good_weights):
    from train.__main__ import main as train_main

    folder = awkward.copy_weights(good_weights, tmp_path / "deep")
    (folder / "config.json").write_text(awkward.deep_json(100_000))
    data = tmp_path / "photos"
    data.mkdir()
    code = train_main(["distill", "--teacher", str(folder), "--config", "distill_tiny", "--data", str(data), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "nested too deeply" in err and "Traceback" not in err


def test_convert_seed_on_a_five_byte_text_file_says_what_it_is(capsys, tmp_path):
    path = tmp_path / "five.pth"
    path.write_text("hello")
    code, out, err = run_cli(capsys, "convert-seed", str(path), "--stream", "texture", "--out", str(tmp_path / "w"))
    assert code == 2 and out == ""
    assert err == f"error: {path} is text, not a PyTorch checkpoint: pass the authors' .pth file\n"


# ------------------------------------------------------------------------------ 2. full disks
def _predict_code(*argv: str) -> str:
    return f"import sys\nfrom forensic.__main__ import main\nsys.exit(main({list(argv)!r}))\n"


def test_predict_into_a_full_disk_keeps_only_complete_records(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.jpg").write_bytes(COFFEE.read_bytes())
    out = tmp_path / "records.jsonl"
    done = awkward.run_with_file_limit(
        _predict_code("predict", "--preset", "tiny-random", "--device", "cpu", "--no-progress", str(folder), "--out", str(out)),
        7000, cwd=ROOT)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    # how many records fit under the limit depends on their length (timings, metadata): read it from the line
    found = re.fullmatch(re.escape(f"error: cannot write {out}: no space left on the device (free some space and run again); ")
                         + r"the (\d+ records|record) written before it (?:are|is) complete", lines[-1])
    assert found, lines[-1]
    n = 1 if found.group(1) == "record" else int(found.group(1).split()[0])
    assert 1 <= n < 4
    text = out.read_text()
    assert text.endswith("\n") and [Path(json.loads(line)["path"]).name for line in text.splitlines()] == [f"{i}.jpg" for i in range(n)]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("fmt", ["json", "csv", "ntire"])
def test_predict_to_dev_full_is_one_line(capsys, fmt):
    code, out, err = run_cli(capsys, "predict", "--preset", "tiny-random", "--device", "cpu", "--no-progress",
                          "--format", fmt, str(COFFEE), "--out", "/dev/full")
    assert code == 2 and out == ""
    assert err.startswith("error: cannot write /dev/full: no space left on the device") and len(err.splitlines()) == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_predict_with_stdout_on_a_full_disk_is_one_line(tmp_path):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "forensic", "predict", "--preset", "tiny-random", "--device", "cpu",
                               "--no-progress", str(COFFEE)], stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: cannot write standard output: no space left on the device (free some space and run again); no record was written"]


@pytest.mark.skipif(not Path("/proc/version").exists(), reason="no /proc")
def test_predict_out_to_a_file_that_refuses_writes_is_one_line(capsys):
    code, out, err = run_cli(capsys, "predict", "--preset", "tiny-random", "--device", "cpu", "--no-progress",
                          str(COFFEE), "--out", "/proc/version")
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error:") and "/proc/version" in err


def test_explain_into_a_full_disk_leaves_no_partial_file(tmp_path):
    out = tmp_path / "explained"
    done = awkward.run_with_file_limit(
        _predict_code("explain", str(COFFEE), "--preset", "tiny-random", "--device", "cpu", "--out", str(out)), 50_000, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot write {out / 'regions.png'}: no space left on the device (free some space and run again)")
    assert sorted(p.name for p in out.iterdir()) == []  # no cut regions.png, no temporary file


def test_explain_out_naming_an_existing_file_is_one_line(capsys, tmp_path, monkeypatch):
    from forensic._cli import explain

    monkeypatch.setattr(explain, "load_detector", lambda _a: pytest.fail("the model loaded before --out was checked"))
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    code, out, err = run_cli(capsys, "explain", str(COFFEE), "--preset", "tiny-random", "--out", str(target))
    assert code == 2 and out == "" and target.read_text() == "keep me"
    assert err == f"error: --out {target} is a file: give the name of a folder (it is created if missing)\n"


def test_checkpoint_writes_into_a_full_disk_are_one_line_and_leave_nothing(tmp_path):
    """``train`` into a full disk: the CLI prints a CheckpointError's one line (no traceback)."""
    code = f"""
import torch
from pathlib import Path
from train.checkpoint import CheckpointError, CheckpointState, copy_checkpoint, save_checkpoint
out = Path({str(tmp_path)!r})
state = CheckpointState(epoch=1, step=1, stream="texture", stream_state={{"w": torch.zeros(200_000)}}, optimizer={{}}, scheduler={{}})
for write in (lambda: save_checkpoint(out / "epoch_001.pt", state), lambda: copy_checkpoint(out / "small.pt", out / "best.pt")):
    try:
        write()
    except CheckpointError as exc:
        print(exc)
"""
    (tmp_path / "small.pt").write_bytes(b"x" * 300_000)  # written here, without the limit
    done = awkward.run_with_file_limit(code, 100_000, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    hint = "no space left on the device (free some space, then continue with --resume auto)"
    assert done.stdout.splitlines() == [f"cannot write {tmp_path / 'epoch_001.pt'}: {hint}",
                                        f"cannot write {tmp_path / 'best.pt'}: {hint}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.pt"]


def _failing_data(folder: Path) -> Path:
    for label in ("real", "fake"):
        for i in range(2):
            awkward.tall_narrow_png(folder / label, 16, 2000, name=f"{label}{i}.png")  # refused: 125:1
    return folder


def test_analysis_where_every_image_fails_says_so_and_rerunning_keeps_one_record_per_key(capsys, tmp_path):
    from analysis.__main__ import main as analysis_main

    data, out = _failing_data(tmp_path / "data"), tmp_path / "out"
    argv = ["robustness", "--data", str(data), "--out", str(out), "--preset", "tiny-random", "--device", "cpu",
            "--families", "jpeg", "--levels", "q100,q40", "--no-progress"]
    for _ in range(3):
        code = analysis_main(argv)
        err = capsys.readouterr().err
        assert code == 2
        message = err.strip().splitlines()[-1]
        assert message.startswith("error: every image failed (4 images, 3 conditions)") or message.startswith(
            "error: every image failed (4 images, 2 conditions)"), err
        assert "20:1 is accepted" in message and str(out / "records" / "passes.jsonl") in message
    lines = (out / "records" / "passes.jsonl").read_text().splitlines()
    keys = [(r["path"], r["spec"], r["seed"]) for r in map(json.loads, lines)]
    assert len(lines) == len(set(keys)) > 0  # reruns replaced the failed rows instead of appending more


def test_the_store_keeps_the_last_row_per_key_and_rewrites_duplicates(tmp_path):
    from analysis.store import RowStore

    path = tmp_path / "rows.jsonl"
    path.write_text('{"k":1,"error":"a"}\n{"k":1,"error":"b"}\n{"k":2,"error":null}\n{"k":1,"error":"c"}\n')
    store = RowStore(path, key_fields=("k",))
    assert store.get((1,))["error"] == "c" and len(store) == 2
    store.append([{"k": 1, "error": None, "score": 0.5}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"k": 1, "error": None, "score": 0.5}, {"k": 2, "error": None}]
    store.append([{"k": 3, "error": None}])
    assert len(path.read_text().splitlines()) == 3


# ------------------------------------------------------------------------------ 8. smaller
def test_the_lab_refuses_a_fractional_seed_instead_of_rounding_it(tmp_path):
    pytest.importorskip("gradio")
    from webapp.files import ScratchDir
    from webapp.handlers import Handlers
    from webapp.lab import LabSettings

    handlers = Handlers(None, error="no model in this test", scratch=ScratchDir(tmp_path))
    controls = ("none", 50, 0.0, 0, 0.0, 0.0, 1.0, 0.0)
    image, spec, _, info = handlers.degrade(str(COFFEE), LabSettings.from_controls(*controls, 1.5))
    assert image is None and spec == "" and "seed must be a whole number" in info["error"] and "1.5" in info["error"]
    image, *_ = handlers.degrade(str(COFFEE), LabSettings.from_controls(*controls, 3.0))
    assert image is not None and LabSettings.from_controls(*controls, 3.0).seed == 3


def test_the_seed_control_passes_a_fraction_on_unrounded():
    """Gradio's Number with precision=0 turned an API caller's seed=1.5 into 2 before any check."""
    gr = pytest.importorskip("gradio")
    from webapp.layout import build_page

    with gr.Blocks():
        page = build_page(header="", detector_ready=False, start_explain="fast", example_list=[])
    assert page.blocks["seed"].preprocess(1.5) == 1.5 and page.blocks["seed"].preprocess(7) == 7


@pytest.mark.parametrize("seed", [2**70, -1, 1.5])
def test_a_bad_seed_is_refused_without_a_degradation_too(seed):
    from forensic.degrade import MAX_SEED
    from forensic.pipeline import Detector

    detector = Detector.from_preset("tiny-random", device="cpu")
    message = f"the seed must be a whole number from 0 to {MAX_SEED}"
    with pytest.raises(ValueError, match=message):
        detector.analyze(str(COFFEE), seed=seed)
    with pytest.raises(ValueError, match=message):
        list(detector.analyze_many([str(COFFEE)], seed=seed))


def test_predict_counts_the_folder_entries_it_skips(capsys, tmp_path):
    folder = tmp_path / "in"
    awkward.fifo(folder, "pipe.png")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "gone.png").symlink_to(tmp_path / "missing.png")
    (folder / "ok.jpg").write_bytes(COFFEE.read_bytes())
    code, out, err = run_cli(capsys, "predict", "--preset", "tiny-random", "--device", "cpu", "--no-progress", str(folder))
    assert code == 0 and len(out.splitlines()) == 1
    assert (f"1 files scored; skipped 3 folder entries that are not regular files (e.g. {folder / 'gone.png'}: a broken link)."
            in err.splitlines())


def test_ntire_says_that_a_failed_file_got_one_half(capsys, tmp_path):
    folder = tmp_path / "in"
    awkward.tall_narrow_png(folder, 16, 2000, name="a.png")
    (folder / "b.jpg").write_bytes(COFFEE.read_bytes())
    code, out, err = run_cli(capsys, "predict", "--preset", "tiny-random", "--device", "cpu", "--no-progress", "--format", "ntire", str(folder))
    assert code == 1 and out.splitlines()[0] == "0.5"
    assert "note: the ntire output holds 0.5 for each of the 1 failed files (the format needs one number per file)." in err.splitlines()


@pytest.mark.parametrize("text, shown", [("jpeg:quality=1e308", "1e+308"), ("jpeg:quality=-1e20", "-1e+20"), ("jpeg:quality=101", "101")])
def test_a_huge_number_in_a_spec_is_shown_short(text, shown):
    from forensic.degrade import SpecError, parse_spec

    with pytest.raises(SpecError) as refused:
        parse_spec(text)
    assert str(refused.value) == f"jpeg: parameter 'quality' must be int 1..100, got {shown}"
