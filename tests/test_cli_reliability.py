"""The command line under awkward input: special files, interrupted runs, bad seeds, specs and --out.

Everything runs in-process through ``forensic.__main__.main``. A run that could hang (a FIFO)
runs in a daemon thread with a deadline, so a regression fails the test instead of freezing it.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path

import pytest

from forensic.__main__ import main
from forensic.degrade import MAX_SEED
from tests import awkward
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
COFFEE = ROOT / "examples" / "coffee.jpg"
FACE = ROOT / "examples" / "astronaut_face.png"


def _run_with_deadline(capsys, fifo: Path, *argv: str, seconds: float = 60) -> tuple[int, str, str]:
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(main(list(argv))), daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    if worker.is_alive():
        awkward.unblock_fifo(fifo)
        worker.join(timeout=30)
        pytest.fail(f"`{' '.join(argv)}` was still waiting on the FIFO after {seconds} s")
    out, err = capsys.readouterr()
    return result[0], out, err


@pytest.fixture()
def no_model(monkeypatch):
    """Fails the test if the command gets as far as loading a detector (refusals must come first)."""
    from forensic._cli import _common, explain, predict

    def refuse(_args):
        raise AssertionError("the detector was loaded before the input was checked")

    for module in (_common, predict, explain):
        monkeypatch.setattr(module, "load_detector", refuse)


# ------------------------------------------------------------------------------ special files
def test_predict_refuses_a_fifo_up_front(capsys, tmp_path, no_model):
    pipe = awkward.fifo(tmp_path, "f.png")
    code, out, err = _run_with_deadline(capsys, pipe, "predict", "--preset", "tiny-random", str(COFFEE), str(pipe))
    assert code == 2 and out == ""
    assert err == f"error: {pipe} is a named pipe (FIFO), not an image file: pass image files or folders\n"


def test_explain_refuses_a_fifo_and_a_folder_up_front(capsys, tmp_path, no_model):
    pipe = awkward.fifo(tmp_path, "f.png")
    code, _, err = _run_with_deadline(capsys, pipe, "explain", str(pipe), "--out", str(tmp_path / "x"), "--preset", "tiny-random")
    assert code == 2 and "named pipe (FIFO)" in err and len(err.splitlines()) == 1
    code, _, err = run_cli(capsys, "explain", str(awkward.folder_named_like_image(tmp_path)), "--out", str(tmp_path / "x"))
    assert code == 2 and "is a folder: explain takes one image or clip file" in err


def test_degrade_refuses_a_fifo(capsys, tmp_path):
    pipe = awkward.fifo(tmp_path, "in.png")
    code, _, err = _run_with_deadline(capsys, pipe, "degrade", str(pipe), str(tmp_path / "out.png"), "--spec", "jpeg-q50")
    assert code == 2 and "named pipe (FIFO)" in err and not (tmp_path / "out.png").exists()


def test_folder_walks_take_regular_image_files_only(tmp_path):
    from forensic._cli._common import expand_paths

    (tmp_path / "b.jpg").write_bytes(COFFEE.read_bytes())
    awkward.fifo(tmp_path, "a.png")
    awkward.folder_named_like_image(tmp_path, "c.jpg")
    awkward.empty_path(tmp_path / "sub", "d.png")
    found = expand_paths([str(tmp_path)])
    assert [p.name for p in found] == ["b.jpg", "d.png"]  # the empty file gets its own error record later


# ------------------------------------------------------------------------------ streaming output
class _Report:
    def __init__(self, p: float) -> None:
        self.p = p

    def to_dict(self) -> dict:
        return {"path": None, "prob_fake": self.p, "label": "fake" if self.p >= 0.5 else "real", "streams": {},
                "face": {"mode": "no-face"}, "preset": "fake-detector", "untrained": False, "error": None}


class _StallingDetector:
    """Yields one result, then stalls until released, then is interrupted (Ctrl-C) or finishes."""

    preset = "fake-detector"
    untrained = False

    def __init__(self, interrupt: bool) -> None:
        self.first_written = threading.Event()
        self.release = threading.Event()
        self.interrupt = interrupt

    def analyze_many(self, sources, **_kwargs):
        sources = list(sources)
        yield sources[0], _Report(0.7)
        self.first_written.wait(timeout=30)
        self.release.wait(timeout=30)
        if self.interrupt:
            raise KeyboardInterrupt
        for source in sources[1:]:
            yield source, _Report(0.2)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_predict_writes_each_record_as_soon_as_it_is_final(capsys, tmp_path, monkeypatch, fmt):
    from forensic._cli import predict

    detector = _StallingDetector(interrupt=True)
    monkeypatch.setattr(predict, "load_detector", lambda _args: detector)
    out_file = tmp_path / f"out.{fmt}"
    result: list[int | BaseException] = []

    def run() -> None:
        try:
            result.append(main(["predict", str(COFFEE), str(FACE), "--format", fmt, "--out", str(out_file), "--no-progress"]))
        except BaseException as exc:  # noqa: BLE001 - a Ctrl-C that escaped must fail this test, not stop pytest
            result.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out_file.exists() and out_file.read_text().strip()):
        time.sleep(0.05)
    text = out_file.read_text()  # read while the second image is still "being analysed"
    detector.first_written.set()
    detector.release.set()
    worker.join(timeout=30)
    if fmt == "json":
        records = [json.loads(line) for line in text.splitlines()]
    else:
        records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) == 1 and records[0]["path"] == str(COFFEE) and float(records[0]["prob_fake"]) == 0.7
    # Ctrl-C then: exit 130, the record stays, and the message says what was kept
    _, err = capsys.readouterr()
    assert result == [130] and out_file.read_text() == text
    assert "interrupted after 1 of 2 files: the records written so far are complete." in err


def test_ntire_is_written_at_the_end_and_not_at_all_when_interrupted(capsys, tmp_path, monkeypatch):
    from forensic._cli import predict

    # sorted by file name: astronaut_face.png (the first result, 0.7), then coffee.jpg
    for interrupt, expected_code, expected_text in ((True, 130, ""), (False, 0, "0.7\n0.2\n")):
        detector = _StallingDetector(interrupt=interrupt)
        detector.first_written.set()
        detector.release.set()
        monkeypatch.setattr(predict, "load_detector", lambda _args, d=detector: d)
        out_file = tmp_path / f"sub{interrupt}.txt"
        code, _, err = run_cli(capsys, "predict", str(COFFEE), str(FACE), "--format", "ntire", "--out", str(out_file), "--no-progress")
        assert code == expected_code and out_file.read_text() == expected_text
        assert ("nothing was written (the ntire format needs every file)" in err) == interrupt


# ------------------------------------------------------------------------------ usage errors in one line
def test_predict_out_into_a_missing_folder_is_refused_before_loading(capsys, tmp_path, no_model):
    target = tmp_path / "no" / "such" / "verdicts.jsonl"
    code, out, err = run_cli(capsys, "predict", str(COFFEE), "--out", str(target))
    assert code == 2 and out == ""
    assert err == f"error: --out {target}: the folder {target.parent} does not exist: create it first (mkdir -p {target.parent})\n"
    code, _, err = run_cli(capsys, "predict", str(COFFEE), "--out", str(tmp_path))
    assert code == 2 and "is a folder: give a file name inside it" in err


@pytest.mark.parametrize("seed", ["-1", str(MAX_SEED + 1), str(2**70), "1.5", "abc"])
@pytest.mark.parametrize("command", ["predict", "degrade", "explain"])
def test_bad_seeds_are_refused_at_parse_time(capsys, tmp_path, no_model, command, seed):
    args = {"predict": [str(COFFEE)], "degrade": [str(COFFEE), str(tmp_path / "o.png"), "--spec", "jpeg-q50"],
            "explain": [str(COFFEE), "--out", str(tmp_path / "x")]}[command]
    with pytest.raises(SystemExit) as exited:
        main([command, *args, "--seed", seed])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err
    assert f"error: argument --seed: must be a whole number from 0 to {MAX_SEED}, got {seed!r}" in err.splitlines()[-1]
    assert not (tmp_path / "o.png").exists()


def test_the_largest_seed_works(capsys, tmp_path):
    out = tmp_path / "o.png"
    code, _, err = run_cli(capsys, "degrade", str(FACE), str(out), "--spec", "gnoise:sigma=5", "--seed", str(MAX_SEED))
    assert code == 0 and out.exists() and "gnoise" in err


def test_an_8500_step_spec_is_refused_at_once_with_a_short_line(capsys, tmp_path, no_model):
    spec = awkward.long_spec(8500)
    code, _, err = run_cli(capsys, "degrade", str(FACE), str(tmp_path / "o.png"), "--spec", spec)
    # refused by its length before it is parsed or run (the message says so; no wall-clock bound)
    assert code == 2 and not (tmp_path / "o.png").exists()
    assert len(err.splitlines()) == 1 and len(err) < 200 and f"{len(spec)} characters long, over the limit of 2000" in err
    code, _, err = run_cli(capsys, "predict", str(FACE), "--degrade", spec)
    assert code == 2 and len(err) < 200


def test_predict_batch_size_is_checked_at_parse_time(capsys):
    from forensic.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["predict", "--preset", "tiny-random", "--batch-size", "0", "examples/coffee.jpg"])
    assert exited.value.code == 2
    assert "error: argument --batch-size: must be a whole number >= 1, got '0'" in capsys.readouterr().err
