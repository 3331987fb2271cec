"""Issue 25, items 3 and 5: one run per output folder at a time, unique temporary names, and a
damaged face cache rebuilt instead of aborting the run.

Runs are ``python -m train --config tiny`` on 8 generated images: about a second each on one CPU thread.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from analysis.store import AnalysisError, check_run_folder
from forensic.folder_lock import FolderBusy, lock_folder
from tests import awkward
from train.__main__ import main as train_main
from train._io import atomic_write, atomic_write_text
from train.face_cache import FaceCache

FAST = ["eval.degradations=[]", "threads=1", "--no-progress"]
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy8(tmp_path_factory, make_planted_artifact_set):
    return make_planted_artifact_set(tmp_path_factory.mktemp("toy8"), n=8, seed=11)


def _train(data: Path, out: Path, *args: str) -> int:
    return train_main(["--config", "tiny", "--data", str(data), "--out", str(out), *FAST, *args])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# --------------------------------------------------------------------------------- 3: one run per folder
@pytest.mark.parametrize("kind", ["train", "distill"])
def test_a_second_run_into_a_held_folder_is_refused_naming_the_holder(toy8, tmp_path, capsys, kind):
    out = tmp_path / "run"
    with awkward.held_folder(out) as pid:
        if kind == "train":
            rc = _train(toy8, out, "epochs=1")
        else:  # refused before the teacher is even looked for
            rc = train_main(["distill", "--teacher", str(tmp_path / "nowhere"), "--config", "distill_tiny", "--data", str(toy8),
                             "--out", str(out), *FAST])
        assert rc == 2
        line = _error_line(capsys)
        assert f"process {pid}" in line and str(out) in line and "in use" in line
        assert not (out / "log.jsonl").exists() and not (out / "checkpoints").exists()
    # the holder gone (killed: the kernel drops its lock), the folder is free again
    assert _train(toy8, out, "epochs=1") == 0
    assert [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()] == ["start", "epoch"]


def test_the_lock_is_released_after_a_run_and_after_a_failed_one(toy8, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(toy8, out, "epochs=1") == 0
    assert _train(toy8, out, "epochs=1") == 2  # refused (a run is there), not by the lock
    assert "in use" not in _error_line(capsys)
    lock_folder(out).release()  # nothing holds it any more


def test_folder_lock_is_exclusive_even_within_one_process(tmp_path):
    with lock_folder(tmp_path / "f") as held:
        assert held.held and (tmp_path / "f" / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(FolderBusy, match=f"process {os.getpid()}"):
            lock_folder(tmp_path / "f")
    with lock_folder(tmp_path / "f"):
        pass


def test_an_analysis_folder_held_by_another_process_is_refused(tmp_path):
    identity = {"preset": "tiny-random", "weights": None, "untrained": True, "fingerprint": "f"}
    with awkward.held_folder(tmp_path / "a") as pid:
        with pytest.raises(AnalysisError, match=f"in use by process {pid}"):
            check_run_folder(tmp_path / "a", identity)
    check_run_folder(tmp_path / "a", identity)
    check_run_folder(tmp_path / "a", identity)  # again in this process: it already holds the folder
    with pytest.raises(FolderBusy):
        lock_folder(tmp_path / "a")


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    """A writer that starts while another is writing the same file (two runs sharing a face cache):
    both finish, the file is one of the two whole, and no temporary file is left."""
    target = tmp_path / "face_cache.json"

    def outer(f):
        f.write(b'{"outer": ')
        atomic_write_text(target, '{"inner": 1}')  # the other writer, start to finish
        f.write(b"2}")

    atomic_write(target, outer)
    assert json.loads(target.read_text()) == {"outer": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face_cache.json"]


@pytest.mark.slow  # two interpreters importing torch: ~10-20 s on a loaded machine
def test_two_trainings_started_together(toy8, tmp_path):
    """Two ``python -m train`` into one folder: one trains, the other is refused in one line. Two into
    two folders sharing one face cache: both train."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "train", "--config", "tiny", "--data", str(toy8), *FAST, "epochs=1"]
    one = tmp_path / "one"
    results = awkward.start_together([[*cmd, "--out", str(one)], [*cmd, "--out", str(one)]], cwd=ROOT, env=env)
    assert sorted(rc for rc, _ in results) == [0, 2], results
    refused = next(err for rc, err in results if rc == 2)
    assert "Traceback" not in refused and ("in use by process" in refused or "already holds a training run" in refused), refused
    starts = [json.loads(line) for line in (one / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in starts] == ["start", "epoch"]

    shared = f"data.face_cache={tmp_path / 'faces.json'}"
    results = awkward.start_together([[*cmd, "--out", str(tmp_path / "a"), shared], [*cmd, "--out", str(tmp_path / "b"), shared]],
                                     cwd=ROOT, env=env)
    assert [rc for rc, _ in results] == [0, 0], results
    assert isinstance(json.loads((tmp_path / "faces.json").read_text()), dict)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


# --------------------------------------------------------------------------------- 5: a damaged face cache
@pytest.mark.parametrize("kind", list(awkward.MALFORMED_FACE_CACHES))
def test_a_malformed_face_cache_is_discarded_with_a_warning(tmp_path, caplog, kind):
    path = awkward.malformed_face_cache(tmp_path / "face_cache.json", kind)
    with caplog.at_level(logging.WARNING, logger="train.face_cache"):
        cache = FaceCache(path)
    assert cache.results == {} and cache.scans == {}
    assert any(str(path) in r.getMessage() and ("rebuilt" in r.getMessage() or "detected again" in r.getMessage())
               for r in caplog.records)
    cache.put_scan("x|scan", None)
    cache.save()
    assert json.loads(path.read_text()) == {"x|scan": {"error": None}}  # the damaged entries are gone


def test_a_face_cache_keeps_its_good_entries_and_drops_the_bad(tmp_path):
    good = {"mode": "no-face", "box": None, "region": {"x0": 0.0, "y0": 0.0, "x1": 4.0, "y1": 4.0}, "faces": [],
            "found_by": None, "reason": "no face", "image_size": [4, 4]}
    path = tmp_path / "face_cache.json"
    path.write_text(json.dumps({"good": good, "bad": {"mode": "crop"}, "ok|scan": {"error": "cut"}}))
    cache = FaceCache(path)
    assert "good" in cache and "bad" not in cache and cache.scans == {"ok|scan": "cut"}


@pytest.mark.parametrize("kind", ["a list", "an entry without fields"])
def test_training_with_a_malformed_face_cache_rebuilds_it(toy8, tmp_path, caplog, kind):
    out = tmp_path / "run"
    awkward.malformed_face_cache(out / "face_cache.json", kind)
    with caplog.at_level(logging.WARNING, logger="train.face_cache"):
        assert _train(toy8, out, "epochs=1") == 0
    assert any("face cache" in r.getMessage() for r in caplog.records)
    rebuilt = json.loads((out / "face_cache.json").read_text())
    assert isinstance(rebuilt, dict) and rebuilt and "k" not in rebuilt


def test_a_run_refused_while_the_holder_writes_its_pid_still_names_it(tmp_path):
    """The holder writes its PID just after taking the lock: a run refused in that instant waits for it."""
    import fcntl
    import threading

    from forensic.folder_lock import LOCK_NAME, FolderBusy, lock_folder

    handle = open(tmp_path / LOCK_NAME, "a+")  # another holder that has the lock but no PID written yet
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    late = threading.Timer(0.2, lambda: (handle.write("4242\n"), handle.flush()))
    late.start()
    try:
        with pytest.raises(FolderBusy) as refused:
            lock_folder(tmp_path, what="training run")
        assert refused.value.pid == 4242 and "in use by process 4242" in str(refused.value)
    finally:
        late.join()
        handle.close()
