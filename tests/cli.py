"""Running the ``forensic`` command line inside a test."""

from __future__ import annotations

from typing import Any

import pytest

from forensic.__main__ import main

__all__ = ["run_cli"]


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``python -m forensic ARGV`` in-process: the exit code, stdout and stderr (read from ``capsys``)."""
    try:
        code = main(list(argv))
    except KeyboardInterrupt:  # a simulated Ctrl-C that escaped would stop the whole pytest session
        pytest.fail("KeyboardInterrupt escaped from the command (a traceback for the user)")
    out, err = capsys.readouterr()
    return code, out, err
