"""train.data: folders and manifests, the split, augmentation reaching (only) training batches,
pseudo-fakes, face crops with an on-disk cache, independence from the number of workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forensic.images import load_image
from forensic.presets import get_preset
from forensic.streams import prepare_input, to_tensor
from forensic.data import DataError, read_samples
from train.config import AugmentSection
from train.datasets import StreamDataset, make_loader
from train.distributed import DistInfo
from train.face_cache import FaceCache, ensure_faces
from train.samples import expand_items, split_samples
from train.views import AugmentedViews, FixedViews

TEXTURE = get_preset("tiny-random").config.stream("texture")


pytestmark = pytest.mark.usefixtures("one_torch_thread")

FACE = get_preset("tiny-random").config.stream("face")
SOLO = DistInfo()


@pytest.fixture(scope="module")
def toy(tmp_path_factory, make_planted_artifact_set):
    return make_planted_artifact_set(tmp_path_factory.mktemp("toy16"), n=16, seed=3)


def test_folder_and_manifest_agree(toy, tmp_path):
    from_folder = read_samples(toy)
    assert len(from_folder) == 16 and sum(s.label for s in from_folder) == 8
    assert all(("fake" in s.path.parts) == bool(s.label) for s in from_folder)
    manifest = tmp_path / "data.csv"
    rows = ["path,label,split"]
    for i, s in enumerate(from_folder):
        rows.append(f"{s.path},{['real', 'fake'][s.label] if i % 3 else s.label},{'val' if i % 4 == 0 else 'train'}")
    manifest.write_text("\n".join(rows) + "\n")
    listed = read_samples(manifest)
    assert [(s.path, s.label) for s in listed] == [(s.path, s.label) for s in from_folder]
    split = split_samples(listed, val_fraction=0.5, seed=0)  # the manifest's split wins
    assert split.split_by == "manifest" and len(split.val) == 4 and len(split.train) == 12
    # relative paths are relative to the CSV; no header; 0/1 labels
    (toy / "list.csv").write_text("real/img_000.png,0\nfake/img_001.png,1\n")
    rel = read_samples(toy / "list.csv")
    assert [s.path for s in rel] == [toy / "real/img_000.png", toy / "fake/img_001.png"] and rel[1].label == 1


@pytest.mark.parametrize(
    "content, message",
    [("a.png,maybe\n", "is not real, fake, 0 or 1"), ("missing.png,real\n", "do not exist"), ("path,label,kind\nx,1,2\n", "unknown manifest column")],
)
def test_bad_manifests(tmp_path, content, message):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        read_samples(tmp_path / "m.csv")


def test_bad_folder(tmp_path):
    with pytest.raises(DataError, match="real/"):
        read_samples(tmp_path)
    with pytest.raises(DataError, match="no such data"):
        read_samples(tmp_path / "nope")


def test_training_analysis_and_predict_list_the_same_files(tmp_path):
    import forensic.data
    import train.prepare
    from analysis.data import load_samples
    from forensic._cli._common import expand_paths

    # one reader: training reads its data with forensic.data's
    assert train.prepare.read_samples is forensic.data.read_samples
    names = {"real": ("a.png", "b.GIF", "c.avif", "notes.txt"), "fake": ("d.jpg", "e.gif", "f.AVIF", "g.json")}
    for sub, files in names.items():
        (tmp_path / sub).mkdir()
        for name in files:
            (tmp_path / sub / name).write_bytes(b"")
    listed = {s.path.name for s in read_samples(tmp_path)}
    assert listed == {"a.png", "b.GIF", "c.avif", "d.jpg", "e.gif", "f.AVIF"}  # .gif/.avif too, as predict reads
    assert {s.path.name for s in load_samples(tmp_path)} == listed
    assert {p.name for p in expand_paths([str(tmp_path)])} == listed


def test_split_is_seeded_and_stratified(toy):
    samples = read_samples(toy)
    a = split_samples(samples, val_fraction=0.25, seed=0)
    b = split_samples(list(reversed(samples)), val_fraction=0.25, seed=0)
    c = split_samples(samples, val_fraction=0.25, seed=1)
    assert a.counts() == {"train": {"real": 6, "fake": 6}, "val": {"real": 2, "fake": 2}}
    assert set(a.val) == set(b.val)  # independent of listing order
    assert set(a.val) != set(c.val)
    assert not set(a.val) & set(a.train)


def _pixels(ds, i):
    return ds[i]["pixels"]


def test_degradation_reaches_training_batches_only(toy):
    items = expand_items(read_samples(toy)[:8], pseudo_fakes=False)
    clean_ref = [prepare_input(load_image(it.sample.path), TEXTURE).pixels for it in items]

    always = StreamDataset(items, TEXTURE, views=AugmentedViews(0, AugmentSection(global_p=1.0)))
    never = StreamDataset(items, TEXTURE, views=AugmentedViews(0, AugmentSection(global_p=0.0)))
    val = StreamDataset(items, TEXTURE, views=FixedViews(0))
    loader = make_loader(always, batch_size=8, shuffle=True, seed=0, info=SOLO)
    batch = next(iter(loader))
    expected_clean = to_tensor([clean_ref[i] for i in batch["index"].tolist()], TEXTURE)
    per_image = (batch["x"] - expected_clean).abs().flatten(1).amax(1)
    assert (per_image > 0.05).all(), "with global_p=1 every training image is degraded"
    for name, ds in (("global_p=0", never), ("validation", val)):
        b = next(iter(make_loader(ds, batch_size=8, shuffle=True, seed=0, info=SOLO)))
        ref = to_tensor([clean_ref[i] for i in b["index"].tolist()], TEXTURE)
        assert torch.equal(b["x"], ref), f"{name} batches must be the clean images, bit for bit"
    # about half degraded with the paper's global_p = 0.5; a new epoch draws new degradations
    half = StreamDataset(items, TEXTURE, views=AugmentedViews(0, AugmentSection(global_p=0.5)))
    changed = [not np.array_equal(_pixels(half, i), clean_ref[i]) for i in range(8)]
    assert 1 <= sum(changed) <= 7
    first = [_pixels(always, i) for i in range(8)]
    always.set_epoch(1)
    assert any(not np.array_equal(_pixels(always, i), first[i]) for i in range(8))
    always.set_epoch(0)
    assert all(np.array_equal(_pixels(always, i), first[i]) for i in range(8)), "per-sample seeds: reproducible"


def test_degraded_validation_is_fixed_and_separate(toy):
    items = expand_items(read_samples(toy)[:4], pseudo_fakes=False)
    jpeg = StreamDataset(items, TEXTURE, views=FixedViews(0, "jpeg-q40"))
    again = StreamDataset(items, TEXTURE, views=FixedViews(0, "jpeg-q40"))
    clean = StreamDataset(items, TEXTURE, views=FixedViews(0))
    for i in range(4):
        assert np.array_equal(_pixels(jpeg, i), _pixels(again, i))
        assert not np.array_equal(_pixels(jpeg, i), _pixels(clean, i))
    jpeg.set_epoch(5)
    assert np.array_equal(_pixels(jpeg, 0), _pixels(again, 0))


@pytest.mark.slow  # spawns loader workers (~5 s)
def test_batches_do_not_depend_on_worker_count(toy):
    items = expand_items(read_samples(toy)[:8], pseudo_fakes=False)
    ds = StreamDataset(items, TEXTURE, views=AugmentedViews(4, AugmentSection(global_p=1.0)))
    ds.set_epoch(2)
    runs = []
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=3, shuffle=True, seed=4, info=SOLO, num_workers=workers)
        loader.sampler.set_epoch(2)
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) == 3
    for a, b in zip(*runs):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["x"], b["x"])


def test_sharding_covers_each_sample_once():
    items = expand_items(read_samples_stub(12), pseudo_fakes=False)
    ds = StreamDataset(items, TEXTURE, views=AugmentedViews(0))
    seen = []
    for rank in range(3):
        loader = make_loader(ds, batch_size=2, shuffle=True, seed=0, info=DistInfo(rank=rank, world_size=3), num_workers=0)
        loader.sampler.set_epoch(1)
        seen.extend(i for _, i in loader.sampler)
    assert sorted(seen) == list(range(12))


def read_samples_stub(n):
    from pathlib import Path

    from forensic.data import Sample

    return [Sample(Path(f"/nowhere/{i}.png"), i % 2) for i in range(n)]


def test_pseudo_fakes_from_real_photos_only(tmp_path, astronaut):
    real = tmp_path / "only_real" / "real"
    real.mkdir(parents=True)
    import cv2

    for i, (dy, dx) in enumerate([(0, 0), (10, 20), (30, 5)]):
        crop = np.ascontiguousarray(astronaut[20 + dy : 300 + dy, 90 + dx : 370 + dx])
        cv2.imwrite(str(real / f"a{i}.png"), crop[..., ::-1])
    samples = read_samples(real.parent)
    items = expand_items(samples, pseudo_fakes=True)
    assert [it.label for it in items] == [0, 1] * 3 and [it.pseudo for it in items] == [False, True] * 3
    cache = FaceCache(tmp_path / "faces.json")
    train = StreamDataset(items, TEXTURE, views=AugmentedViews(0, AugmentSection(global_p=0.0)))
    val = StreamDataset(items, TEXTURE, views=FixedViews(0))
    ensure_faces([train, val], cache, info=SOLO, detector_factory=_detector)
    assert len(cache.results) == 3 and all(r.box is not None for r in cache.results.values())  # the blend goes over the face
    for i in (1, 3):  # the pseudo-fakes: blended over the face, so they differ from the real photo
        real_pixels, fake_pixels = _pixels(train, i - 1), _pixels(train, i)
        assert fake_pixels.shape == real_pixels.shape and not np.array_equal(fake_pixels, real_pixels)
        assert np.array_equal(_pixels(val, i), _pixels(val, i))
    before = _pixels(train, 1)
    train.set_epoch(1)
    assert not np.array_equal(_pixels(train, 1), before), "a new blend each epoch"


def _detector():
    from forensic.faces import get_default_detector

    return get_default_detector()


def test_face_crops_match_inference_and_are_cached(tmp_path, astronaut):
    import cv2

    folder = tmp_path / "faces"
    (folder / "real").mkdir(parents=True)
    (folder / "fake").mkdir()
    # a face large enough to be cropped, and a smooth image without any face
    cv2.imwrite(str(folder / "real" / "astronaut.png"), np.ascontiguousarray(astronaut[20:300, 90:370, ::-1]))
    smooth = cv2.resize(np.random.default_rng(0).uniform(0, 255, (4, 4, 3)).astype(np.float32), (256, 256))
    cv2.imwrite(str(folder / "fake" / "smooth.png"), smooth.astype(np.uint8))
    items = expand_items(read_samples(folder), pseudo_fakes=False)
    calls = []

    def counting_detector():
        det = _detector()

        class Counting:
            def analyze(self, image):
                calls.append(image.shape)
                return det.analyze(image)

        return Counting()

    train = StreamDataset(items, FACE, views=AugmentedViews(0, AugmentSection(global_p=0.0)))
    val_jpeg = StreamDataset(items, FACE, views=FixedViews(0, "jpeg-q40"))
    cache_path = tmp_path / "cache.json"
    ran = ensure_faces([train, val_jpeg], FaceCache(cache_path), info=SOLO, detector_factory=counting_detector)
    assert ran == len(calls) == 4  # 2 clean files + 2 degraded validation images
    for i, item in enumerate(items):  # the same crop as inference: prepare_input with the analysed face
        image = load_image(item.sample.path)
        face = _detector().analyze(image)
        assert train.faces[train.clean_key(i)] == face  # the cache holds what inference computes
        assert np.array_equal(train[i]["pixels"], prepare_input(image, FACE, face=face).pixels)
    assert {r.mode for r in train.faces.values()} == {"crop", "no-face"}
    # a new run (or the next epoch) reads the cache from disk and detects nothing
    calls.clear()
    train2 = StreamDataset(items, FACE, views=AugmentedViews(0, AugmentSection(global_p=0.0)))
    assert ensure_faces([train2], FaceCache(cache_path), info=SOLO, detector_factory=counting_detector) == 0
    assert calls == [] and np.array_equal(train2[0]["pixels"], train[0]["pixels"])
