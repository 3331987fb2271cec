"""One verdict everywhere (issue 24 item 1): the page, ``Report.to_dict()``, the CLI's JSON line and CSV
row and the app's batch CSV say the same thing for each state of :mod:`forensic.verdict`."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from forensic.__main__ import main
from forensic.pipeline import Detector
from forensic.records import csv_row, report_record
from forensic.verdict import NO_FACE, UNTRAINED, rule_text, verdict_of
from webapp import batch, vote

ROOT = Path(__file__).resolve().parents[1]
FACE = ROOT / "examples" / "astronaut_face.png"
CUP = ROOT / "examples" / "coffee.jpg"


@pytest.fixture(scope="module")
def reports():
    detector = Detector.from_preset("tiny-random", device="cpu")
    face, cup = detector.analyze(str(FACE)), detector.analyze(str(CUP))
    assert face.face.mode == "crop" and cup.face.mode == "no-face"
    return {"face": face, "cup": cup}


def _as(report, p, *, untrained=False, vote_without_face=False):
    """``report`` with the ensemble P(fake) ``p``, trained or not."""
    return replace(report, prob_fake=p, vote=replace(report.vote, prob_fake=p), untrained=untrained,
                   vote_without_face=vote_without_face)


STATES = [
    # (image, p, untrained, vote_without_face, label, word)
    ("face", 0.8, False, False, "fake", "fake"),
    ("face", 0.2, False, False, "real", "real"),
    ("face", 0.5, False, False, "fake", "fake (tie at 0.5)"),
    ("face", 0.8, True, False, None, UNTRAINED),
    ("cup", 0.8, False, False, None, NO_FACE),
    ("cup", 0.3, False, True, "real", "real (no face)"),
    ("cup", 0.5, True, True, None, UNTRAINED),
]


@pytest.mark.parametrize(("image", "p", "untrained", "forced", "label", "word"), STATES)
def test_every_output_says_the_same_verdict(reports, image, p, untrained, forced, label, word):
    report = _as(reports[image], p, untrained=untrained, vote_without_face=forced)
    assert (report.verdict.label, report.verdict.word, report.label) == (label, word, label)
    # the page
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", vote.vote_html(report)))
    assert f"Verdict: {word}" in page and f"= {p:.1f}" in page  # the probability is always shown
    if label is None:
        assert "Leans" not in page
    # the JSON (Report.to_dict, the /analyze API, the report file's record)
    data = report.to_dict()
    assert (data["label"], data["verdict"], data["prob_fake"]) == (label, word, p)
    assert data["verdict_rule"] == rule_text(0.5) and data["verdict_reason"]
    # the CLI's JSON line and CSV row (forensic.records), the flag given as the CLI gives it
    plain = replace(report, vote_without_face=False)
    record = json.loads(json.dumps(report_record("x.png", plain, vote_without_face=forced)))
    assert (record["label"], record["verdict"], record["prob_fake"]) == (label, word, p)
    row = csv_row(record)
    assert (row["label"], row["verdict"]) == (label, word)
    # the app's batch CSV and table
    app_row = batch.batch_row("x.png", plain, preset="tiny-random", untrained=untrained, vote_without_face=forced)
    text = list(csv.DictReader(io.StringIO(batch.to_csv([app_row]))))[0]
    assert (text["label"], text["verdict"]) == (label or "", word)
    assert f"<td>{word}</td>" in batch.table_html([app_row])


def test_the_tie_rule_is_stated_once_and_counts_a_tie_as_fake():
    assert "P(fake) >= 0.5" in rule_text(0.5) and "tie" in rule_text(0.5)
    tie = verdict_of(0.5, threshold=0.5, untrained=False, no_face=False)
    assert tie.label == "fake" and "tie" in tie.word and "tie" in tie.reason
    assert verdict_of(0.4, threshold=0.5, untrained=False, no_face=False).word == "real"
    assert verdict_of(0.6, threshold=0.6, untrained=False, no_face=False).word == "fake (tie at 0.6)"


def test_a_small_face_is_in_scope_and_a_model_without_a_face_stream_is_never_out_of_scope(reports):
    small = replace(reports["face"], face=replace(reports["face"].face, mode="small-face"), untrained=False)
    assert small.verdict.label in ("fake", "real")
    streams = {n: s for n, s in reports["cup"].streams.items() if n != "face"}
    no_face_stream = replace(reports["cup"], streams=streams, untrained=False)
    assert no_face_stream.verdict.label in ("fake", "real")


def test_the_cli_flag_gives_the_vote_without_a_face(capsys, monkeypatch):
    from forensic.pipeline import flow

    real = flow.assemble
    monkeypatch.setattr(flow, "assemble", lambda *a, **k: replace(real(*a, **k), untrained=False))  # as if trained
    for flag, label, word in (((), None, NO_FACE), (("--vote-without-face",), "x", "x")):
        assert main(["predict", str(CUP), "--preset", "tiny-random", "--no-progress", *flag]) == 0
        record = json.loads(capsys.readouterr().out)
        if label is None:
            assert (record["label"], record["verdict"]) == (None, NO_FACE) and record["prob_fake"] is not None
        else:
            assert record["label"] in ("fake", "real") and record["verdict"].startswith(record["label"])
            assert record["verdict"].endswith("(no face)")
        assert main(["predict", str(CUP), "--preset", "tiny-random", "--no-progress", "--format", "csv", *flag]) == 0
        row = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))[0]
        assert (row["label"] or None, row["verdict"]) == (record["label"], record["verdict"])


def test_explain_writes_the_same_verdict_and_takes_the_flag(capsys, monkeypatch, tmp_path):
    from forensic.pipeline import flow

    real = flow.assemble
    monkeypatch.setattr(flow, "assemble", lambda *a, **k: replace(real(*a, **k), untrained=False))  # as if trained
    for flag, ends in (((), NO_FACE), (("--vote-without-face",), "(no face)")):
        out = tmp_path / f"out{len(flag)}"
        assert main(["explain", str(CUP), "--out", str(out), "--preset", "tiny-random", *flag]) == 0
        record = json.loads((out / "report.json").read_text())
        assert record["verdict"].endswith(ends) and f"({record['verdict']})" in capsys.readouterr().out
