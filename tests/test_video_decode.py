"""forensic.video.decoding and forensic.video.reencode on clips the tests make (tests/clips.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import forensic.video.decoding as decoding
from forensic.degrade.ops.pixels import psnr
from forensic.images import ImageError
from forensic.video import (
    REENCODE_PRESETS,
    VIDEO_MAX_PIXELS,
    ClipInfo,
    VideoError,
    is_video_path,
    iter_frames,
    probe,
    reencoded,
    sample_times,
)
from tests.clips import (
    cut_frames,
    frame_number,
    moving_frames,
    numbered_frames,
    photo,
    planted_segment,
    static_frames,
    write_audio_only,
    write_clip,
    write_empty,
    write_no_frames,
    write_text_as_video,
    write_truncated,
)

ALL = {"fps": 1000, "max_frames": 10_000}  # sample every frame of a short clip


def _all_frames(path):
    return list(iter_frames(path, **ALL))


# -- sample times -----------------------------------------------------------------------------------
def test_sample_times_steps_from_zero_below_the_duration():
    assert sample_times(3.0) == [0.0, 1.0, 2.0]
    assert sample_times(3.2, fps=2) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert sample_times(0.4) == [0.0]


def test_sample_times_spread_over_a_long_clip():
    times = sample_times(600.0, fps=1, max_frames=64)
    assert len(times) == 64
    assert times[0] == 0.0 and 590 < times[-1] < 600
    gaps = np.diff(times)
    assert np.allclose(gaps, 600 / 64)


def test_sample_times_always_one_and_checks_its_arguments():
    assert sample_times(0.0) == [0.0]
    assert sample_times(float("nan")) == [0.0]
    for bad in ({"fps": 0}, {"fps": -1}, {"max_frames": 0}):
        with pytest.raises(ValueError):
            sample_times(10.0, **bad)


def test_is_video_path_by_suffix():
    assert is_video_path("a/b/CLIP.MP4") and is_video_path("x.webm") and is_video_path("x.m4v")
    assert not is_video_path("x.gif") and not is_video_path("x.jpg") and not is_video_path("mp4")


# -- containers, codecs, info -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, codec, container, kw",
    [
        ("c.mp4", "h264", "mp4", {}),
        ("c.mov", "h264", "mov", {}),
        ("c.mkv", "h264", "matroska", {}),
        ("c.webm", "vp9", "webm", {}),
        ("c.avi", "mpeg4", "avi", {}),
        ("c.mp4", "mpeg4", "mp4", {"codec": "mpeg4"}),
        ("c.gif", "gif", "gif", {}),
    ],
)
def test_probe_and_decode_each_container(tmp_path, name, codec, container, kw):
    frames = moving_frames(12, size=(96, 64))
    path = write_clip(tmp_path / name, frames, fps=5, **kw)  # 5 fps: GIF stores delays in 1/100 s
    info = probe(path)
    assert isinstance(info, ClipInfo)
    assert (info.name, info.codec, info.container) == (name, codec, container)
    assert (info.width, info.height, info.rotation) == (96, 64, 0)
    assert info.fps == pytest.approx(5.0) and info.duration_s == pytest.approx(2.4, abs=0.05)
    assert info.has_audio is False
    assert info.to_dict()["width"] == 96
    got = _all_frames(path)
    assert [f.index for f in got] == list(range(12))
    assert [f.time_s for f in got] == pytest.approx([i / 5 for i in range(12)], abs=2e-3)
    for frame, original in zip(got, frames):
        assert frame.image.shape == (64, 96, 3) and frame.image.dtype == np.uint8
        assert frame.scaled_from is None
        # GIF: a 256-colour palette; mpeg4: FFmpeg's default 200 kb/s
        assert psnr(frame.image, original) > {"gif": 14, "mpeg4": 20}.get(codec, 25)


def test_audio_track_is_reported_and_ignored(tmp_path):
    path = write_clip(tmp_path / "talk.mp4", static_frames(10, size=64), fps=10, audio=True)
    info = probe(path)
    assert info.has_audio
    assert len(_all_frames(path)) == 10


def test_one_fps_sampling_takes_the_first_frame_at_or_after_each_time(tmp_path):
    path = write_clip(tmp_path / "n.mp4", numbered_frames(30), fps=10)  # 3 s
    stream = iter_frames(path, fps=1)
    got = list(stream)
    assert stream.times == [0.0, 1.0, 2.0]
    assert [f.time_s for f in got] == pytest.approx([0.0, 1.0, 2.0])
    assert [frame_number(f.image) for f in got] == [0, 10, 20]
    assert stream.notes == []


# -- rotation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotation_metadata_is_applied(tmp_path, rotate):
    upright = static_frames(4, name="astronaut_face", size=(64, 96))  # portrait: 64 wide, 96 high
    path = write_clip(tmp_path / "phone.mov", upright, rotate=rotate)
    info = probe(path)
    assert info.rotation == rotate
    assert (info.width, info.height) == (64, 96)
    for frame in _all_frames(path):
        assert frame.image.shape == (96, 64, 3)
        assert psnr(frame.image, upright[0]) > 28
        # the wrong turn would be far off
        assert psnr(frame.image, upright[0]) > psnr(frame.image, np.ascontiguousarray(upright[0][::-1, ::-1])) + 5


# -- variable frame rate ----------------------------------------------------------------------------
def test_variable_frame_rate_is_sampled_by_presentation_time(tmp_path):
    times = [0.0, 0.1, 0.5, 2.0, 2.1]
    path = write_clip(tmp_path / "vfr.mkv", numbered_frames(5), times=times)
    assert [f.time_s for f in _all_frames(path)] == pytest.approx(times)
    got = list(iter_frames(path, fps=1))
    # 0 s -> the frame at 0; 1 s and 2 s both fall on the frame at 2.0 s, which is given once
    assert [f.time_s for f in got] == pytest.approx([0.0, 2.0])
    assert [frame_number(f.image) for f in got] == [0, 3]
    assert [f.index for f in got] == [0, 1]


def test_a_stream_running_past_its_stated_length_is_sampled_to_its_end(tmp_path):
    # libx264 with B-frames at irregular times: the MP4 states 1.1 s, the frames run to 2.1 s
    path = write_clip(tmp_path / "vfr.mp4", numbered_frames(5), times=[0.0, 0.1, 0.5, 2.0, 2.1])
    stream = iter_frames(path, fps=10)
    got = list(stream)
    assert [frame_number(f.image) for f in got] == [0, 1, 2, 3, 4]
    if probe(path).duration_s < 2.0:
        assert any("runs past its stated length" in note for note in stream.notes)


# -- GIF ---------------------------------------------------------------------------------------------
def test_gif_is_a_clip_for_the_decoder(tmp_path):
    path = write_clip(tmp_path / "anim.gif", numbered_frames(10), fps=5)
    info = probe(path)
    assert info.codec == "gif" and info.duration_s == pytest.approx(2.0)
    got = list(iter_frames(path, fps=1))
    assert [f.time_s for f in got] == pytest.approx([0.0, 1.0])
    assert [frame_number(f.image) for f in got] == [0, 5]


# -- big frames ---------------------------------------------------------------------------------------
def test_big_frames_are_scaled_while_decoding(tmp_path):
    big = photo("coffee", (4000, 2250))
    path = write_clip(tmp_path / "8k.mp4", [big, big], fps=2, preset="ultrafast")
    info = probe(path)
    assert (info.width, info.height) == (4000, 2250)
    stream = iter_frames(path, fps=2)
    got = list(stream)
    assert len(got) == 2
    for frame in got:
        h, w = frame.image.shape[:2]
        assert h * w <= VIDEO_MAX_PIXELS and w > 1800 and abs(w / h - 4000 / 2250) < 0.01
        assert frame.scaled_from == (4000, 2250)
    assert stream.notes == [f"scaled from 4000x2250 to {w}x{h} while decoding"]
    small = list(iter_frames(path, fps=2, max_pixels=160 * 90))[0].image
    assert small.shape == (90, 160, 3)
    reference = photo("coffee", (160, 90))
    assert psnr(small, reference) > 25


def test_scaling_and_rotation_together_report_the_displayed_size(tmp_path):
    frames = static_frames(2, name="coffee", size=(120, 200))  # upright portrait
    path = write_clip(tmp_path / "p.mov", frames, rotate=90)
    got = list(iter_frames(path, max_pixels=60 * 100))[0]
    assert got.image.shape == (100, 60, 3)
    assert got.scaled_from == (120, 200)


# -- long clips: spread and seek -------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_ten_minute_clip_is_sampled_over_its_whole_length(tmp_path, suffix, monkeypatch):
    path = write_clip(tmp_path / f"long{suffix}", numbered_frames(600, 16), fps=1, keyint=10, preset="ultrafast")
    stream = iter_frames(path, fps=1, max_frames=64)
    got = list(stream)
    assert probe(path).duration_s == pytest.approx(600.0)
    assert len(got) == 64 and stream.times == sample_times(600.0, 1, 64)
    assert got[0].time_s == 0.0 and got[-1].time_s > 585
    for frame, t in zip(got, stream.times):
        assert t <= frame.time_s < t + 1.0 + 1e-6  # the first frame at or after the sample time
        assert frame_number(frame.image) == round(frame.time_s)  # the picture of that time, after seeking
    sought = stream.decoded
    monkeypatch.setattr(decoding, "SEEK_MIN_GAP_S", float("inf"))
    linear = iter_frames(path, fps=1, max_frames=64)
    assert [f.time_s for f in linear] == [f.time_s for f in got]
    assert sought < linear.decoded * 0.8  # seeking skipped the pictures between keyframes


def test_early_stop_and_context_manager_close_the_file(tmp_path):
    path = write_clip(tmp_path / "c.mp4", static_frames(20, size=64), fps=10)
    with iter_frames(path, fps=10) as stream:
        first = next(stream)
    assert first.index == 0
    with pytest.raises(StopIteration):
        next(stream)


# -- bad input -------------------------------------------------------------------------------------
def _one_line_error(path) -> str:
    with pytest.raises(VideoError) as caught:
        iter_frames(path)
    message = str(caught.value)
    assert isinstance(caught.value, ImageError)
    assert "\n" not in message and len(message) < 300
    with pytest.raises(VideoError):
        probe(path)
    return message


def test_empty_file(tmp_path):
    assert "empty (0 bytes)" in _one_line_error(write_empty(tmp_path / "e.mp4"))


def test_text_named_mp4(tmp_path):
    message = _one_line_error(write_text_as_video(tmp_path / "notes.mp4"))
    assert "is text, not a video" in message and ".mp4" in message


def test_audio_only(tmp_path):
    message = _one_line_error(write_audio_only(tmp_path / "song.m4a"))
    assert "has no video stream" in message and "only audio" in message


def test_folder_missing_and_special_files(tmp_path):
    assert "is a folder" in _one_line_error(tmp_path)
    assert "does not exist" in _one_line_error(tmp_path / "gone.mp4")
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    assert "named pipe" in _one_line_error(fifo)


def test_truncated_mp4_without_its_index(tmp_path):
    source = write_clip(tmp_path / "full.mp4", moving_frames(20, size=64))
    message = _one_line_error(write_truncated(source, tmp_path / "cut.mp4", keep=0.6))
    assert "truncated" in message and "cut.mp4" in message and str(tmp_path) not in message


def test_truncated_mkv_keeps_the_frames_before_the_cut(tmp_path):
    source = write_clip(tmp_path / "full.mkv", numbered_frames(30, 64), fps=10)
    path = write_truncated(source, tmp_path / "cut.mkv", keep=0.6)
    stream = iter_frames(path, fps=10)
    got = list(stream)
    assert 2 <= len(got) < 30 and got[0].time_s == 0.0
    # the pictures before the cut, each at its own time (B-frames that needed a lost one are gone)
    assert [frame_number(f.image) for f in got] == [round(f.time_s * 10) for f in got]
    assert len(stream.notes) == 1 and "truncated or damaged" in stream.notes[0]


def test_damage_in_the_middle_keeps_the_frames_before_it(tmp_path):
    source = write_clip(tmp_path / "full.mp4", moving_frames(30, size=128), fps=10)
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    path = tmp_path / "broken.mp4"
    path.write_bytes(bytes(data))
    stream = iter_frames(path, fps=10)
    got = list(stream)
    assert 1 <= len(got) < 30
    assert len(stream.notes) == 1 and "damaged" in stream.notes[0] and "kept" in stream.notes[0]


def test_a_video_track_without_frames(tmp_path):
    message = _one_line_error(write_no_frames(tmp_path / "blank.mkv"))
    assert "no decodable frame" in message


def test_no_decodable_frame(tmp_path):
    source = write_clip(tmp_path / "full.mkv", moving_frames(20, size=128))
    message = _one_line_error(write_truncated(source, tmp_path / "head.mkv", keep=0.05))
    assert "no decodable frame" in message or "cannot be read" in message


# -- the clip makers -------------------------------------------------------------------------------
def test_clip_makers_make_what_they_say():
    moving = moving_frames(10, size=64)
    assert all(f.shape == (64, 64, 3) for f in moving)
    assert psnr(moving[0], moving[-1]) < psnr(moving[0], moving[1])  # a slow pan: neighbours are close
    cut = cut_frames(3, 4, size=64)
    assert len(cut) == 7 and psnr(cut[0], cut[2]) == float("inf") and psnr(cut[2], cut[3]) < 15
    base = static_frames(6, size=128)
    planted = planted_segment(base, 2, 4)
    changed = [not np.array_equal(a, b) for a, b in zip(base, planted)]
    assert changed == [False, False, True, True, False, False]


# -- re-encoding -----------------------------------------------------------------------------------
def test_reencode_presets_name_the_references():
    assert REENCODE_PRESETS["ffpp-c23"] == 23 and REENCODE_PRESETS["ffpp-c40"] == 40
    assert [REENCODE_PRESETS[f"df-compress-{i}"] for i in range(1, 6)] == [30, 32, 35, 38, 40]


def test_reencode_lowers_quality_with_the_crf_and_keeps_time(tmp_path):
    original = moving_frames(20, size=128)
    path = write_clip(tmp_path / "src.mp4", original, fps=10, crf=0, audio=True)
    reference = _all_frames(path)
    quality = {}
    for crf in (23, 40):
        with reencoded(path, crf) as out:
            again = _all_frames(out)
            info = probe(out)
            data = out.read_bytes()
        assert not out.exists()  # the temporary file is deleted on exit
        assert [f.time_s for f in again] == [f.time_s for f in reference]
        assert info.codec == "h264" and not info.has_audio and info.fps == pytest.approx(10)
        quality[crf] = np.mean([psnr(a.image, b.image) for a, b in zip(reference, again)])
        with reencoded(path, crf) as out:
            assert out.read_bytes() == data  # deterministic: one x264 thread
    assert quality[40] < quality[23] - 5
    assert quality[23] > 30


def test_reencode_keeps_variable_times_and_rotation(tmp_path):
    times = [0.0, 0.1, 0.5, 2.0, 2.1]
    path = write_clip(tmp_path / "vfr.mov", numbered_frames(5, (32, 48)), times=times, rotate=90)
    with reencoded(path, 23) as out:
        info = probe(out)
        got = _all_frames(out)
    assert info.rotation == 90 and (info.width, info.height) == (32, 48)
    assert [f.time_s for f in got] == pytest.approx(times)
    assert [frame_number(f.image) for f in got] == [0, 1, 2, 3, 4]


def test_reencode_refuses_bad_input(tmp_path):
    path = write_clip(tmp_path / "ok.mp4", static_frames(3, size=64))
    with pytest.raises(ValueError, match="crf"):
        with reencoded(path, 60):
            pass
    with pytest.raises(VideoError, match="empty"):
        with reencoded(write_empty(tmp_path / "e.mp4"), 23):
            pass
