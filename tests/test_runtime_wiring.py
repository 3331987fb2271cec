"""One RuntimeConfig from the entry points down: the detector, the explanation plan, the CLI and the app."""

from __future__ import annotations

import argparse

import pytest

from forensic.__main__ import main
from forensic.options import add_model_args, runtime_from_args
from forensic.pipeline import Detector
from forensic.runtime import RuntimeConfig, RuntimeConfigError


@pytest.fixture(scope="module")
def detector():
    return Detector.from_runtime(RuntimeConfig(preset="tiny-random", device="cpu", cam_bf16=False))


def test_the_detector_keeps_the_runtime_it_was_given(detector):
    assert detector.preset == "tiny-random" and detector.device.type == "cpu"
    assert detector.runtime.cam_bf16 is False and not detector._forward.compiled


def test_an_unknown_method_is_refused_with_the_registrys_names(detector, astronaut):
    with pytest.raises(ValueError, match="use one of: fast, adaptive, exact, none"):
        detector.analyze(astronaut, explain="gradcam")


def test_a_bad_variable_stops_the_cli_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("FORENSIC_DTYPE", "int8")
    assert main(["predict", "examples/coffee.jpg", "--preset", "tiny-random", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: FORENSIC_DTYPE='int8'") and "\n" not in err


def test_the_app_serves_without_a_detector_when_a_variable_is_bad(monkeypatch):
    import app

    monkeypatch.setenv("FORENSIC_MAX_PIXELS", "lots")
    parser = argparse.ArgumentParser()
    add_model_args(parser)
    with pytest.raises(RuntimeConfigError, match="FORENSIC_MAX_PIXELS"):
        runtime_from_args(parser.parse_args([]))
    served = []
    monkeypatch.setattr(app, "build_demo", lambda detector, error: served.append((detector, error)) or _NoServer())
    assert app.main(["--preset", "tiny-random"]) == 0
    assert served[0][0] is None and "FORENSIC_MAX_PIXELS" in served[0][1] and "restart" in served[0][1]


class _NoServer:
    def launch(self, **kwargs):
        return None


@pytest.mark.slow  # Score-CAM of three streams
def test_explain_prints_each_fast_maps_fidelity(capsys, tmp_path):
    code = main(["explain", "examples/coffee.jpg", "--out", str(tmp_path / "x"), "--preset", "tiny-random", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if "fidelity" in line]
    assert len(lines) == 3 and all("expected Pearson" in line and "channels checked" in line for line in lines)


def test_an_unknown_cam_method_is_refused_at_parse_time(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["explain", "examples/coffee.jpg", "--out", "/tmp/unused", "--cam", "slow"])
    assert exit_.value.code == 2 and "use one of: fast, adaptive, exact" in capsys.readouterr().err


def test_predict_training_and_analysis_read_the_same_files():
    import forensic._cli._common as cli
    import forensic.data

    assert cli.IMAGE_EXTENSIONS is forensic.data.IMAGE_EXTENSIONS
