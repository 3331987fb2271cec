"""Issue 14, items 5-8: calibration on easy or tiny validation sets, runs that must not mix in one
folder, unreadable training images, and atomic writes with a log that survives kills.

Runs are `python -m train --config tiny` on 8 generated images (6 train, 2 validation): under a
second each on one CPU thread.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import train.data
import train.engine
from forensic.calibration import CalibrationResult
from forensic.data import read_samples
from train.__main__ import build_parser
from train.__main__ import main as train_main
from train._io import atomic_copy, replace_dir
from train.checkpoint import load_checkpoint
from train.config import load_config
from train.data import scan_samples
from train.distributed import DistInfo
from train.engine import fit
from train.face_cache import FaceCache
from train.rundir import RunFolderError
from train.stream import training_card_sections

FAST = ["eval.degradations=[]", "threads=1", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy8(tmp_path_factory, make_planted_artifact_set):
    return make_planted_artifact_set(tmp_path_factory.mktemp("toy8"), n=8, seed=11)


def _train(data: Path, out: Path, *args: str) -> int:
    return train_main(["--config", "tiny", "--data", str(data), "--out", str(out), *FAST, *args])


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _epochs(out: Path) -> list[int]:
    return [r["epoch"] for r in _log(out) if r["event"] == "epoch"]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _checkpoints(out: Path) -> set[str]:
    return {p.name for p in (out / "checkpoints").iterdir()}


# --------------------------------------------------------------------------------- 6: runs do not mix
def test_fresh_run_into_a_used_folder_refuses_and_overwrite_replaces_it(toy8, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(toy8, out, "epochs=2") == 0
    assert _checkpoints(out) == {"epoch_001.pt", "epoch_002.pt", "best.pt"}
    capsys.readouterr()

    # a new, shorter run into the same folder: refused, nothing touched
    before = (out / "log.jsonl").read_text()
    assert _train(toy8, out, "epochs=1") == 2
    line = _error_line(capsys)
    assert str(out) in line and "--resume auto" in line and "--overwrite" in line
    assert (out / "log.jsonl").read_text() == before and _checkpoints(out) == {"epoch_001.pt", "epoch_002.pt", "best.pt"}

    # --overwrite: the old run's later checkpoints are gone, so resume auto cannot pick them up
    assert _train(toy8, out, "epochs=1", "--overwrite") == 0
    assert _checkpoints(out) == {"epoch_001.pt", "best.pt"}
    assert [r["event"] for r in _log(out)] == ["start", "epoch"]
    assert (out / "face_cache.json").is_file()  # the cache is keyed by file content: kept
    assert _train(toy8, out, "epochs=1", "--resume", "auto") == 0
    assert _epochs(out) == [1] and load_checkpoint(out / "checkpoints" / "best.pt").epoch == 1

    assert _train(toy8, out, "--resume", "auto", "--overwrite") == 2
    assert "only one of them" in _error_line(capsys)
    assert "--overwrite" in build_parser().format_help()  # a documented flag


def test_resume_refuses_another_config_or_data_in_one_line(toy8, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(toy8, out, "epochs=1", "export.enabled=false") == 0
    capsys.readouterr()

    assert _train(toy8, out, "epochs=1", "optim.lr=1e-3", "--resume", "auto") == 2
    line = _error_line(capsys)
    assert "epoch_001.pt" in line and "optim.lr 0.003 -> 0.001" in line and "--overwrite" in line
    cfg = load_config("tiny", {"data.path": str(toy8), "epochs": 1, "eval.degradations": [], "loss.gamma": 0.0, "resume": "auto"})
    with pytest.raises(RunFolderError, match=r"loss.gamma 2.0 -> 0.0"):  # the API raises what the CLI prints
        fit(cfg, out=out)
    # with the checkpoint gone, the log still says whose folder it is
    shutil.move(out / "checkpoints", tmp_path / "kept")
    assert _train(toy8, out, "epochs=1", "optim.lr=1e-3", "--resume", "auto") == 2
    assert "optim.lr 0.003 -> 0.001" in _error_line(capsys)
    shutil.move(tmp_path / "kept", out / "checkpoints")

    # other data: one more image
    data = tmp_path / "data"
    shutil.copytree(toy8, data)
    shutil.copyfile(data / "fake" / "img_001.png", data / "fake" / "extra.png")
    assert _train(data, out, "epochs=1", "--resume", "auto") == 2
    assert "other data" in _error_line(capsys)

    # the same data in another place, and only runtime settings changed: accepted
    moved = tmp_path / "moved"
    shutil.copytree(toy8, moved)
    assert _train(moved, out, "epochs=1", "--resume", "auto", "keep_checkpoints=1", "data.num_workers=0", "export.enabled=true") == 0
    assert (out / "export" / "config.json").is_file() and _epochs(out) == [1]


# --------------------------------------------------------------------------------- 8: kills and atomic writes
class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs (BaseException, so no handler catches it)."""


def test_kill_before_the_checkpoint_does_not_duplicate_the_epoch(toy8, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_save = train.engine.save_checkpoint

    def save(path, state):
        if state.epoch == 2:
            raise Killed
        return real_save(path, state)

    cfg = load_config("tiny", {"data.path": str(toy8), "epochs": 2, "eval.degradations": [], "threads": 1})
    with monkeypatch.context() as m:
        m.setattr(train.engine, "save_checkpoint", save)
        with pytest.raises(Killed):
            fit(cfg, out=out)
    assert _checkpoints(out) == {"epoch_001.pt", "best.pt"}

    result = fit(cfg.replace(resume="auto"), out=out)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert _epochs(out) == [1, 2]  # each epoch once
    starts = [r for r in _log(out) if r["event"] == "start"]
    assert [s["start_epoch"] for s in starts] == [0, 1]


def test_kill_after_the_checkpoint_and_a_torn_line_are_repaired(toy8, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_write = train.engine._write_json_line

    def write(path, record):
        if record.get("epoch") == 2:
            with path.open("a") as f:
                f.write('{"event": "epoch", "epoch": 2, "train_lo')  # the kill cuts the line short
            raise Killed
        return real_write(path, record)

    cfg = load_config("tiny", {"data.path": str(toy8), "epochs": 2, "eval.degradations": [], "threads": 1, "export.enabled": False})
    with monkeypatch.context() as m:
        m.setattr(train.engine, "_write_json_line", write)
        with pytest.raises(Killed):
            fit(cfg, out=out)
    assert _checkpoints(out) == {"epoch_001.pt", "epoch_002.pt", "best.pt"}

    result = fit(cfg.replace(resume="auto"), out=out)  # nothing left to train
    records = _log(out)  # parses: the torn line is gone
    assert _epochs(out) == [1, 2]
    epoch2 = next(r for r in records if r.get("epoch") == 2)
    assert epoch2["train_loss"] == pytest.approx(result.history[1]["train_loss"])  # from the checkpoint


def test_best_checkpoint_is_never_half_written(toy8, tmp_path, monkeypatch):
    out = tmp_path / "run"
    copies = []

    def dying_copyfile(src, dst, *args, **kwargs):  # the old code's copy
        copies.append(dst)
        if len(copies) == 2:
            Path(dst).write_bytes(Path(src).read_bytes()[:1000])
            raise Killed
        return real_copyfile(src, dst, *args, **kwargs)

    def dying_copyfileobj(fsrc, fdst, length=0):  # the atomic copy's
        copies.append(fdst)
        if len(copies) == 2:
            fdst.write(fsrc.read(1000))
            raise Killed
        return real_copyfileobj(fsrc, fdst, length)

    real_copyfile, real_copyfileobj = shutil.copyfile, shutil.copyfileobj
    # no validation split: every epoch is the best, so best.pt is copied after each
    cfg = load_config("tiny", {"data.path": str(toy8), "epochs": 2, "eval.degradations": [], "threads": 1,
                               "data.val_fraction": 0.0, "export.enabled": False})
    with monkeypatch.context() as m:
        m.setattr(shutil, "copyfile", dying_copyfile)
        m.setattr(shutil, "copyfileobj", dying_copyfileobj)
        with pytest.raises(Killed):
            fit(cfg, out=out)
    assert load_checkpoint(out / "checkpoints" / "best.pt").epoch == 1  # the previous best, whole
    assert not list(out.rglob("*.tmp"))

    # epoch 2 was checkpointed (best) but its best.pt copy was killed: the resume repairs best.pt
    fit(cfg.replace(resume="auto"), out=out)
    assert load_checkpoint(out / "checkpoints" / "best.pt").epoch == 2


def test_replace_dir_keeps_the_old_folder_when_writing_fails(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "old.txt").write_text("old")

    def half(staging: Path) -> None:
        (staging / "new.txt").write_text("new")
        raise Killed

    with pytest.raises(Killed):
        replace_dir(folder, half)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"] and (folder / "old.txt").read_text() == "old"
    replace_dir(folder, lambda staging: (staging / "new.txt").write_text("new"))
    assert sorted(p.name for p in folder.iterdir()) == ["new.txt"]
    atomic_copy(folder / "new.txt", tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["copy.txt", "export"]


# --------------------------------------------------------------------------------- 7: unreadable images
@pytest.fixture()
def broken_data(toy8, tmp_path):
    data = tmp_path / "broken"
    shutil.copytree(toy8, data)
    (data / "fake" / "notes.png").write_text("not an image")
    png = (data / "real" / "img_000.png").read_bytes()
    (data / "real" / "cut.png").write_bytes(png[: len(png) // 3])
    return data


def test_unreadable_images_are_listed_and_skipped(broken_data, tmp_path, caplog):
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="train"):
        assert _train(broken_data, out, "epochs=1", "data.val_fraction=0.25") == 0
    assert "skipping 2 of 10 image(s) that cannot be read" in caplog.text
    start = _log(out)[0]
    assert start["data"]["skipped"] == 2
    assert sorted(Path(f["path"]).name for f in start["data"]["skipped_files"]) == ["cut.png", "notes.png"]
    assert all(f["reason"] for f in start["data"]["skipped_files"])
    counts = start["data"]["train"], start["data"]["val"]
    assert sum(c["real"] + c["fake"] for c in counts) == 8
    assert "Left out: 2 file(s) that cannot be read" in (out / "export" / "README.md").read_text()


def test_strict_data_refuses_unreadable_images(broken_data, tmp_path, capsys):
    assert _train(broken_data, tmp_path / "run", "epochs=1", "data.strict=true") == 2
    line = _error_line(capsys)
    assert "2 of 10 image(s) cannot be read" in line and ".png" in line and "data.strict=false" in line
    assert not (tmp_path / "run" / "log.jsonl").exists()


def test_scan_decodes_each_file_once(broken_data, tmp_path, monkeypatch):
    calls = []
    real = train.data.load_image
    monkeypatch.setattr(train.data, "load_image", lambda path: calls.append(Path(path).name) or real(path))
    samples = read_samples(broken_data)
    cache_path = tmp_path / "cache.json"
    first = scan_samples(samples, FaceCache(cache_path), info=DistInfo(), threads=2)
    assert first.decoded == len(calls) == 10 and len(first.readable) == 8
    assert sorted(b.path.name for b in first.bad) == ["cut.png", "notes.png"]
    calls.clear()
    again = scan_samples(samples, FaceCache(cache_path), info=DistInfo())
    assert again.decoded == 0 and calls == [] and again.bad == first.bad  # from the cache on disk
    shutil.copyfile(broken_data / "real" / "img_000.png", broken_data / "real" / "cut.png")  # repaired
    fixed = scan_samples(samples, FaceCache(cache_path), info=DistInfo())
    assert calls == ["cut.png"] and [b.path.name for b in fixed.bad] == ["notes.png"]


# --------------------------------------------------------------------------------- 5: calibration
def test_small_validation_set_keeps_temperature_one_with_a_note(toy8, tmp_path, caplog):
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        assert _train(toy8, out, "epochs=1") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["temperature"] == 1.0 and metrics["calibration"]["fitted"] is False
    assert "temperature kept at 1" in caplog.text
    config = json.loads((out / "export" / "config.json").read_text())
    assert config["streams"][0]["temperature"] == 1.0
    assert "Not calibrated: temperature kept at 1, because" in (out / "export" / "README.md").read_text()


def test_card_reports_a_fitted_temperature_and_its_bound_note(toy8, tmp_path):
    from types import SimpleNamespace

    from train.samples import DataSplit

    cfg = load_config("tiny", {"data.path": str(toy8)})
    split = DataSplit(tuple(read_samples(toy8)), (), "val_fraction")
    data = SimpleNamespace(split=split, skipped=())
    fitted = CalibrationResult(0.05, 0.2, 0.1, 0.5, 0.4, fitted=True, note="the fit ended on the bound T = 0.05", n=40)
    card = training_card_sections(cfg, metrics={}, calibration=fitted, temperature=0.05, data=data, best_epoch=1, world_size=1)
    assert "T = 0.05" in card["Calibration"] and "ended on the bound" in card["Calibration"]
    kept = CalibrationResult(1.0, 0.2, 0.2, 0.5, 0.5, fitted=False, note="the model makes no errors on the 40 held-out images", n=40)
    card = training_card_sections(cfg, metrics={}, calibration=kept, temperature=1.0, data=data, best_epoch=1, world_size=1)
    assert card["Calibration"].startswith("Not calibrated: temperature kept at 1, because the model makes no errors")
    assert np.isfinite(fitted.temperature)
