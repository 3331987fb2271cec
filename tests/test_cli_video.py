"""``python -m forensic predict`` with clips: mixed folders, one record per clip, CSV frame and summary
rows, ntire, bad clips, Ctrl-C, and the clip options (README, "Video")."""

from __future__ import annotations

import csv
import io
import json

import pytest
from PIL import Image

from forensic.__main__ import main
from forensic.records import CLIP_COLUMNS, CSV_COLUMNS, VIDEO_CSV_COLUMNS, csv_rows, video_record
from tests.cli import run_cli
from tests.clips import (
    moving_frames, photo, static_frames, write_audio_only, write_clip, write_empty, write_text_as_video, write_truncated,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BAD = ("d_empty.mp4", "e_text.mp4", "f_audio.mp4", "g_cut.mp4")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """a_face.png, b_face.mp4 (2 s at 10 fps), c_cup.jpg, the bad clips, h_long.mkv (4 s) cut at 60% (its
    first frames survive), and a text file that is neither."""
    root = tmp_path_factory.mktemp("mixed")
    Image.fromarray(photo("astronaut_face", 96)).save(root / "a_face.png")
    write_clip(root / "b_face.mp4", static_frames(20, size=96), fps=10)
    Image.fromarray(photo("coffee", 96)).save(root / "c_cup.jpg", quality=90)
    write_empty(root / "d_empty.mp4")
    write_text_as_video(root / "e_text.mp4")
    write_audio_only(root / "f_audio.mp4")
    write_truncated(root / "b_face.mp4", root / "g_cut.mp4", keep=0.5)
    whole = write_clip(root / "whole.mkv", moving_frames(40, size=96), fps=10)
    write_truncated(whole, root / "h_long.mkv", keep=0.6)
    whole.unlink()
    (root / "notes.txt").write_text("neither an image nor a clip")
    return root


@pytest.fixture(scope="module")
def json_run(folder):
    """The mixed folder as JSON Lines (progress on), run once for the module."""
    capture = pytest.MonkeyPatch()
    out, err = io.StringIO(), io.StringIO()
    capture.setattr("sys.stdout", out)
    capture.setattr("sys.stderr", err)
    try:
        code = main(["predict", str(folder), "--preset", "tiny-random", "--fps", "2"])
    finally:
        capture.undo()
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_a_mixed_folder_gives_one_record_per_image_and_clip_in_name_order(json_run):
    code, records, err = json_run
    names = [r["path"].rsplit("/", 1)[-1] for r in records]
    assert names == ["a_face.png", "b_face.mp4", "c_cup.jpg", *BAD, "h_long.mkv"]
    assert code == 1 and f"{len(BAD)} of 8 files failed" in err
    clip = records[1]
    assert clip["kind"] == "video" and clip["error"] is None and clip["clip"]["width"] == 96
    assert clip["sampling"]["times_s"] == [0.0, 0.5, 1.0, 1.5] and len(clip["frames"]) == 4
    assert [f["time_s"] for f in clip["frames"]] == clip["sampling"]["times_s"]
    assert all(f["error"] is None and 0 <= f["prob_fake"] <= 1 for f in clip["frames"])
    assert records[0].get("kind") is None and records[0]["streams"]  # the images' records are unchanged


def test_untrained_weights_give_no_label_for_the_clip_or_its_frames(json_run):
    _, records, err = json_run
    clip = records[1]
    summary = clip["summary"]
    assert summary["label"] is None and summary["verdict"] == "none (untrained)"
    assert clip["label"] is None and clip["verdict"] == "none (untrained)"  # the clip's verdict at the top too
    assert clip["prob_fake"] == summary["prob_fake"] and clip["prob_fake"] in [round(0.1 * i, 1) for i in range(11)]
    assert all(f["label"] is None and f["verdict"] == "none (untrained)" for f in clip["frames"])
    assert clip["untrained"] is True and clip["preset"] == "tiny-random" and "UNTRAINED" in err


def test_each_bad_clip_is_one_error_record_and_one_line(json_run):
    _, records, err = json_run
    good = set(records[1])
    for record in records[3:7]:
        assert set(record) == good, record["path"]  # the same keys as a clip that was analysed
        assert record["kind"] == "video" and record["prob_fake"] is None and record["frames"] == []
        assert record["summary"] is None and record["error"] and "\n" not in record["error"]
        assert sum(line.startswith(record["path"] + ": ") for line in err.splitlines()) == 1
    by_name = {r["path"].rsplit("/", 1)[-1]: r["error"] for r in records}
    assert "0 bytes" in by_name["d_empty.mp4"] and "no video stream" in by_name["f_audio.mp4"]
    assert "text" in by_name["e_text.mp4"]


def test_a_clip_cut_short_keeps_the_frames_before_the_damage(json_run):
    _, records, err = json_run
    cut = records[7]
    assert cut["error"] is None and 1 <= len(cut["frames"]) < 8
    assert any("truncated or damaged" in note for note in cut["notes"])
    assert f"{cut['path']}: note: the clip ends at" in err  # the notes reach stderr too (the CSV has no column)


def test_progress_counts_a_clips_frames(json_run):
    _, _, err = json_run
    assert "frame/s" in err or "s/frame" in err  # tqdm's unit for clips
    assert "img" in err  # and the images' bar


def test_csv_has_a_row_per_frame_and_a_summary_row_per_clip(capsys, folder, json_run):
    _, records, _ = json_run
    code, out, _ = run_cli(capsys, "predict", str(folder), "--preset", "tiny-random", "--fps", "2", "--format", "csv",
                        "--no-progress")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1 and tuple(rows[0]) == VIDEO_CSV_COLUMNS
    frames = sum(len(r.get("frames", [])) for r in records)
    assert len(rows) == len(records) + frames  # images: 1 row; clips: their frames and a summary row
    assert [r["row"] for r in rows[:7]] == ["image", "frame", "frame", "frame", "frame", "clip", "image"]
    clip_rows = [r for r in rows if r["path"].endswith("b_face.mp4")]
    assert [r["time_s"] for r in clip_rows[:-1]] == ["0.0", "0.5", "1.0", "1.5"]
    summary = clip_rows[-1]
    assert float(summary["prob_fake"]) == records[1]["prob_fake"] and summary["verdict"] == "none (untrained)"
    assert summary["frames"] == "4" and summary["label"] == "" and summary["error"] == ""
    medians = records[1]["summary"]["streams"]
    assert all(float(summary[name]) == pytest.approx(medians[name]["median"], abs=1e-6) for name in medians)
    bad = [r for r in rows if r["error"]]
    assert [r["row"] for r in bad] == ["clip"] * len(BAD)


def test_a_run_without_clips_keeps_the_image_columns(capsys, folder):
    code, out, _ = run_cli(capsys, "predict", str(folder / "a_face.png"), "--preset", "tiny-random", "--format", "csv",
                        "--no-progress")
    assert code == 0 and out.splitlines()[0] == ",".join(CSV_COLUMNS)


def test_ntire_gives_a_clip_its_summary_probability(capsys, folder, json_run, tmp_path):
    _, records, _ = json_run
    target = tmp_path / "ntire.txt"
    code, _, err = run_cli(capsys, "predict", str(folder / "b_face.mp4"), str(folder / "d_empty.mp4"), "--preset",
                        "tiny-random", "--fps", "2", "--format", "ntire", "--out", str(target), "--no-progress")
    assert code == 1 and "0.5 for each of the 1 failed" in err
    assert target.read_text().splitlines() == [str(records[1]["prob_fake"]), "0.5"]


def test_max_frames_spreads_the_samples_over_the_whole_clip(capsys, folder):
    code, out, _ = run_cli(capsys, "predict", str(folder / "b_face.mp4"), "--preset", "tiny-random", "--fps", "10",
                        "--max-frames", "3", "--no-progress")
    record = json.loads(out)
    assert code == 0 and len(record["frames"]) == 3
    assert record["sampling"]["spread"] is True and record["sampling"]["max_frames"] == 3
    assert record["sampling"]["times_s"][-1] > 1.0


def test_crf_reencodes_first_and_the_record_says_so(capsys, folder):
    code, out, _ = run_cli(capsys, "predict", str(folder / "b_face.mp4"), "--preset", "tiny-random", "--crf", "40",
                        "--max-frames", "2", "--degrade", "jpeg-q20", "--no-progress")
    record = json.loads(out)
    assert code == 0 and record["degradation"]["reencode"]["crf"] == 40
    assert "c40" in record["degradation"]["reencode"]["reference"]
    assert record["degradation"]["frames"]["spec"] == "jpeg-q20"


@pytest.mark.parametrize("argv, word", [
    (("--fps", "0"), "--fps"), (("--fps", "nan"), "--fps"), (("--max-frames", "0"), "--max-frames"),
    (("--crf", "52"), "--crf"), (("--explain", "magic"), "--explain"), (("--explain-frames", "-1"), "--explain-frames"),
])
def test_bad_clip_options_are_refused_at_parse_time(capsys, folder, argv, word):
    with pytest.raises(SystemExit) as stop:
        main(["predict", str(folder / "b_face.mp4"), "--preset", "tiny-random", *argv])
    _, err = capsys.readouterr()
    assert stop.value.code == 2 and word in err and "Traceback" not in err


def test_ctrl_c_keeps_the_records_already_written(capsys, folder, monkeypatch):
    from forensic.pipeline import Detector

    calls = []
    real = Detector.analyze_video

    def stop_on_the_second(self, path, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, path, **kw)

    monkeypatch.setattr(Detector, "analyze_video", stop_on_the_second)
    code, out, err = run_cli(capsys, "predict", str(folder / "b_face.mp4"), str(folder / "a_face.png"),
                          str(folder / "h_long.mkv"), str(folder / "c_cup.jpg"), "--preset", "tiny-random",
                          "--max-frames", "2", "--no-progress")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 130 and "interrupted after 2 of 4 files" in err
    assert [r["path"].rsplit("/", 1)[-1] for r in records] == ["b_face.mp4", "a_face.png"]


@pytest.mark.slow  # ~5 s: Score-CAM on one frame
def test_explain_frames_explains_the_most_suspicious_frame(capsys, folder):
    code, out, _ = run_cli(capsys, "predict", str(folder / "b_face.mp4"), "--preset", "tiny-random", "--fps", "2",
                        "--explain", "fast", "--explain-frames", "1", "--no-progress")
    record = json.loads(out)
    assert code == 0 and record["explain"] == "fast" and len(record["explained"]) == 1
    frame = record["frames"][record["explained"][0]]
    assert frame["explain"] == "fast" and frame["streams"]["texture"]["cam"]["forward_passes"] > 0
    assert all(f["explain"] == "none" for f in record["frames"] if f["index"] not in record["explained"])


def test_a_clip_error_record_has_one_summary_row():
    record = video_record("x/clip.mp4", OSError("\nmoov atom not found\nmore"), preset="small", untrained=False)
    assert record["error"] == "moov atom not found" and record["kind"] == "video" and record["path"] == "x/clip.mp4"
    [row] = csv_rows(record)
    assert tuple(row) == VIDEO_CSV_COLUMNS and row["row"] == "clip" and row["preset"] == "small"
    assert all(row[c] is None for c in CLIP_COLUMNS if c != "row")


def test_explain_a_clip_draws_its_most_suspicious_frames_and_the_timeline(folder, tmp_path, capsys):
    out = tmp_path / "explained"
    code, said, err = run_cli(capsys, "explain", str(folder / "b_face.mp4"), "--out", str(out), "--preset", "tiny-random",
                           "--fps", "2", "--explain-frames", "2")
    assert code == 0, err
    record = json.loads((out / "report.json").read_text())
    assert record["kind"] == "video" and record["explain"] == "fast" and len(record["explained"]) == 2
    assert record["verdict"] == "none (untrained)" and record["error"] is None
    names = {p.name for p in out.iterdir()}
    assert "timeline.png" in names
    for i in record["explained"]:
        stem = f"frame{i:03d}"
        assert {f"{stem}_regions.png", f"{stem}_explanation.png", *(f"{stem}_cam_{n}.png" for n in ("texture", "face", "fusion"))} <= names
        assert f"frame {i} at {record['frames'][i]['time_s']:.2f} s" in said
    assert "clip P(fake)" in said and "4 frames" in said
    for name in names - {"report.json"}:
        with Image.open(out / name) as im:
            assert im.size[0] > 64 and im.size[1] > 64


def test_explain_a_bad_clip_is_one_line(folder, tmp_path, capsys):
    code, said, err = run_cli(capsys, "explain", str(folder / "e_text.mp4"), "--out", str(tmp_path / "x"), "--preset", "tiny-random")
    assert code == 2 and "is text, not a video" in err and not (tmp_path / "x").exists()
