"""The analysis package's building blocks, checked against hand computations (no model)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis.complementarity import coverage, complementarity_table, error_agreement, wrong
from analysis.conditions import (
    CLEAN,
    DEFAULT_ROBUSTNESS_FAMILIES,
    Condition,
    resolve_families,
    robustness_conditions,
    sweep_conditions,
)
from analysis.data import AnalysisSample, image_seed, load_samples, select_samples
from analysis.entropy import entropy_table
from analysis.maps import box_mask, centroid, centroid_shift, mass_in_box, reduce_map
from analysis.robustness import robustness_table
from analysis.runner import PASS_KEY, pass_key
from analysis.stability import stability_table
from analysis.store import RowStore
from analysis.tables import read_csv, summarize, write_csv
from forensic.metrics import binary_metrics

STREAMS = ("texture", "face", "fusion")


# ------------------------------------------------------------------------------ complementarity
def test_error_agreement_matches_hand_counts():
    a = [1, 1, 1, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    # n11 = 2 (0, 1), n10 = 2 (2, 8), n01 = 1 (3), n00 = 5
    r = error_agreement(a, b)
    assert (r.n, r.n11, r.n10, r.n01, r.n00) == (10, 2, 2, 1, 5)
    assert r.error_rate_a == pytest.approx(0.4) and r.error_rate_b == pytest.approx(0.3)
    assert r.both_wrong == pytest.approx(0.2)
    assert r.either_wrong == pytest.approx(0.5)
    assert r.disagreement == pytest.approx(0.3)
    assert r.jaccard == pytest.approx(2 / 5)
    phi = (2 * 5 - 2 * 1) / math.sqrt(4 * 6 * 3 * 7)
    assert r.error_corr == pytest.approx(phi)
    assert r.error_corr == pytest.approx(np.corrcoef(a, b)[0, 1])  # phi is Pearson on 0/1 vectors
    assert r.yule_q == pytest.approx((10 - 2) / (10 + 2))


def test_error_agreement_degenerate_cases():
    never = error_agreement([0, 0, 0], [0, 1, 0])
    assert never.jaccard == pytest.approx(0.0)
    assert math.isnan(never.error_corr)  # a is constant
    none = error_agreement([0, 0], [0, 0])
    assert math.isnan(none.jaccard) and math.isnan(none.yule_q) and none.both_wrong == 0.0
    same = error_agreement([1, 0, 1, 0], [1, 0, 1, 0])
    assert same.error_corr == pytest.approx(1.0) and same.yule_q == pytest.approx(1.0) and same.disagreement == 0.0
    with pytest.raises(ValueError, match="length"):
        error_agreement([1, 0], [1])


def test_wrong_and_coverage():
    assert wrong([0.5, 0.49, 0.9, 0.1], [1, 1, 0, 0]).tolist() == [False, True, True, False]
    cov = coverage({"a": np.array([1, 1, 0, 0], bool), "b": np.array([1, 0, 1, 0], bool), "c": np.array([1, 1, 1, 0], bool)})
    assert cov == {"all_wrong": 0.25, "any_right": 0.75}


def _pass_row(label, probs, cls=None, spec=CLEAN, key="k", stab=1.0, att=(4.0, 5.0)):
    return {
        "path": key, "spec": spec, "seed": None, "label": label, "error": None, "prob_fake": float(np.mean(probs)),
        "streams": {n: {"prob_fake": p, "attention_nats": att[0], "attention_max": att[1], "stability": stab} for n, p in zip(STREAMS, probs)},
        "cls_cosine": cls or {},
    }


def test_complementarity_table_by_hand():
    rows = [
        _pass_row(1, (0.9, 0.2, 0.8), {"texture|face": 0.1, "texture|fusion": 0.5, "face|fusion": 0.3}),
        _pass_row(1, (0.3, 0.1, 0.7), {"texture|face": 0.3, "texture|fusion": 0.5, "face|fusion": 0.1}),
        _pass_row(0, (0.2, 0.6, 0.4), {"texture|face": 0.2, "texture|fusion": 0.5, "face|fusion": 0.2}),
        _pass_row(0, (0.1, 0.3, 0.6), {"texture|face": 0.2, "texture|fusion": 0.5, "face|fusion": 0.2}),
    ]
    # wrong: texture [F, T, F, F], face [T, T, T, F], fusion [F, F, F, T]
    cams = [{"cam_cosine": {"texture|face": 0.4, "texture|fusion": 0.8, "face|fusion": 0.0}}]
    table = {(r["stream_a"], r["stream_b"]): r for r in complementarity_table(rows, cams, streams=STREAMS)}
    assert set(table) == {("texture", "face"), ("texture", "fusion"), ("face", "fusion")}
    tf = table[("texture", "face")]
    assert tf["n"] == 4 and tf["both_wrong"] == pytest.approx(0.25) and tf["either_wrong"] == pytest.approx(0.75)
    assert tf["jaccard"] == pytest.approx(1 / 3)
    assert tf["error_corr"] == pytest.approx(np.corrcoef([0, 1, 0, 0], [1, 1, 1, 0])[0, 1])
    assert tf["prob_corr"] == pytest.approx(np.corrcoef([0.9, 0.3, 0.2, 0.1], [0.2, 0.1, 0.6, 0.3])[0, 1])
    assert tf["feature_cosine_mean"] == pytest.approx(0.2) and tf["feature_cosine_std"] == pytest.approx(np.std([0.1, 0.3, 0.2, 0.2]))
    assert tf["n_cam"] == 1 and tf["cam_cosine_mean"] == pytest.approx(0.4)
    fu = table[("face", "fusion")]
    assert fu["both_wrong"] == 0.0 and fu["either_wrong"] == 1.0 and fu["disagreement"] == 1.0
    assert fu["error_corr"] == pytest.approx(-1.0) and fu["yule_q"] == pytest.approx(-1.0)


# ------------------------------------------------------------------------------ maps
def test_box_mass_centroid_and_correlation():
    m = np.zeros((100, 100), np.float32)
    m[10:30, 20:40] = 1.0  # a block in image pixels 20..40 x 10..30 (map = image resolution)
    mask = box_mask(m.shape, (20, 10, 40, 30), (100, 100))
    assert mask.sum() == 400
    assert mass_in_box(m, mask) == pytest.approx(1.0)
    uniform = np.ones_like(m)
    assert mass_in_box(uniform, mask) == pytest.approx(mask.mean())  # a flat map puts the box's share in it
    assert centroid(m) == pytest.approx((0.30, 0.20))
    shifted = np.roll(m, 30, axis=1)
    assert centroid_shift(centroid(m), centroid(shifted)) == pytest.approx(0.30)
    assert math.isnan(mass_in_box(np.zeros_like(m), mask)) and all(math.isnan(v) for v in centroid(np.zeros_like(m)))


def test_box_mask_scales_to_reduced_maps():
    # a 512x256 (w x h) image reduced to 128x64: box 256..512 x 0..128 is the right half, top half
    mask = box_mask((64, 128), (256, 0, 512, 128), (512, 256))
    assert mask.sum() == 64 * 32 and mask[:32, 64:].all()
    big = np.random.default_rng(0).random((256, 512)).astype(np.float32)
    small = reduce_map(big)
    assert small.shape == (64, 128)
    assert small.mean() == pytest.approx(big.mean(), rel=1e-3)  # area interpolation keeps the mass


# ------------------------------------------------------------------------------ conditions
def test_robustness_conditions_follow_the_protocol():
    conds = robustness_conditions(("jpeg", "gnoise", "gblur", "df-blur"))
    jpeg = [c for c in conds if c.family == "jpeg"]
    assert [c.level for c in jpeg] == ["q100", "q80", "q60", "q40", "q20", "q10", "q5"]
    assert [c.strength for c in jpeg] == pytest.approx([0, 20 / 95, 40 / 95, 60 / 95, 80 / 95, 90 / 95, 1.0], abs=1e-6)
    assert jpeg[0].spec == "jpeg:quality=100" and not jpeg[0].clean  # q100 is a re-encode, not the clean image
    gnoise = [c for c in conds if c.family == "gnoise"]
    assert [c.strength for c in gnoise] == pytest.approx([0, 1 / 6, 2 / 6, 0.5, 4 / 6, 5 / 6, 1], abs=1e-6)
    assert gnoise[0].clean and gnoise[3].spec == "gnoise:sigma=30"
    assert [c.level for c in conds if c.family == "gblur"] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    df = [c for c in conds if c.family == "df-blur"]
    assert [c.level for c in df] == ["0", "1", "2", "3", "4", "5"] and df[0].clean and df[5].strength == 1.0
    assert df[3].spec == "df-blur:level=3"
    kept = robustness_conditions(("jpeg",), levels=("q100", "q5"))
    assert [c.level for c in kept] == ["q100", "q5"]
    with pytest.raises(ValueError, match="q100, q80"):
        robustness_conditions(("jpeg",), levels=("0.5",))


def test_family_names_and_sweeps():
    assert resolve_families(["protocol", "jpeg", "df"]) == DEFAULT_ROBUSTNESS_FAMILIES
    assert "resize" in resolve_families(["all"])
    with pytest.raises(ValueError, match="valid: jpeg"):
        resolve_families(["jpg"])
    from forensic.degrade import FAMILIES

    assert resolve_families(["all"], allowed=FAMILIES) == FAMILIES  # groups keep only what is allowed
    sweep = sweep_conditions(("compound", "gnoise"), (0.0, 0.5, 1.0))
    assert [(c.family, c.strength, c.clean) for c in sweep] == [
        ("compound", 0.0, True), ("compound", 0.5, False), ("compound", 1.0, False),
        ("gnoise", 0.0, True), ("gnoise", 0.5, False), ("gnoise", 1.0, False),
    ]
    assert sweep[4].spec == "gnoise:sigma=30"
    with pytest.raises(ValueError, match="strength scale"):
        sweep_conditions(("df-blur",))


# ------------------------------------------------------------------------------ data and store
def _samples(n_real, n_fake):
    return [AnalysisSample(path=None, key=f"real/{i}.png", label=0) for i in range(n_real)] + [
        AnalysisSample(path=None, key=f"fake/{i}.png", label=1) for i in range(n_fake)
    ]


def test_select_samples_is_balanced_seeded_and_extends():
    s = _samples(10, 4)
    five = select_samples(s, limit=5, seed=0)
    assert [x.label for x in five] == [0, 1, 0, 1, 0]
    assert select_samples(s, limit=5, seed=0) == five
    assert select_samples(s, limit=9, seed=0)[:5] == five  # a larger limit keeps the first images
    assert select_samples(s, limit=5, seed=1) != five
    assert sum(x.label for x in select_samples(s, limit=None, seed=0)) == 4
    assert image_seed("real/1.png", 0) == image_seed("real/1.png", 0) != image_seed("real/1.png", 1)


def test_load_samples_from_a_manifest(tmp_path):
    import cv2

    for name in ("a", "b", "c", "d"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "m.csv").write_text("path,label,split\na.png,real,train\nb.png,fake,val\nc.png,fake,train\nd.png,real,val\n")
    val = load_samples(tmp_path / "m.csv", split="val")
    assert sorted((s.key, s.label) for s in val) == [("b.png", 1), ("d.png", 0)]
    assert len(load_samples(tmp_path / "m.csv")) == 4
    (tmp_path / "n.csv").write_text("a.png,real\nb.png,fake\n")
    from analysis.data import DataError

    with pytest.raises(DataError, match="split column"):
        load_samples(tmp_path / "n.csv", split="val")


def test_row_store_resumes_and_skips_a_cut_line(tmp_path):
    store = RowStore(tmp_path / "r.jsonl", key_fields=PASS_KEY)
    store.append([{"path": "a", "spec": "none", "seed": None, "x": 1.0, "error": None}])
    store.append([{"path": "a", "spec": "jpeg:quality=5", "seed": 7, "x": float("nan"), "error": None}])
    store.append([{"path": "b", "spec": "none", "seed": None, "error": "ImageError: bad"}])
    with (tmp_path / "r.jsonl").open("a") as f:
        f.write('{"path": "c", "spec": "no')  # an interrupted write
    again = RowStore(tmp_path / "r.jsonl", key_fields=PASS_KEY)
    assert len(again) == 3
    assert again.done(("a", "none", None)) and again.done(("a", "jpeg:quality=5", 7))
    assert not again.done(("b", "none", None))  # rows with an error are retried
    assert again.get(("a", "jpeg:quality=5", 7))["x"] is None  # NaN is stored as null
    for line in (tmp_path / "r.jsonl").read_text().splitlines()[:3]:
        json.loads(line)  # strict JSON


def test_summarize_and_csv_round_trip(tmp_path):
    s = summarize([1.0, 2.0, None, float("nan"), 3.0, 4.0])
    assert (s.n, s.mean, s.median, s.min, s.max) == (4, 2.5, 2.5, 1.0, 4.0)
    assert s.std == pytest.approx(np.std([1, 2, 3, 4]))
    assert math.isnan(summarize([]).mean)
    path = write_csv(tmp_path / "t.csv", [{"a": 1, "b": float("nan"), "c": "x"}, {"a": 0.123456789}], ("a", "b", "c"))
    assert read_csv(path) == [{"a": "1", "b": "", "c": "x"}, {"a": "0.123457", "b": "", "c": ""}]


# ------------------------------------------------------------------------------ aggregation
def _store_with(tmp_path, rows):
    store = RowStore(tmp_path / "p.jsonl", key_fields=PASS_KEY)
    store.append(rows)
    return store


def test_robustness_stability_entropy_tables_aggregate_the_rows(tmp_path):
    samples = _samples(3, 3)
    spec = "jpeg:quality=5"
    rng = np.random.default_rng(0)
    rows, probs = [], {n: [] for n in STREAMS}
    for s in samples:
        p = rng.random(3)
        for n, v in zip(STREAMS, p):
            probs[n].append(v)
        r = _pass_row(s.label, tuple(p), spec=spec, stab=float(rng.random()), att=(float(rng.uniform(0, 5)), 5.0))
        r.update(path=s.key, seed=pass_key(s, spec, 0)[2])
        rows.append(r)
    store = _store_with(tmp_path, rows[:-1] + [{**rows[-1], "error": "ValueError: x"}])  # the last one failed
    cond = [Condition("jpeg", "q5", 1.0, spec)]
    table = robustness_table(store, samples, cond, seed=0, streams=STREAMS)
    assert [r["stream"] for r in table] == [*STREAMS, "vote"]
    labels = [s.label for s in samples[:-1]]
    for r in table[:3]:
        expected = binary_metrics(probs[r["stream"]][:-1], labels)
        assert r["errors"] == 1 and r["n"] == 5
        for k in ("auc", "ap", "accuracy", "eer", "ece"):
            assert r[k] == pytest.approx(expected[k])
    stab = stability_table(store, samples, cond, seed=0, streams=STREAMS)
    assert stab[0]["cosine_mean"] == pytest.approx(np.mean([r["streams"]["texture"]["stability"] for r in rows[:-1]]))
    ent = entropy_table(store, samples, cond, seed=0, streams=STREAMS)
    assert [r["measure"] for r in ent] == ["attention"] * 3
    nats = [r["streams"]["texture"]["attention_nats"] for r in rows[:-1]]
    assert ent[0]["nats_mean"] == pytest.approx(np.mean(nats)) and ent[0]["normalized_mean"] == pytest.approx(np.mean(nats) / 5.0)
    assert ent[0]["max_nats"] == 5.0


# ------------------------------------------------------------------------------ the study registry
def test_the_registry_holds_every_study_once_in_report_order():
    from analysis import STUDIES, cam_drift, complementarity, entropy, robustness, stability
    from analysis.__main__ import build_parser
    from analysis.studies import REGISTRY, get_study

    assert STUDIES == tuple(REGISTRY) == ("robustness", "stability", "entropy", "cam-drift", "complementarity")
    tables = {
        "robustness": ("robustness.csv", robustness.COLUMNS), "stability": ("stability.csv", stability.COLUMNS),
        "entropy": ("entropy.csv", entropy.COLUMNS), "cam-drift": ("cam_drift.csv", cam_drift.COLUMNS),
        "complementarity": ("complementarity.csv", complementarity.COLUMNS),
    }
    assert {name: (s.csv, s.columns) for name, s in REGISTRY.items()} == tables
    assert [name for name, s in REGISTRY.items() if s.needs_cam] == ["cam-drift"]
    commands = build_parser()._subparsers._group_actions[0].choices  # every study is a command, and report
    assert set(commands) == {*STUDIES, "report"}
    # each command's options come from its registry entry: families, sweep, Score-CAM (none allowed unless it needs it)
    flags = {name: {a.dest for a in p._actions} for name, p in commands.items()}
    assert "families" in flags["robustness"] and "sweep_families" not in flags["robustness"] and "cam" not in flags["robustness"]
    assert {"sweep_families", "strengths"} <= flags["stability"] and "cam" not in flags["stability"]
    assert {"families", "sweep_families", "cam"} <= flags["report"]
    cam_choices = {name: next(a.choices for a in p._actions if a.dest == "cam") for name, p in commands.items() if "cam" in flags[name]}
    assert cam_choices == {"cam-drift": ("fast", "adaptive", "exact"), "entropy": ("fast", "adaptive", "exact", "none"),
                           "complementarity": ("fast", "adaptive", "exact", "none"), "report": ("fast", "adaptive", "exact", "none")}
    with pytest.raises(ValueError, match="unknown study 'nope'; choose one of robustness, stability, entropy, cam-drift, complementarity"):
        get_study("nope")


def test_one_registry_entry_is_a_study_the_session_runs(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from analysis import AnalysisError
    from analysis.runner import RunStats
    from analysis.session import Analysis
    from analysis.studies import REGISTRY
    from analysis.study import Study

    def compute(a, study):
        result = study.tabulate(a, [{"x": 1, "y": 0.5}, {"x": 2}], [RunStats(3, 4, 0), RunStats(1, 0, 2)])
        result.notes.append("toy note")
        return result

    toy = Study(name="toy", title="Toy", description=lambda a: f"on {a.out.name}", csv="toy.csv", columns=("x", "y"), compute=compute)
    monkeypatch.setitem(REGISTRY, "toy", toy)
    session = SimpleNamespace(out=tmp_path, options=SimpleNamespace(cam="none"))
    result = Analysis.run(session, "toy")  # the session's own state is all a study reads
    assert (result.name, result.title, result.description, result.columns) == ("toy", "Toy", f"on {tmp_path.name}", ("x", "y"))
    assert result.csv == tmp_path / "toy.csv" and read_csv(result.csv) == [{"x": "1", "y": "0.5"}, {"x": "2", "y": ""}]
    assert result.notes == ["4 per-image evaluations computed now, 4 reused from earlier runs, 2 failed (see the records' error field).", "toy note"]
    assert len(result.runs) == 2 and result.seconds >= 0.0

    monkeypatch.setitem(REGISTRY, "toy", Study(**{**toy.__dict__, "needs_cam": True}))
    with pytest.raises(AnalysisError, match="toy needs Score-CAM: use --cam with one of fast, adaptive, exact"):
        Analysis.run(session, "toy")


def test_cam_labels_name_the_groups_of_every_method_that_groups_channels():
    from analysis.runner import cam_method_label

    assert cam_method_label("fast", 4) == "fast/g4" and cam_method_label("adaptive", 4) == "adaptive/g4"
    assert cam_method_label("exact", 4) == "exact" and cam_method_label("fast") == "fast"
