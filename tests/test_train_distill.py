"""``python -m train distill`` on CPU with tiny models (issue 16).

A tiny two-stream teacher (texture + fusion) is trained on the planted-artifact toy set and saved
with ``forensic.weights.save_pretrained``; a tiny student with another seed learns it from an
unlabelled folder of the same kind of images. The acceptance figures are measured with the
exported student and the teacher through the inference stages, on labelled images neither saw.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import train.distill
import train.teacher_cache
from forensic import pipeline
from forensic.pipeline import flow as pipeline_flow
from forensic.data import DataError, Sample, read_samples
from forensic.metrics import pearson, roc_auc
from forensic.pipeline import Detector
from forensic.presets import get_preset
from forensic.weights import build_model, save_pretrained
from tests import awkward
from tests.awkward import binary_csv
from tests.conftest import CENTRAL_BOX
from forensic.toy import toy_set, train_stream, write_unlabelled_folder
from train.__main__ import main as train_main
from train.agreement import ensemble_votes
from train.checkpoint import load_checkpoint
from train.config import ConfigError, DistillConfig, load_config
from train.distill import distill
from train.distill_card import fit_to_teacher
from train.face_cache import file_key
from train.teacher_cache import TeacherCache, entry_key

FAST = ["--no-progress", "threads=1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A tiny texture + fusion model trained on planted-artifact images, in our weights format."""
    tiny = get_preset("tiny-random").config
    config = tiny.replace(streams=(tiny.stream("texture"), tiny.stream("fusion")))
    model = build_model(config)  # random bases from their seeds, as tiny-random
    images, labels = toy_set(32, seed=0, box=CENTRAL_BOX)
    for stream in config.stream_names:
        train_stream(model, stream, images, labels, steps=6, lr=3e-3, seed=0)
    model.config = config.replace(untrained=False, description="a tiny planted-artifact teacher")
    return save_pretrained(model, tmp_path_factory.mktemp("teacher") / "weights")


def _events(monkeypatch) -> list[str]:
    """Records, in order, every teacher forward pass and the start of every distillation epoch."""
    events: list[str] = []
    forward, train_epoch = pipeline_flow.forward, train.distill.DistillJob.train_epoch

    def counting_forward(model, inputs, **kwargs):  # the pipeline's forward stage: only the teacher's items use it here
        events.append(f"teacher:{len(inputs)}")
        return forward(model, inputs, **kwargs)

    def marking_epoch(self, cfg, info, epoch):
        events.append(f"epoch:{epoch + 1}")
        return train_epoch(self, cfg, info, epoch)

    monkeypatch.setattr(pipeline_flow, "forward", counting_forward)
    monkeypatch.setattr(train.distill.DistillJob, "train_epoch", marking_epoch)
    return events


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(teacher, tmp_path_factory):
    """``python -m train distill`` of the teacher into tiny-random (seed 1): 2 epochs on 24 unlabelled images
    (18 to learn from, 6 held out), 2 views each."""
    root = tmp_path_factory.mktemp("distill")
    data, truth = write_unlabelled_folder(root / "photos", 24, seed=7, box=CENTRAL_BOX)
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        events = _events(mp)
        rc = train_main(["distill", "--teacher", str(teacher), "--config", "distill_tiny", "--data", str(data), "--out", str(out),
                         *FAST])
    records = _log(out)
    return SimpleNamespace(rc=rc, out=out, data=data, truth=truth, events=events, start=records[0],
                           epochs=[r for r in records if r["event"] == "epoch"], metrics=json.loads((out / "metrics.json").read_text()))


def _predict(detector: Detector, images, degradation: str | None) -> np.ndarray:
    """Ensemble P(fake) (vote-weighted, before the grid) through the inference stages: load, prepare, forward."""
    config = detector.config
    inputs = [pipeline.prepare(pipeline.load(im, degradation=degradation, seed=i), None, config).inputs for i, im in enumerate(images)]
    host = pipeline.forward(detector.model, inputs).host()
    probs = {s: np.array([h[s].prob_fake for h in host]) for s in config.stream_names}
    return ensemble_votes(probs, config.vote, np.zeros(len(images), dtype=bool))[0]


# --------------------------------------------------------------------------------- acceptance
@pytest.mark.slow
def test_student_follows_the_teacher_and_finds_the_fakes(run, teacher):
    assert run.rc == 0
    assert run.start["data"]["train"] == {"real": 0, "fake": 0, "unlabelled": 18}  # no labels were read
    student = Detector.from_pretrained(run.out / "export", device="cpu")
    assert student.config.stream_names == ("texture", "fusion") and not student.untrained
    reference = Detector.from_pretrained(teacher, device="cpu")
    images, labels = toy_set(16, seed=99, box=CENTRAL_BOX)  # images neither model saw
    for degradation in (None, "jpeg-q40"):
        ours, theirs = _predict(student, images, degradation), _predict(reference, images, degradation)
        assert pearson(ours, theirs) >= 0.8, degradation
        assert roc_auc(ours, labels) >= 0.8, degradation


@pytest.mark.slow  # the teacher and distillation run fixtures: ~10-15 s
def test_teacher_runs_once_before_the_first_epoch(run):
    first_epoch = run.events.index("epoch:1")
    teacher_calls = [e for e in run.events if e.startswith("teacher:")]
    assert teacher_calls and all(run.events.index(e) < first_epoch for e in teacher_calls)
    assert [e for e in run.events if e.startswith("epoch:")] == ["epoch:1", "epoch:2"]
    passed = run.start["teacher_pass"]
    # every (image, view) once: 18 training images x up to 2 views (clean views shared), 6 held-out x 2 sets
    assert passed["computed"] == passed["needed"] == sum(int(e.split(":")[1]) for e in teacher_calls)
    assert 18 + 12 <= passed["needed"] <= 18 * 2 + 12 and passed["forward_calls"] == len(teacher_calls)
    shards = sorted((run.out / "teacher_cache").glob("shard-*.safetensors"))
    assert shards and sum(p.stat().st_size for p in shards) == passed["cache_bytes"]
    assert TeacherCache(run.out / "teacher_cache").__len__() == passed["needed"]


@pytest.mark.slow  # the teacher and distillation run fixtures: ~10-15 s
def test_every_epoch_and_the_card_report_agreement(run, teacher):
    for record in run.epochs:
        assert set(record["val"]) == {"clean", "jpeg-q40"}
        for figures in record["val"].values():
            assert figures["n"] == 6 and -1 <= figures["pearson"] <= 1 and 0 <= figures["vote_agreement"] <= 1
            assert figures["auc"] is None and figures["n_labelled"] == 0  # unlabelled: nothing to score against
            assert set(figures["streams"]) == {"texture", "fusion"}
    losses = [r["train_loss"] for r in run.epochs]
    assert losses[-1] < losses[0] and set(run.epochs[0]["train_loss_parts"]) == {"texture", "fusion"}
    export = run.out / "export"
    assert sorted(p.name for p in export.iterdir()) == [
        "README.md", "base_clip.safetensors", "base_dinov2.safetensors", "config.json", "fusion.safetensors", "texture.safetensors",
    ]
    card = (export / "README.md").read_text()
    for text in ("## Distillation", "## Agreement with the teacher", "## Calibration", str(teacher), "18 images (18 unlabelled)",
                 "| clean | 6 |", "| jpeg-q40 | 6 |", 'distilled_from: "'):
        assert text in card, text
    clean = run.metrics["agreement"]["clean"]
    assert f"| clean | 6 | {clean['pearson']:.3f} | {clean['vote_agreement']:.3f} |" in card
    meta = json.loads((export / "config.json").read_text())["meta"]["distillation"]
    assert meta["teacher"] == str(teacher) and meta["targets"] == "degraded" and meta["agreement"]["clean"]["n"] == 6
    # 6 held-out images are too few to fit a temperature: kept at 1, with the reason in the card
    assert run.metrics["temperatures"] == {"texture": 1.0, "fusion": 1.0} and "too small to fit" in card
    predictions = [json.loads(line) for line in (run.out / "val_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 12 and {p["set"] for p in predictions} == {"clean", "jpeg-q40"}


# --------------------------------------------------------------------------------- resume, cache
@pytest.mark.slow
def test_resume_reads_the_cache_and_continues_exactly(run, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copyfile(run.out / "checkpoints" / "epoch_001.pt", out / "checkpoints" / "epoch_001.pt")
    shutil.copytree(run.out / "teacher_cache", out / "teacher_cache")
    shutil.copyfile(run.out / "face_cache.json", out / "face_cache.json")
    events = _events(monkeypatch)
    rc = train_main(["distill", "--teacher", str(run.start["teacher"]["ref"]), "--config", "distill_tiny", "--data", str(run.data),
                     "--out", str(out), "--resume", "auto", *FAST])
    assert rc == 0 and events == ["epoch:2"]  # the teacher never ran: its outputs came from the cache
    a, b = load_checkpoint(run.out / "checkpoints" / "epoch_002.pt"), load_checkpoint(out / "checkpoints" / "epoch_002.pt")
    assert a.stream == b.stream == "distill:texture+fusion" and a.stream_state.keys() == b.stream_state.keys()
    for key in a.stream_state:
        assert torch.equal(a.stream_state[key], b.stream_state[key]), key
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    start = [r for r in _log(out) if r["event"] == "start"][-1]
    assert start["teacher_pass"]["computed"] == 0 and start["run"] == run.start["run"]


@pytest.mark.slow  # the teacher and distillation run fixtures: ~10-15 s
def test_resume_refuses_another_teacher(run, teacher, tmp_path, capsys):
    other = tmp_path / "other_teacher"
    shutil.copytree(teacher, other)
    head = load_file(other / "texture.safetensors")
    head["head.bias"] = head["head.bias"] + 1.0
    save_file(head, other / "texture.safetensors")
    out = tmp_path / "out"
    shutil.copytree(run.out, out, ignore=shutil.ignore_patterns("teacher_cache", "export"))
    before = (out / "log.jsonl").read_text()
    capsys.readouterr()
    rc = train_main(["distill", "--teacher", str(other), "--config", "distill_tiny", "--data", str(run.data), "--out", str(out),
                     "--resume", "auto", *FAST])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and "Traceback" not in err
    assert "teacher" in errors[0] and "--overwrite" in errors[0]
    assert (out / "log.jsonl").read_text() == before


@pytest.mark.slow  # the teacher and distillation run fixtures: ~10-15 s
def test_clean_targets_ask_the_teacher_once_per_image(teacher, tmp_path):
    from train.distill import _DistillRun
    from train.distributed import DistInfo
    from train.views import View

    data, _ = write_unlabelled_folder(tmp_path / "photos", 8, seed=3, box=CENTRAL_BOX)
    cfg = load_config("distill_tiny", {
        "data.path": str(data), "distill.teacher": str(teacher), "distill.targets": "clean", "distill.views": 3,
        "eval.degradations": [], "data.val_fraction": 0.25, "augment.global_p": 1.0,
    }, kind=DistillConfig)
    steps = _DistillRun()
    split, _ = steps.prepare(cfg, out=tmp_path / "out", info=DistInfo())
    job = steps.build(cfg, split, DistInfo())
    # 6 training images, one clean target each whatever their 3 (degraded) views, and 2 clean held-out images
    assert job.teacher_pass.needed == job.teacher_pass.computed == 8 and job.train_targets.shape == (6, 1, 2, 2)
    assert all(v.degradation is not None for i in range(len(job.train_set)) for v in job.train_set.view_plan.views(i))
    cache = TeacherCache(tmp_path / "out" / "teacher_cache")
    assert len(cache) == 8
    expected = torch.stack([
        torch.from_numpy(cache.get(entry_key(teacher=job.teacher.fingerprint, dtype="torch.float32", file=file_key(s.path),
                                             view=f"{View().key}|faces-on-clean"), job.streams))
        for s in job.train_set.samples
    ])
    assert torch.equal(job.train_targets[:, 0], expected)  # the teacher's temperatures are 1
    batch = next(iter(job.train_loader))
    step = job._loss(job.net, batch, torch.device("cpu"), "fp32")
    assert step.count == len(batch["index"]) and torch.isfinite(step.loss) and set(step.parts) == {"texture", "fusion"}


# --------------------------------------------------------------------------------- pieces
def test_teacher_cache_round_trip_and_keys(tmp_path):
    base = {"teacher": "t1", "dtype": "torch.float32", "file": "/a.png:10:5", "view": "clean|faces-on-clean"}
    keys = [entry_key(**base)] + [entry_key(**{**base, field: "other"}) for field in base]
    assert len(set(keys)) == 5 and all(len(k) == 16 for k in keys)
    cache = TeacherCache(tmp_path / "cache")
    logits = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    cache.put(keys[:3], ("texture", "fusion"), logits)
    written = cache.flush()
    assert written is not None and written.suffix == ".safetensors" and not list((tmp_path / "cache").glob("*.tmp"))
    again = TeacherCache(tmp_path / "cache")
    assert len(again) == 3 and again.missing(keys) == keys[3:]
    assert np.array_equal(again.get(keys[1], ["fusion", "texture"]), logits[1][::-1])
    assert again.disk_bytes() == written.stat().st_size < 500  # 3 entries: 16 + 16 bytes each, plus the header
    (tmp_path / "cache" / "shard-0-broken.safetensors").write_bytes(b"not safetensors")
    assert len(TeacherCache(tmp_path / "cache")) == 3  # an unreadable shard is ignored (its entries recomputed)


def test_soft_temperature_recovers_the_teacher_scale():
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 3, 200)
    logits = np.stack([np.zeros(200), margin], axis=1)
    target = 1 / (1 + np.exp(-margin / 2.5))  # the teacher is 2.5x less confident
    fit = fit_to_teacher(logits, target)  # forensic.calibration.fit_temperature on soft targets
    assert fit["fitted"] and fit["temperature"] == pytest.approx(2.5, rel=1e-3)
    assert fit["ce_after"] < fit["ce_before"] and fit["mae_after"] < 1e-4 < fit["mae_before"]
    small = fit_to_teacher(logits[:10], target[:10])
    assert not small["fitted"] and small["temperature"] == 1.0 and "too small" in small["note"]


def test_unlabelled_folders_and_manifests(tmp_path):
    data, _ = write_unlabelled_folder(tmp_path / "flat" / "deep", 4, seed=1)
    samples = read_samples(tmp_path / "flat", labels="optional")
    assert len(samples) == 4 and all(s.label is None for s in samples)
    with pytest.raises(DataError, match="real/"):
        read_samples(tmp_path / "flat")  # training needs labels
    (tmp_path / "m.csv").write_text("path,split\nflat/deep/photo_000.png,train\nflat/deep/photo_001.png,val\n")
    listed = read_samples(tmp_path / "m.csv", labels="optional")
    assert [(s.label, s.split) for s in listed] == [(None, "train"), (None, "val")]
    (tmp_path / "n.csv").write_text("flat/deep/photo_000.png\nflat/deep/photo_001.png,fake\n")
    assert [s.label for s in read_samples(tmp_path / "n.csv", labels="optional")] == [None, 1]


def test_binary_csv_manifest_is_one_data_error(tmp_path, capsys):
    manifest = binary_csv(tmp_path)
    for labels in ("required", "optional"):
        with pytest.raises(DataError, match="is not a CSV manifest.*not UTF-8") as info:
            read_samples(manifest, labels=labels)
        assert "\n" not in str(info.value) and str(manifest) in str(info.value)
    (tmp_path / "zeros.csv").write_bytes(b"a.png,1\n\x00\x00\x00,0\n")
    with pytest.raises(DataError, match="NUL bytes"):
        read_samples(tmp_path / "zeros.csv")
    capsys.readouterr()
    assert train_main(["--config", "tiny", "--data", str(manifest), "--out", str(tmp_path / "run"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "not a CSV manifest" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [  # slow: the cases that need the trained teacher (T), a module fixture of ~10 s
        ([], "no teacher: pass --teacher"),
        (["--teacher-preset", "tiny-random"], "has no published weights"),
        (["--teacher", "/nowhere/weights"], "No such folder"),
        pytest.param(["--teacher", "T", "distill.streams=[face]"], "the teacher has no face stream", marks=pytest.mark.slow),
        pytest.param(["--teacher", "T", "data.pseudo_fakes=true"], "the teacher labels every image", marks=pytest.mark.slow),
        pytest.param(["--teacher", "T", "distill.protocol=[jpg]"], "distill.protocol must list", marks=pytest.mark.slow),
    ],
)
def test_cli_errors_are_one_line(args, message, request, tmp_path, capsys):
    data, _ = write_unlabelled_folder(tmp_path / "photos", 4, seed=2)
    if "T" in args:  # the teacher is trained only for the cases that use it
        args = [str(request.getfixturevalue("teacher")) if a == "T" else a for a in args]
    capsys.readouterr()
    rc = train_main(["distill", "--config", "distill_tiny", "--data", str(data), "--out", str(tmp_path / "out"), *FAST, *args])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert rc == 2 and "Traceback" not in err and len(errors) == 1 and message in errors[0], err


def test_untrained_teacher_and_training_config_mixups_are_refused(tmp_path, capsys):
    untrained = save_pretrained(build_model(get_preset("tiny-random").config), tmp_path / "random")
    with pytest.raises(ConfigError, match="marked untrained"):
        distill(load_config("distill_tiny", {"distill.teacher": str(untrained), "data.path": str(tmp_path)}, kind=DistillConfig),
                out=tmp_path / "out")
    capsys.readouterr()
    assert train_main(["--config", "distill_tiny", "--out", str(tmp_path / "x")]) == 2
    assert "python -m train distill" in capsys.readouterr().err
    assert train_main(["distill", "--config", "distill_tiny", "--out", str(tmp_path / "x"), "--print-config", "--teacher", "w"]) == 0
    printed = capsys.readouterr().out
    assert "teacher: w" in printed and "targets: degraded" in printed


def test_face_stream_inputs_are_the_inference_crops(tmp_path, astronaut):
    """The student's (and teacher's) face input is pipeline.prepare's crop with MTCNN's face, on the
    clean image for training views and on the degraded image itself for held-out views."""
    import cv2

    from forensic.faces import get_default_detector
    from train.datasets import StreamDataset
    from train.distributed import DistInfo
    from train.face_cache import FaceCache, ensure_faces
    from train.samples import expand_items
    from train.views import CycledViews, View, eval_views

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.ascontiguousarray(astronaut[20:300, 90:370, ::-1]))
    config = get_preset("tiny-random").config
    degraded = View("compound:strength=1,op_p=0.3,cap=0.8", 5)
    items = expand_items([Sample(path, None)], pseudo_fakes=False)
    train_set = StreamDataset(items, config, views=CycledViews.of([(View(), degraded)], ids=[0]))
    held_out = StreamDataset(items, config, views=CycledViews.of(eval_views([0], "jpeg-q20", 0), faces_on_view=True))
    ensure_faces([train_set, held_out], FaceCache(tmp_path / "faces.json"), info=DistInfo(), detector_factory=get_default_detector)
    detector = get_default_detector()
    clean = pipeline.load(path)
    face = detector.analyze_batch([clean.image])[0]
    assert face.mode == "crop"
    for epoch, view in ((0, View()), (1, degraded)):
        loaded = pipeline.load(path, degradation=view.degradation, seed=view.seed)
        expected = pipeline.prepare(loaded, face, config).inputs
        item = train_set[(epoch, 0)]
        assert item["view"] == epoch
        for stream in config.stream_names:
            assert np.array_equal(item["pixels"][stream], expected[stream].pixels), (epoch, stream)
    view = held_out.view(0)
    loaded = pipeline.load(path, degradation=view.degradation, seed=view.seed)
    expected = pipeline.prepare(loaded, detector.analyze_batch([loaded.image])[0], config).inputs
    assert np.array_equal(held_out[0]["pixels"]["face"], expected["face"].pixels)


# --------------------------------------------------------------------------------- issue 25, item 6: fail fast
@pytest.fixture(scope="module")
def quick_teacher(tmp_path_factory) -> Path:
    """A tiny-random weights folder marked trained: accepted as a teacher without training one."""
    root = tmp_path_factory.mktemp("quick_teacher")
    return awkward.set_config_field(awkward.good_weights_folder(root / "good"), root / "teacher", "untrained", False)


def _spy_work(monkeypatch) -> list[str]:
    """Records the data scan and every teacher forward pass (neither may run before a refusal)."""
    events: list[str] = []
    scan, forward = train.distill.scan_split, pipeline_flow.forward
    monkeypatch.setattr(train.distill, "scan_split", lambda *a, **k: events.append("scan") or scan(*a, **k))
    monkeypatch.setattr(pipeline_flow, "forward", lambda *a, **k: events.append("teacher") or forward(*a, **k))
    return events


def _distill_error(teacher: Path, tmp_path: Path, capsys, *overrides: str) -> str:
    data, _ = write_unlabelled_folder(tmp_path / "photos", 4, seed=2)
    capsys.readouterr()
    rc = train_main(["distill", "--teacher", str(teacher), "--config", "distill_tiny", "--data", str(data),
                     "--out", str(tmp_path / "out"), *FAST, *overrides])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and "Traceback" not in err and len(errors) == 1 and errors[0].startswith("error:"), err
    return errors[0]


@pytest.mark.parametrize("damage", ["truncated", "empty", "float64", "missing"])
def test_a_damaged_teacher_is_refused_before_the_data_is_read(quick_teacher, tmp_path, capsys, monkeypatch, damage):
    make = {"truncated": awkward.truncated_safetensors, "empty": awkward.empty_file, "float64": awkward.float64_weights,
            "missing": lambda good, dst: (awkward.copy_weights(good, dst) / "texture.safetensors").unlink() or Path(dst)}[damage]
    teacher = make(quick_teacher, tmp_path / "damaged")
    events = _spy_work(monkeypatch)
    line = _distill_error(teacher, tmp_path, capsys)
    assert str(teacher / "texture.safetensors") in line and "Invalid weights" in line
    assert "random_bases" not in line and "Hugging Face cache" not in line  # no hint about something else
    assert events == []


def test_a_missing_student_base_is_refused_before_the_data_and_the_teacher(quick_teacher, tmp_path, capsys, monkeypatch):
    """``model.preset=small`` offline with an empty Hub cache: one line naming the base, with what to do."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_hub_cache"))
    events = _spy_work(monkeypatch)
    line = _distill_error(quick_teacher, tmp_path, capsys, "model.preset=small")
    assert "base of preset 'small'" in line and "HF_HUB_OFFLINE" in line and "model.random_bases=true" in line
    assert "--weights DIR" not in line  # inference's advice does not apply to a training run
    assert events == []
