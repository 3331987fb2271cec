"""Face tracks, scene cuts and the clip rule (forensic.video.tracks, forensic.video.summary): pure
functions checked on hand-made boxes and reports."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from forensic.faces import FaceBox
from forensic.verdict import NO_FACE, UNTRAINED
from forensic.video.summary import CLIP_RULE, FrameReport, summarize, suspicion_order
from forensic.video.tracks import CUT_THRESHOLD, is_cut, link_tracks, main_track, thumbnail


def box(x: float, y: float, side: float = 40.0, score: float = 0.99) -> FaceBox:
    return FaceBox(x, y, x + side, y + side, score)


# ------------------------------------------------------------------------------ tracks
def test_a_still_face_is_one_track():
    tracks = link_tracks([[box(10, 10)] for _ in range(5)])
    assert len(tracks) == 1
    assert (tracks[0].first, tracks[0].last, tracks[0].length) == (0, 4, 5)


def test_a_moving_face_is_followed_even_when_a_sample_jumps_past_the_overlap():
    # 12 px per frame keeps IoU >= 0.3; the 30 px jump does not, but the centre moved < one box side
    xs = [0, 12, 24, 36, 66, 78]
    tracks = link_tracks([[box(x, 20)] for x in xs])
    assert len(tracks) == 1 and tracks[0].length == len(xs)
    assert [b.x0 for _, b in tracks[0].members] == xs


def test_two_faces_make_two_tracks_each_following_its_own_face():
    frames = [[box(0 + 3 * i, 10), box(150 - 3 * i, 10)] for i in range(4)]
    frames[2] = frames[2][::-1]  # detection order must not matter
    tracks = link_tracks(frames)
    assert len(tracks) == 2
    left, right = sorted(tracks, key=lambda t: t.members[0][1].x0)
    assert [b.x0 for _, b in left.members] == [0, 3, 6, 9]
    assert [b.x0 for _, b in right.members] == [150, 147, 144, 141]


def test_a_short_gap_is_bridged_and_a_long_one_is_not():
    frames = [[box(10, 10)], [], [], [box(10, 10)]]
    assert len(link_tracks(frames, max_gap=2)) == 1
    assert len(link_tracks(frames, max_gap=1)) == 2
    gap = link_tracks(frames, max_gap=2)[0]
    assert gap.frames == (0, 3) and gap.box_at(1) is None and gap.box_at(3) is not None


def test_a_cut_ends_every_track_even_where_the_box_stays():
    frames = [[box(10, 10)] for _ in range(6)]
    tracks = link_tracks(frames, cuts={3})
    assert [(t.first, t.last) for t in tracks] == [(0, 2), (3, 5)]
    assert not tracks[0].overlaps(tracks[1])


def test_the_main_track_is_the_longest_then_largest_then_most_central():
    long_small = link_tracks([[box(0, 0, 20)] for _ in range(5)])[0]
    short_big = link_tracks([[box(0, 0, 80)] for _ in range(3)])[0]
    assert main_track([short_big, long_small], (200, 200)) is long_small
    big = link_tracks([[box(0, 0, 60)] for _ in range(3)])[0]
    small = link_tracks([[box(0, 0, 30)] for _ in range(3)])[0]
    assert main_track([small, big], (200, 200)) is big
    corner = link_tracks([[box(0, 0, 40)] for _ in range(3)])[0]
    centre = link_tracks([[box(80, 80, 40)] for _ in range(3)])[0]
    assert main_track([corner, centre], (200, 200)) is centre
    assert main_track([], (200, 200)) is None


def test_link_tracks_refuses_nonsense_parameters():
    with pytest.raises(ValueError, match="min_iou"):
        link_tracks([], min_iou=0)
    with pytest.raises(ValueError, match="max_gap"):
        link_tracks([], max_gap=-1)


# ------------------------------------------------------------------------------ cuts
def test_cuts_are_declared_between_shots_not_within_one(astronaut, landscape):
    import cv2

    face = cv2.resize(astronaut, (128, 128))
    cup = cv2.resize(landscape, (128, 128))
    shifted = np.roll(face, 6, axis=1)  # a small pan
    noisy = np.clip(face.astype(int) + np.random.default_rng(0).integers(-8, 9, face.shape), 0, 255).astype(np.uint8)
    assert not is_cut(None, thumbnail(face))
    assert not is_cut(thumbnail(face), thumbnail(shifted))
    assert not is_cut(thumbnail(face), thumbnail(noisy))
    assert is_cut(thumbnail(face), thumbnail(cup))
    difference = float(np.mean(np.abs(thumbnail(face) - thumbnail(cup))))
    assert difference > 1.3 * CUT_THRESHOLD  # not a borderline call


# ------------------------------------------------------------------------------ the clip rule
def fake_report(p: float, streams: dict[str, float], mean: float | None = None):
    """What summarize reads of a Report: prob_fake, the vote's mean, each stream's P(fake) and vote."""
    return SimpleNamespace(
        prob_fake=p,
        vote=SimpleNamespace(mean=p if mean is None else mean),
        streams={n: SimpleNamespace(prob_fake=v, vote_prob=round(v, 1)) for n, v in streams.items()},
    )


def frame(i: int, p: float, *, face: bool = True, streams=None) -> FrameReport:
    return FrameReport(i, float(i), fake_report(p, streams or {"texture": p, "face": p, "fusion": p}), None, face)


RULE = dict(threshold=0.5, decimals=1, untrained=False, searches_faces=True)


def test_the_clip_is_the_median_over_frames_with_the_main_face_on_the_grid():
    frames = [frame(0, 0.9, face=False), frame(1, 0.3), frame(2, 0.4), frame(3, 0.2), frame(4, 0.8)]
    s = summarize(frames, **RULE)
    assert s.counted == (1, 2, 3, 4) and s.frames == 5 and s.frames_with_face == 4
    assert s.prob_fake == 0.4  # median of 0.2, 0.3, 0.4, 0.8 = 0.35 -> half to even on the 0.1 grid
    assert s.label == "real" and s.verdict.word == "real"
    assert "median over 4 frames with the main face" in s.verdict.reason
    assert s.share_fake == pytest.approx(0.25)
    assert s.frames_agree is False
    assert s.most_suspicious_s == (4.0, 2.0, 1.0)  # the face-less 0.9 frame is not counted


def test_streams_and_frames_agreement():
    same = [frame(i, 0.8, streams={"texture": 0.9, "face": 0.7, "fusion": 0.8}) for i in range(5)]
    s = summarize(same, **RULE)
    assert s.streams_agree and s.frames_agree and s.share_fake == 1.0 and s.label == "fake"
    assert s.streams["face"].median == pytest.approx(0.7) and s.streams["face"].share_fake == 1.0
    split = [frame(i, 0.6, streams={"texture": 0.9, "face": 0.1, "fusion": 0.7}) for i in range(3)]
    assert summarize(split, **RULE).streams_agree is False


def test_no_face_on_any_frame_is_out_of_scope_unless_the_vote_is_asked_for():
    frames = [frame(i, 0.7, face=False) for i in range(3)]
    s = summarize(frames, **RULE)
    assert s.label is None and s.verdict.word == NO_FACE and s.prob_fake == 0.7
    assert "any frame" in s.verdict.reason
    asked = summarize(frames, **RULE, vote_without_face=True)
    assert asked.label == "fake" and asked.verdict.word == "fake (no face)"
    no_stream = summarize(frames, **{**RULE, "searches_faces": False})  # a model without a face stream never searched
    assert no_stream.label == "fake" and no_stream.counted == (0, 1, 2)


def test_untrained_weights_give_no_label_and_failed_frames_are_skipped():
    frames = [frame(0, 0.7), FrameReport(1, 1.0, None, "boom", True), frame(2, 0.9)]
    s = summarize(frames, **{**RULE, "untrained": True})
    assert s.label is None and s.verdict.word == UNTRAINED and s.frames == 2
    nothing = summarize([FrameReport(0, 0.0, None, "boom", False)], **RULE)
    assert nothing.prob_fake is None and nothing.label is None and "no frame" in nothing.verdict.word
    json.dumps(s.to_dict())
    json.dumps(nothing.to_dict())
    assert s.to_dict()["rule"] == CLIP_RULE


def test_suspicion_breaks_grid_ties_with_the_unrounded_values():
    a = FrameReport(0, 0.0, fake_report(0.6, {"texture": 0.61}, mean=0.58), None, True)
    b = FrameReport(1, 1.0, fake_report(0.6, {"texture": 0.64}, mean=0.62), None, True)
    c = FrameReport(2, 2.0, fake_report(0.6, {"texture": 0.66}, mean=0.58), None, True)
    assert [f.index for f in suspicion_order([a, b, c])] == [1, 2, 0]
