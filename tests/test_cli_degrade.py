"""``python -m forensic degrade``, run in-process through the dispatcher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensic.__main__ import main
from forensic.degrade import degrade, psnr


@pytest.fixture()
def png(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(astronaut[::4, ::4]).save(path)  # 128x128
    return path


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_spec_writes_the_degraded_image_and_a_summary(png: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    assert main(["degrade", str(png), str(out), "--spec", "jpeg:quality=20;gblur:sigma=1", "--seed", "4"]) == 0
    written, original = _read(out), _read(png)
    assert written.shape == original.shape
    assert np.array_equal(written, degrade(original, "jpeg:quality=20;gblur:sigma=1", seed=4))  # PNG is lossless
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "jpeg:quality=20" in err and "gblur:sigma=1" in err and f"PSNR {psnr(original, written):.2f} dB" in err


def test_compound_to_jpeg_is_seeded(png: Path, tmp_path: Path, capsys) -> None:
    a, b, c = (tmp_path / f"{n}.jpg" for n in "abc")
    assert main(["degrade", str(png), str(a), "--compound", "1", "--seed", "3"]) == 0
    assert main(["degrade", str(png), str(b), "--compound", "1", "--seed", "3"]) == 0
    assert main(["degrade", str(png), str(c), "--compound", "1", "--seed", "4"]) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    with Image.open(a) as im:
        assert im.format == "JPEG" and im.size == (128, 128)
    assert "PSNR" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--spec", "blurr:sigma=2"], "unknown operation or preset 'blurr'"),
        (["--spec", "jpeg:quality=500"], "must be int 1..100"),
        (["--compound", "1.5"], "--compound must be in [0, 1]"),
        ([], "give --spec SPEC or --compound STRENGTH"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(png: Path, tmp_path: Path, capsys, args: list[str], message: str) -> None:
    out = tmp_path / "out.png"
    assert main(["degrade", str(png), str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_unreadable_input_and_unknown_output_format_exit_2(png: Path, tmp_path: Path, capsys) -> None:
    assert main(["degrade", str(tmp_path / "missing.png"), str(tmp_path / "o.png"), "--spec", "jpeg-q20"]) == 2
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert main(["degrade", str(not_an_image), str(tmp_path / "o.png"), "--spec", "jpeg-q20"]) == 2
    assert main(["degrade", str(png), str(tmp_path / "o.xyz"), "--spec", "jpeg-q20"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "Traceback" not in err


def test_list_and_help_show_ops_params_and_presets(capsys) -> None:
    assert main(["degrade", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "motion-blur" in listed and "length: int" in listed and "df-blur-3" in listed and "ffpp-c40" in listed
    with pytest.raises(SystemExit) as info:
        main(["degrade", "--help"])
    assert info.value.code == 0
    helped = capsys.readouterr().out
    assert "OPERATIONS" in helped and "quality: int 1..100" in helped and "df-{" in helped
