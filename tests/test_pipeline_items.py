"""Work items through the pipeline: clean twins analysed once per source, pairing, tags, failures.

A spy on the detector's forward pass counts the images that reach the streams, so "once" is a
measured count, not a claim.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensic.pipeline import Detector, WorkItem
from forensic.presets import get_preset
from forensic.weights import build_model


@pytest.fixture(scope="module")
def detector():
    return Detector(build_model(get_preset("tiny-random").config, device="cpu"))


@pytest.fixture()
def forwarded(detector, count_forward):
    """The number of images each forward pass of ``detector`` saw, in order."""
    return count_forward(detector)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("items") / "astronaut.png"
    cv2.imwrite(str(path), np.ascontiguousarray(astronaut[:256, :256, ::-1]))
    return path


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-5 * max(1.0, abs(a), abs(b))


def test_a_sources_clean_twin_is_analysed_once_for_all_its_degraded_items(detector, forwarded, photo):
    specs = ["jpeg:quality=30", "gblur:sigma=2", "gnoise:sigma=10"]
    items = [WorkItem(photo, degradation=s, seed=1, stability=True) for s in specs]
    reports = [r for _, r in detector.run(items, batch_size=8)]
    assert sum(forwarded) == len(specs) + 1  # three degraded copies and one clean twin
    for spec, report in zip(specs, reports):
        alone = detector.analyze(photo, degradation=spec, seed=1)  # the twin computed on its own
        for name, s in report.streams.items():
            assert _close(s.stability, alone.streams[name].stability) and s.stability < 1


def test_an_undegraded_item_is_the_twin_and_a_later_one_replays_it(detector, forwarded, photo):
    items = [WorkItem(photo), WorkItem(photo, degradation="jpeg:quality=20", stability=True), WorkItem(photo, name="again")]
    clean, degraded, again = [r for _, r in detector.run(items, batch_size=2)]
    assert sum(forwarded) == 2  # the clean image once, the degraded copy once
    assert clean.degradation is None and all(s.stability is None for s in clean.streams.values())
    assert again.source == "again" and again.prob_fake == clean.prob_fake
    assert all(s.stability is not None for s in degraded.streams.values())


def test_pairing_returns_the_clean_report_explained_like_the_degraded_one(detector, forwarded, photo):
    report = detector.analyze(photo, degradation="jpeg:quality=20", seed=3, explain="fast", pair=True)
    assert sum(forwarded) == 2  # the clean image is analysed once, with its own explanation
    twin = report.twin
    assert twin is not None and twin.degradation is None and twin.explain == "fast" and report.explain == "fast"
    assert all(s.cam_image is not None for s in twin.streams.values())
    clean = detector.analyze(photo)
    assert twin.prob_fake == clean.prob_fake
    assert all(_close(twin.streams[n].prob_fake, s.prob_fake) for n, s in clean.streams.items())


def test_sources_without_a_key_share_no_twin(detector, forwarded, astronaut, landscape):
    items = [WorkItem(im, degradation="jpeg:quality=40", stability=True) for im in (astronaut, landscape, astronaut)]
    list(detector.run(items, batch_size=8))
    assert sum(forwarded) == 5  # two twins (the same array object shares one), three degraded copies
    forwarded.clear()
    copy = astronaut.copy()  # equal pixels, another object: no sharing without a key
    list(detector.run([WorkItem(astronaut, degradation="jpeg:quality=40", stability=True),
                       WorkItem(copy, degradation="jpeg:quality=40", stability=True)]))
    assert sum(forwarded) == 4


def test_tags_come_back_in_input_order_and_failures_stay_with_their_item(detector, photo, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    items = [
        ("a", WorkItem(photo, degradation="jpeg:quality=50", stability=True)),
        ("b", WorkItem(broken, degradation="jpeg:quality=50", stability=True)),
        ("c", WorkItem(photo, degradation="no-such-op")),
        ("d", WorkItem(photo)),
    ]
    out = list(detector.run(items, batch_size=3))
    assert [tag for tag, _ in out] == ["a", "b", "c", "d"]
    assert not isinstance(out[0][1], Exception) and not isinstance(out[3][1], Exception)
    assert isinstance(out[1][1], Exception) and isinstance(out[2][1], Exception)


def test_a_degraded_item_whose_clean_twin_fails_gets_that_reason(detector, photo, monkeypatch):
    from forensic.pipeline import flow

    real_load = flow.load

    def load(image, **kwargs):  # the clean copy cannot be read; the degraded one can
        if kwargs.get("degradation") is None:
            raise OSError("the clean copy is gone")
        return real_load(image, **kwargs)

    monkeypatch.setattr(flow, "load", load)
    items = [WorkItem(photo, degradation="jpeg:quality=50", stability=True), WorkItem(photo, degradation="jpeg:quality=50")]
    (_, failed), (_, fine) = detector.run(items)
    assert isinstance(failed, RuntimeError) and "clean original" in str(failed) and "the clean copy is gone" in str(failed)
    assert not isinstance(fine, Exception)  # an item that needs no twin is not affected


def test_an_unknown_explanation_method_fails_before_any_work(detector, forwarded, photo):
    with pytest.raises(ValueError, match="nope"):
        list(detector.run([WorkItem(photo, explain="nope")]))
    with pytest.raises(ValueError, match="nope"):
        list(detector.analyze_many([photo], explain="nope"))
    assert forwarded == []


def test_analyze_many_explains_each_item_from_its_own_pass(detector, astronaut, landscape):
    many = [r for _, r in detector.analyze_many([astronaut, landscape], explain="exact", batch_size=2)]
    for image, report in zip((astronaut, landscape), many):
        alone = detector.analyze(image, explain="exact")
        for name, s in report.streams.items():
            a, b = s.cam.grid_map.ravel(), alone.streams[name].cam.grid_map.ravel()
            assert np.abs(a - b).max() <= 1e-4 * max(1.0, float(np.abs(b).max()))


def test_the_items_of_one_file_decode_it_once(detector, photo, tmp_path, monkeypatch):
    from forensic.pipeline import flow

    decoded = []
    real = flow.decode_image

    def spy(source, **kwargs):
        decoded.append(source)
        return real(source, **kwargs)

    monkeypatch.setattr(flow, "decode_image", spy)
    hinted = []
    real_hints = flow.read_provenance
    monkeypatch.setattr(flow, "read_provenance", lambda source: hinted.append(source) or real_hints(source))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    items = [WorkItem(photo, degradation=s, stability=True) for s in ("jpeg:quality=30", "gblur:sigma=1", "none")]
    items += [WorkItem(broken, degradation="jpeg:quality=30"), WorkItem(broken)]
    out = [r for _, r in detector.run(items)]
    assert decoded == [photo, broken]  # the twin and three copies share one decode; a bad file fails once
    assert hinted == [photo]  # and one reading of the file's provenance hints
    assert out[0].provenance is out[1].provenance is not None
    assert [isinstance(r, Exception) for r in out] == [False, False, False, True, True]
    assert out[0].source == str(photo) and out[0].timings["decode"] >= 0


def test_an_item_with_a_known_face_is_not_searched_again(detector, photo, monkeypatch):
    found = detector.analyze(photo, degradation="jpeg:quality=40", seed=2)
    monkeypatch.setattr(detector.face_detector, "analyze_batch", lambda images: pytest.fail("searched for a face"))
    [(_, known)] = list(detector.run([WorkItem(photo, degradation="jpeg:quality=40", seed=2, face=found.face)]))
    assert known.face is found.face and known.prob_fake == found.prob_fake
    assert all(_close(s.prob_fake, found.streams[n].prob_fake) for n, s in known.streams.items())
