"""``python -m analysis`` end to end with the tiny-random preset: CSVs, figures, resume, HTML in Chromium.

One ``report`` run (module fixture) on 6 generated images with a reduced protocol feeds every test;
the browser test is skipped, with the reason printed, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from analysis import cam_drift, complementarity, entropy, robustness, stability
from analysis.__main__ import main
from analysis.tables import read_csv
from tests.analysis_helpers import write_toy_folder
from forensic.toy import ARTIFACT_BOX

pytestmark = pytest.mark.slow  # one shared report run on a toy set (11-40 s)

STREAMS = ["texture", "face", "fusion"]
BOX = ",".join(str(v) for v in ARTIFACT_BOX)
SCREENSHOT_COPY = Path("/tmp/analysis_report_screenshot.png")

# the columns documented in the README (a change here is a change of the public format)
DOCUMENTED = {
    "robustness": "family,level,strength,spec,stream,n,n_real,n_fake,errors,auc,ap,accuracy,eer,ece",
    "stability": "family,level,strength,stream,n,cosine_mean,cosine_std,cosine_median,cosine_q25,cosine_q75,cosine_min",
    "entropy": "family,level,strength,stream,measure,n,max_nats,nats_mean,nats_std,nats_median,nats_q25,nats_q75,normalized_mean,normalized_std",
    "cam_drift": "family,level,strength,stream,method,n,n_box,mass_in_box_mean,mass_in_box_std,background_mass_mean,box_fraction_mean,"
    "box_lift_mean,centroid_shift_mean,centroid_shift_std,clean_corr_mean,clean_corr_std,cam_entropy_mean,cam_entropy_std,"
    "cam_entropy_normalized_mean,prob_fake_mean",
    "complementarity": "stream_a,stream_b,n,error_rate_a,error_rate_b,both_wrong,either_wrong,disagreement,jaccard,error_corr,yule_q,"
    "prob_corr,feature_cosine_mean,feature_cosine_std,n_cam,cam_cosine_mean,cam_cosine_std",
}


def _args(study, data, out, *extra):
    return [study, "--data", str(data), "--out", str(out), "--preset", "tiny-random", "--device", "cpu",
            "--limit", "6", "--no-face-retries", "--no-progress", *extra]


REPORT_EXTRA = ("--families", "jpeg,df-blur", "--levels", "q100,q5,0,3", "--strengths", "0,1",
                "--cam-limit", "2", "--cam-groups", "2", "--box", BOX, "--figure-images", "1")


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    return write_toy_folder(tmp_path_factory.mktemp("analysis_toy"), 8, seed=3)


@pytest.fixture(scope="module")
def report_run(toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis_out")
    assert main(_args("report", toy_data, out, *REPORT_EXTRA)) == 0
    return out


def _floats(rows, column):
    return [float(r[column]) for r in rows if r[column] != ""]


def test_report_writes_every_csv_with_the_documented_columns(report_run):
    modules = {"robustness": robustness, "stability": stability, "entropy": entropy, "cam_drift": cam_drift, "complementarity": complementarity}
    for name, module in modules.items():
        header = (report_run / f"{name}.csv").read_text().splitlines()[0]
        assert header == DOCUMENTED[name] == ",".join(module.COLUMNS)
    for fig in ("robustness_auc", "robustness_ece", "stability", "entropy", "cam_drift", "cam_drift_overlays_compound", "complementarity"):
        png = report_run / "figures" / f"{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = json.loads((report_run / "run.json").read_text())
    assert run["model"]["preset"] == "tiny-random" and run["model"]["untrained"] is True


def test_robustness_csv_values(report_run):
    rows = read_csv(report_run / "robustness.csv")
    # jpeg q100, q5 and df-blur 0, 3; three streams and the vote each
    assert len(rows) == 4 * 4
    assert {(r["family"], r["level"]) for r in rows} == {("jpeg", "q100"), ("jpeg", "q5"), ("df-blur", "0"), ("df-blur", "3")}
    assert {r["stream"] for r in rows} == {*STREAMS, "vote"}
    for r in rows:
        assert (int(r["n"]), int(r["n_real"]), int(r["n_fake"]), int(r["errors"])) == (6, 3, 3, 0)
        for metric in ("auc", "ap", "accuracy", "eer", "ece"):
            assert 0.0 <= float(r[metric]) <= 1.0
    clean = [r for r in rows if r["level"] == "0"]
    assert {r["spec"] for r in clean} == {"none"}
    assert float(next(r for r in rows if r["level"] == "q5")["strength"]) == 1.0


def test_stability_is_one_at_strength_zero_and_a_cosine_elsewhere(report_run):
    rows = read_csv(report_run / "stability.csv")
    assert [(r["strength"], r["stream"]) for r in rows] == [("0", s) for s in STREAMS] + [("1", s) for s in STREAMS]
    for r in rows:
        assert int(r["n"]) == 6
        if r["strength"] == "0":
            assert float(r["cosine_mean"]) == pytest.approx(1.0, abs=1e-6) and float(r["cosine_min"]) == pytest.approx(1.0, abs=1e-6)
        else:
            assert -1.0 <= float(r["cosine_min"]) <= float(r["cosine_mean"]) <= 1.0
            assert float(r["cosine_mean"]) < 0.9999  # the compound engine at strength 1 moves the features


def test_entropy_lies_between_zero_and_ln_n(report_run):
    rows = read_csv(report_run / "entropy.csv")
    assert {r["measure"] for r in rows} == {"attention", "cam"}
    for r in rows:
        expected_n = 6 if r["measure"] == "attention" else 2  # Score-CAM on --cam-limit images
        assert int(r["n"]) == expected_n
        ln_n = math.log(16 * 16) if r["stream"] == "fusion" else math.log(18 * 18)
        assert float(r["max_nats"]) == pytest.approx(ln_n)
        assert 0.0 <= float(r["nats_q25"]) <= float(r["nats_mean"]) <= ln_n + 1e-9 or 0.0 <= float(r["nats_mean"]) <= ln_n + 1e-9
        assert 0.0 <= float(r["normalized_mean"]) <= 1.0
        assert float(r["nats_mean"]) / ln_n == pytest.approx(float(r["normalized_mean"]), abs=1e-4)


def test_cam_drift_values(report_run):
    rows = read_csv(report_run / "cam_drift.csv")
    assert len(rows) == 2 * 3
    box_share = (ARTIFACT_BOX[2] - ARTIFACT_BOX[0]) * (ARTIFACT_BOX[3] - ARTIFACT_BOX[1]) / 256**2
    for r in rows:
        assert int(r["n"]) == 2 and int(r["n_box"]) == 2 and r["method"] == "fast/g2"
        assert 0.0 <= float(r["mass_in_box_mean"]) <= 1.0
        assert float(r["background_mass_mean"]) == pytest.approx(1.0 - float(r["mass_in_box_mean"]), abs=1e-5)
        assert float(r["box_fraction_mean"]) == pytest.approx(box_share, abs=0.01)
        assert 0.0 <= float(r["cam_entropy_normalized_mean"]) <= 1.0
        assert -1.0 <= float(r["clean_corr_mean"]) <= 1.0
        assert 0.0 <= float(r["centroid_shift_mean"]) <= math.sqrt(2)
        if r["strength"] == "0":  # the clean map against itself
            assert float(r["clean_corr_mean"]) == pytest.approx(1.0) and float(r["centroid_shift_mean"]) == pytest.approx(0.0)


def test_complementarity_values(report_run):
    rows = read_csv(report_run / "complementarity.csv")
    assert [(r["stream_a"], r["stream_b"]) for r in rows] == [("texture", "face"), ("texture", "fusion"), ("face", "fusion")]
    for r in rows:
        assert int(r["n"]) == 6 and int(r["n_cam"]) == 2
        for c in ("feature_cosine_mean", "cam_cosine_mean", "prob_corr"):
            assert -1.0 <= float(r[c]) <= 1.0
        for c in ("error_rate_a", "both_wrong", "either_wrong", "disagreement"):
            assert 0.0 <= float(r[c]) <= 1.0
        assert float(r["both_wrong"]) <= min(float(r["error_rate_a"]), float(r["error_rate_b"])) + 1e-9
        assert float(r["either_wrong"]) == pytest.approx(float(r["both_wrong"]) + float(r["disagreement"]), abs=1e-5)


def test_rerun_resumes_without_recomputing(report_run, toy_data, capsys):
    records = report_run / "records" / "passes.jsonl"
    before = records.read_text()
    assert main(_args("robustness", toy_data, report_run, "--families", "jpeg,df-blur", "--levels", "q100,q5,0,3")) == 0
    assert "0 per-image evaluations computed now, 24 reused" in capsys.readouterr().out
    assert records.read_text() == before
    cams = (report_run / "records" / "cams.jsonl").read_text()
    assert main(_args("cam-drift", toy_data, report_run, "--strengths", "0,1", "--cam-limit", "2", "--cam-groups", "2", "--box", BOX)) == 0
    assert (report_run / "records" / "cams.jsonl").read_text() == cams


def test_cli_errors_are_one_line_and_exit_2(report_run, toy_data, tmp_path, capsys):
    assert main(_args("robustness", tmp_path / "missing", tmp_path / "o")) == 2
    assert "no such data folder" in capsys.readouterr().err
    assert main(_args("robustness", toy_data, tmp_path / "o", "--families", "jpg")) == 2
    assert "unknown degradation family 'jpg'" in capsys.readouterr().err
    assert main(_args("stability", toy_data, tmp_path / "o", "--families", "df-blur")) == 2
    assert "valid: jpeg" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_args("robustness", toy_data, tmp_path / "o", "--cam", "fast"))  # robustness has no Score-CAM option


def test_records_of_another_model_are_refused(report_run, toy_data, tmp_path):
    import torch

    from analysis import Analysis, AnalysisError, AnalysisOptions
    from forensic.pipeline import Detector

    out = tmp_path / "copy"
    shutil.copytree(report_run, out)
    det = Detector.from_preset("tiny-random", device="cpu")
    with torch.no_grad():
        next(det.model.heads["texture"].parameters()).add_(1.0)
    with pytest.raises(AnalysisError, match="another model"):
        Analysis(det, AnalysisOptions(data=toy_data, out=out, limit=6))
    Analysis(det, AnalysisOptions(data=toy_data, out=out, limit=6, fresh=True))  # --fresh starts over
    assert not (out / "records").exists()


# ------------------------------------------------------------------------------ the page in Chromium
@pytest.mark.browser
def test_report_html_shows_its_figures_in_chromium(report_run, browser, tmp_path):
    html = (report_run / "report.html").read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    n_figures = html.count("data:image/png;base64,")
    assert n_figures == 10  # 5 robustness metrics, stability, entropy, drift curves, overlays, complementarity
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((report_run / "report.html").resolve().as_uri())
    page.wait_for_load_state("load")
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width])")
    assert len(images) == n_figures
    assert all(done and w > 100 and h > 100 and shown > 100 for done, w, h, shown in images), images
    text = page.inner_text("body")
    assert "UNTRAINED WEIGHTS" in text
    for title in ("Robustness to degradations", "Feature stability", "Attention entropy", "Score-CAM drift", "Complementarity of the streams"):
        assert title in text
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    assert not errors
    assert shot.stat().st_size > 50_000
    shutil.copy(shot, SCREENSHOT_COPY)
    print(f"screenshot: {SCREENSHOT_COPY}")
