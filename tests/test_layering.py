"""Imports flow one way (DESIGN.md section 1): the library never pulls in the trainer, the tests or
the UI; ``analysis`` reads data through the library, not through ``train``; ``bench`` builds its toy
data with :mod:`forensic.toy`, not with the tests' helpers.

Two checks: every import statement in the sources (also those inside functions, which only run
later), and what a fresh interpreter has loaded after importing a package (so modules other tests
imported do not hide a wrong-way import).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UI_AND_ABOVE = {"gradio", "webapp", "app"}


def _imported_roots(package: str) -> dict[str, set[str]]:
    """``{top-level module: {files importing it}}`` over every ``import`` in ``package``'s sources."""
    roots: dict[str, set[str]] = {}
    for file in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                roots.setdefault(name.split(".")[0], set()).add(file.relative_to(ROOT).as_posix())
    return roots


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("forensic", {"train", "tests", "analysis"} | UI_AND_ABOVE),
        ("analysis", {"train", "tests"} | UI_AND_ABOVE),
        ("bench", {"tests"}),
    ],
    ids=["forensic", "analysis", "bench"],
)
def test_no_import_statement_points_the_wrong_way(package, forbidden):
    roots = _imported_roots(package)
    assert "numpy" in roots  # the scan sees the package's imports
    wrong = {name: sorted(files) for name, files in roots.items() if name in forbidden}
    assert not wrong, f"{package}/ imports {wrong}"


def _top_level_packages_after(*modules: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after a fresh interpreter imports ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "modules, forbidden",
    [
        (("forensic",), {"train", "tests", "analysis"} | UI_AND_ABOVE),
        (("forensic.data", "forensic.toy"), {"train", "tests", "analysis"} | UI_AND_ABOVE),
        pytest.param(
            ("analysis", "analysis.data", "analysis.__main__"),
            {"train", "tests"} | UI_AND_ABOVE,
            marks=pytest.mark.slow,  # imports the whole pipeline: ~10 s on 2 busy cores
        ),
    ],
    ids=["forensic", "forensic-data-and-toy", "analysis"],
)
def test_importing_loads_nothing_above(modules, forbidden):
    loaded = _top_level_packages_after(*modules)
    assert {name.split(".")[0] for name in modules} <= loaded  # the import happened
    assert not loaded & forbidden, f"importing {', '.join(modules)} also loaded {sorted(loaded & forbidden)}"
