"""A clip through the pipeline (forensic.video.analysis): face tracks on real clips, batching, the
report's contract, degradation, failures, and a trained toy model finding a planted fake segment."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from forensic.pipeline import Detector
from forensic.verdict import UNTRAINED
from forensic.video import VideoError, VideoReport, analyze_video, iter_video, probe, sample_times
from tests.clips import cut_frames, moving_frames, planted_segment, static_frames, write_clip, write_empty, write_text_as_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: the clip's keys of VideoReport.to_dict() (the contract in forensic/video/report.py)
CLIP_KEYS = {"source", "kind", "clip", "sampling", "degradation", "tracks", "notes", "summary", "explain", "explained", "frames"}
SUMMARY_KEYS = {"prob_fake", "label", "verdict", "verdict_reason", "verdict_rule", "rule", "frames", "frames_with_face",
                "share_fake", "streams", "streams_agree", "frames_agree", "most_suspicious_s"}


@pytest.fixture(scope="module")
def detector():
    return Detector.from_preset("tiny-random")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Small clips at 10 fps: a still face (2 s), a pan over the astronaut (2 s), a cut from one
    face to a mirrored, shifted one (2 s + 2 s), and a face-less photo (1 s)."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "static": write_clip(folder / "static.mp4", static_frames(20), fps=10),
        "moving": write_clip(folder / "moving.mp4", moving_frames(20, zoom=1.2), fps=10),
        "cut": write_clip(folder / "cut.mkv", cut_frames(20, 20, b="astronaut_mirror"), fps=10),
        "noface": write_clip(folder / "cup.mp4", static_frames(10, name="coffee"), fps=10),
    }


@pytest.fixture(scope="module")
def static_report(detector, clips) -> VideoReport:
    return analyze_video(detector, clips["static"], fps=5)


def test_a_still_face_is_one_track_followed_on_every_sampled_frame(static_report, clips):
    r = static_report
    expected = sample_times(probe(clips["static"]).duration_s, 5, 64)
    assert len(r.frames) == len(expected) == 10  # one report per sampled frame
    assert [f.index for f in r.frames] == list(range(10))
    assert [f.time_s for f in r.frames] == pytest.approx(expected, abs=0.051)
    assert len(r.tracks) == 1 and r.main_track is r.tracks[0] and r.main_track.length == 10
    assert all(f.on_main_track and f.error is None and f.report.face.mode == "crop" for f in r.frames)
    assert r.notes == []
    assert r.summary.frames == r.summary.frames_with_face == 10
    assert r.verdict.word == UNTRAINED and r.label is None  # untrained weights: no verdict word
    assert r.summary.prob_fake in [round(0.1 * k, 1) for k in range(11)]
    assert r.frames[3].report.source == "static.mp4@0.6s"


def test_to_dict_is_json_and_follows_the_contract(static_report):
    record = json.loads(json.dumps(static_report.to_dict()))
    assert set(record) == CLIP_KEYS and record["kind"] == "video"
    assert set(record["summary"]) == SUMMARY_KEYS
    assert set(record["sampling"]) == {"fps", "max_frames", "times_s", "spread"}
    assert record["sampling"]["spread"] is False and len(record["sampling"]["times_s"]) == 10
    assert record["degradation"] is None
    assert record["tracks"] == [{"id": 0, "first_s": 0.0, "last_s": record["sampling"]["times_s"][-1], "frames": 10, "main": True}]
    assert set(record["clip"]) >= {"name", "container", "codec", "width", "height", "duration_s", "fps"}
    frame = record["frames"][4]
    assert {"index", "time_s", "on_main_track", "error", "prob_fake", "label", "verdict", "streams", "face"} <= set(frame)
    assert frame["index"] == 4 and frame["face"]["mode"] == "crop" and frame["error"] is None
    assert set(record["summary"]["streams"]) == {"texture", "face", "fusion"}


def test_the_face_stream_follows_a_moving_face(detector, clips):
    r = analyze_video(detector, clips["moving"], fps=5)
    assert len(r.frames) == 10
    main = r.main_track
    assert main is not None and main.length >= 9, [(t.first, t.last) for t in r.tracks]
    centres = []
    for f in r.frames:
        box = main.box_at(f.index)
        if box is not None:
            assert f.on_main_track and f.report.face.box == box  # the item's face is the track's box
            centres.append(box.center[0])
    assert abs(centres[-1] - centres[0]) > 10, centres  # the face moved and the track moved with it


def test_a_cut_to_another_face_makes_two_tracks_and_a_note(detector, clips):
    r = analyze_video(detector, clips["cut"], fps=5)
    assert len(r.frames) == 20
    assert len(r.tracks) == 2, [(t.first, t.last) for t in r.tracks]
    first, second = r.tracks
    assert not first.overlaps(second) and first.last < second.first
    assert any(n.startswith("2 face tracks: 0-1.8 s, 2-3.8 s") and "face stream follows" in n for n in r.notes), r.notes
    off = [f for f in r.frames if not f.on_main_track]
    assert len(off) == r.summary.frames - r.summary.frames_with_face == 10
    assert all(f.report.face.mode == "no-face" and "main face is not on this frame" in f.report.face.reason for f in off)
    assert set(r.summary.counted) == set(r.main_track.frames)
    assert [t["main"] for t in r.to_dict()["tracks"]].count(True) == 1


def test_a_clip_without_a_face_has_no_track_and_says_so(detector, clips):
    r = analyze_video(detector, clips["noface"], fps=5)
    assert r.tracks == () and r.main_track is None and len(r.frames) == 5
    assert all(not f.on_main_track and f.report.face.mode == "no-face" for f in r.frames)
    assert all("No face found" in f.report.face.reason for f in r.frames)  # the policy's own no-face result
    assert r.summary.frames_with_face == 0 and r.summary.counted == tuple(range(5))
    assert r.verdict.word == UNTRAINED and "no face" in r.verdict.reason


def test_frames_go_through_the_streams_in_batches_each_once(detector, clips, count_forward):
    sizes = count_forward(detector)
    r = analyze_video(detector, clips["static"], fps=5, batch_size=4)
    assert sizes == [4, 4, 2]  # batched, not one by one; each frame's image passes once
    sizes.clear()
    frames = list(iter_video(detector, clips["static"], fps=5, batch_size=8))
    assert sizes == [8, 2]
    assert [f.index for f in frames] == list(range(10))  # time order
    assert [f.time_s for f in frames] == sorted(f.time_s for f in frames)
    assert [f.report.prob_fake for f in frames] == [f.report.prob_fake for f in r.frames]
    assert [f.report.face.box for f in frames] == [f.report.face.box for f in r.frames]


def test_on_a_cpu_large_frames_go_fewer_at_a_time(detector, clips, count_forward, monkeypatch):
    from forensic.video import analysis

    info = probe(clips["static"])
    monkeypatch.setattr(analysis, "CPU_FRAME_BATCH_PIXELS", 3 * info.width * info.height)  # three of these frames
    sizes = count_forward(detector)
    r = analyze_video(detector, clips["static"], fps=5, batch_size=8)
    assert len(r.frames) == 10 and sizes == [3, 3, 3, 1]


def test_iter_video_is_lazy_and_reports_progress(detector, clips):
    seen = []
    frames = iter_video(detector, clips["static"], fps=2, progress=lambda text, fraction: seen.append((text, fraction)))
    assert seen == []  # nothing runs before the first frame is asked for
    first = next(frames)
    assert first.index == 0 and any(t.startswith("faces ") and t.endswith(" frames") for t, _ in seen)
    rest = list(frames)
    assert len(rest) == 3 and seen[-1][0] == "frames 4/4"
    assert [f for _, f in seen] == sorted(f for _, f in seen)


def test_per_frame_degradation_uses_seed_plus_frame_index_and_is_reported(detector, clips):
    r = analyze_video(detector, clips["static"], fps=2, compound=0.5, seed=7)
    assert r.degradation == {"reencode": None, "frames": {"spec": None, "compound": 0.5, "seed": 7,
                                                          "seeds": "frame i is degraded with seed + i (wrapping past 2**32 - 1 to 0)"}}
    assert [f.report.degradation.seed for f in r.frames] == [7 + f.index for f in r.frames]


def test_per_frame_seeds_wrap_at_the_top_of_the_range(detector, clips):
    from forensic.degrade import MAX_SEED

    r = analyze_video(detector, clips["static"], fps=2, compound=0.5, seed=MAX_SEED)
    assert len(r.frames) >= 2 and all(f.error is None for f in r.frames)
    assert [f.report.degradation.seed for f in r.frames] == [(MAX_SEED + f.index) % (MAX_SEED + 1) for f in r.frames]
    assert all(f.report.degradation.compound == 0.5 for f in r.frames)
    spec = analyze_video(detector, clips["static"], fps=2, degradation="jpeg:quality=40")
    assert spec.degradation["frames"]["spec"] == "jpeg:quality=40"
    assert all(f.report.degradation.spec == "jpeg:quality=40" for f in spec.frames)


def test_a_bad_spec_fails_before_any_work(detector, clips, count_forward):
    from forensic.degrade import SpecError

    sizes = count_forward(detector)
    with pytest.raises(SpecError):
        analyze_video(detector, clips["static"], degradation="nonsense:1")
    assert sizes == []


def test_crf_reencodes_the_clip_first_and_names_the_reference(detector, clips):
    r = analyze_video(detector, clips["static"], fps=2, crf=40)
    reencode = r.degradation["reencode"]
    assert reencode["crf"] == 40 and reencode["codec"] == "h264"
    assert "FaceForensics++ c40" in reencode["reference"] and "DeeperForensics-1.0" in reencode["reference"]
    assert r.degradation["frames"] is None and len(r.frames) == 4
    assert r.source == str(clips["static"]) and r.clip.name == probe(clips["static"]).name  # the original's report


@pytest.mark.parametrize("crf, words", [
    (23, "FaceForensics++ c23"),
    (30, "DeeperForensics-1.0 video compression CRF 30"),
    (40, "FaceForensics++ c40; DeeperForensics-1.0 video compression CRF 40"),
    (27, "no reference preset"),
])
def test_a_crf_names_the_references_it_reproduces(crf, words):
    from forensic.video import crf_reference

    assert crf_reference(crf) == words


def test_a_failing_frame_is_kept_as_an_error_and_the_others_are_not_lost(detector, clips, monkeypatch):
    make = detector.item

    def broken_on_frame_2(source, **fields):
        if fields["name"].endswith("@0.4s"):
            source = np.zeros((0, 0, 3), np.uint8)  # not an image
        return make(source, **fields)

    monkeypatch.setattr(detector, "item", broken_on_frame_2)
    r = analyze_video(detector, clips["static"], fps=5)
    failed = [f for f in r.frames if f.error is not None]
    assert [f.index for f in failed] == [2] and failed[0].report is None
    assert r.summary.frames == 9 and len(r.frames) == 10
    record = json.loads(json.dumps(r.to_dict()))
    assert record["frames"][2]["error"] and record["frames"][2]["prob_fake"] is None


@pytest.mark.parametrize("make", [write_empty, write_text_as_video], ids=["0-byte", "text"])
def test_a_clip_with_no_frame_raises_video_error(detector, tmp_path, make):
    path = make(tmp_path / "broken.mp4")
    with pytest.raises(VideoError):
        analyze_video(detector, path)
    with pytest.raises(VideoError):
        list(iter_video(detector, path))


def test_a_model_without_a_face_stream_never_searches(clips):
    from forensic.model import ForensicModel
    from forensic.presets import get_preset

    config = get_preset("tiny-random").config
    config = dataclasses.replace(config, streams=tuple(s for s in config.streams if s.input != "face-crop"))

    class Refuses:
        def analyze_batch(self, images):
            raise AssertionError("searched for faces")

    det = Detector(ForensicModel.random(config, seed=0), face_detector=Refuses())
    r = analyze_video(det, clips["static"], fps=2)
    assert r.tracks == () and len(r.frames) == 4
    assert all(f.report.face.reason.startswith("This model has no face stream") for f in r.frames)
    assert r.summary.counted == (0, 1, 2, 3)


@pytest.mark.slow  # the toy model trains once per session (~10-70 s); the clip then takes a few seconds
def test_a_trained_toy_model_finds_the_planted_fake_segment(trained_toy, tmp_path):
    from forensic.toy import NoFaceDetector, smooth_texture

    toy = trained_toy()
    det = Detector(toy.model, face_detector=NoFaceDetector())
    background = smooth_texture(np.random.default_rng(7), 256)
    frames = planted_segment([background.copy() for _ in range(30)], 10, 20)  # fake from 1.0 s to 2.0 s
    clip = write_clip(tmp_path / "planted.mp4", frames, fps=10)  # libx264 at its default CRF 23
    r = analyze_video(det, clip, fps=5, explain="fast", explain_frames=2)
    planted = [f for f in r.frames if 1.0 - 1e-3 <= f.time_s < 2.0 - 1e-3]
    clean = [f for f in r.frames if f not in planted]
    assert len(planted) == 5 and len(clean) == 10
    texture = {f.index: f.report.streams["texture"].prob_fake for f in r.frames}
    assert min(texture[f.index] for f in planted) > max(texture[f.index] for f in clean) + 0.5, texture
    assert min(f.report.prob_fake for f in planted) > max(f.report.prob_fake for f in clean), [f.report.prob_fake for f in r.frames]
    # the most suspicious frames are the planted ones, and they come back explained with their maps
    assert len(r.explained) == 2 and set(r.explained) <= {f.index for f in planted}
    assert {round(t, 1) for t in r.summary.most_suspicious_s} <= {round(f.time_s, 1) for f in planted}
    for index in r.explained:
        report = r.frame(index).report
        assert report.explain == "fast"
        assert report.streams["texture"].cam_image is not None and report.streams["texture"].cam_image.shape == (256, 256)
    assert all(r.frame(f.index).report.explain == "none" for f in clean)
    assert r.to_dict()["explained"] == r.explained


def test_the_most_suspicious_frames_of_the_main_track_are_explained_once_more(detector, clips, count_forward):
    sizes = count_forward(detector)
    r = analyze_video(detector, clips["cut"], fps=2.5, explain="fast", explain_frames=2, batch_size=8)
    assert len(r.frames) == 10 and sizes[:2] == [8, 2]
    assert sum(sizes) == 10 + 2  # every frame once, the explained ones once more
    assert len(r.explained) == 2 and set(r.explained) <= set(r.main_track.frames)  # the main track first
    plain = sorted((f for f in r.frames if f.on_main_track and f.index not in r.explained),
                   key=lambda f: -f.report.prob_fake)
    assert all(r.frame(i).report.prob_fake >= plain[0].report.prob_fake for i in r.explained)
    for i in r.explained:
        report = r.frame(i).report
        assert report.explain == "fast" and all(s.cam_image is not None for s in report.streams.values())
    assert r.explain == "fast" and r.to_dict()["explained"] == r.explained
    # memory does not grow with the clip: only the explained frames keep their analysed image
    assert all((f.report.image is not None) == (f.index in r.explained) for f in r.frames)


def test_keep_images_and_the_pixel_bound(detector, clips):
    r = analyze_video(detector, clips["static"], fps=2, keep_images=True, max_pixels=64 * 64)
    info = probe(clips["static"])
    assert info.width * info.height > 64 * 64  # the bound scales these frames
    for f in r.frames:
        h, w = f.report.image.shape[:2]
        assert h * w <= 64 * 64 and abs(w / h - info.width / info.height) < 0.1 * info.width / info.height
        assert any("scaled from" in note and "while decoding" in note for note in f.report.image_notes)


def test_a_truncated_clip_keeps_the_frames_before_the_damage_and_says_so(detector, tmp_path):
    from tests.clips import write_truncated

    whole = write_clip(tmp_path / "whole.mkv", moving_frames(40), fps=10)  # 4 s
    cut = write_truncated(whole, tmp_path / "cut.mkv", keep=0.5)
    r = analyze_video(detector, cut, fps=2)
    assert 1 <= len(r.frames) < 8 and all(f.report is not None for f in r.frames)
    assert any("damaged" in n or "ends at" in n for n in r.notes), r.notes
