"""Imports flow one way (DESIGN.md section 1): the library never pulls in the trainer, the tests or
the UI; ``analysis`` reads data through the library, not through ``train``; ``bench`` builds its toy
data with :mod:`forensic.toy`, not with the tests' helpers.

Two checks: every import statement in the sources (also those inside functions, which only run
later), and what a fresh interpreter has loaded after importing a package (so modules other tests
imported do not hide a wrong-way import). And among the project's own modules (forensic, train,
analysis, webapp, app.py): no import cycle, and no ``_private`` name imported from another module;
each checker is shown to catch a planted example.
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


# --- The import graph of the project's own modules: cycles and private names ------------------------
#
# Small reusable functions: ``import_edges`` builds the graph (every import statement counts, also
# those inside functions or under ``if TYPE_CHECKING``), ``import_cycles`` finds its strongly
# connected components, ``private_imports`` lists ``_private`` names taken from another module.

PROJECT = ("forensic", "train", "analysis", "webapp", "app")


def project_modules(root: Path, packages=PROJECT) -> dict[str, Path]:
    """``{dotted module name: file}`` for each package folder (or single ``<name>.py``) under ``root``."""
    modules: dict[str, Path] = {}
    for package in packages:
        if (root / package).is_dir():
            files = sorted((root / package).rglob("*.py"))
        elif (root / f"{package}.py").is_file():
            files = [root / f"{package}.py"]
        else:
            continue
        for file in files:
            parts = list(file.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = file
    return modules


def _import_base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement reads from (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _owner(name: str, modules) -> str | None:
    """The project module ``name`` is, or lives in (``pkg.mod.attr`` -> ``pkg.mod``); None outside."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def iter_imports(root: Path, packages=PROJECT):
    """Yields ``(module, file, node, targets)`` for each import statement in the project: ``targets``
    are the project modules the statement makes Python run, and for each name imported the module
    it is taken from (``from pkg import name`` means ``pkg.name`` when that is a module).

    A module's own ancestors are left out unless a name is taken from one: Python imports a
    package before its submodules anyway, so that edge alone is no dependency.
    """
    modules = project_modules(root, packages)
    for module, file in modules.items():
        is_package = file.name == "__init__.py"
        ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), filename=str(file))):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
                base = None
            elif isinstance(node, ast.ImportFrom):
                base = _import_base(module, is_package, node)
                named = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            targets: set[str] = set()
            for name in named + ([base] if base else []):
                owner = _owner(name, modules)
                while owner:  # the module and each package above it that Python runs first
                    if owner not in ancestors or (name in named and owner == _owner(name, modules)):
                        targets.add(owner)
                    owner = _owner(owner.rpartition(".")[0], modules)
            targets.discard(module)
            yield module, file, node, targets


def import_edges(root: Path, packages=PROJECT) -> dict[str, set[str]]:
    """``{module: {project modules it imports}}``, every module of ``packages`` a key."""
    edges: dict[str, set[str]] = {module: set() for module in project_modules(root, packages)}
    for module, _file, _node, targets in iter_imports(root, packages):
        edges[module] |= targets
    return edges


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``edges``: each strongly connected component of more than one module
    (Tarjan's algorithm, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def private_imports(root: Path, packages=PROJECT) -> list[str]:
    """``file:line imports _name from module`` for each ``_private`` name (one leading underscore,
    not a dunder) that a project module imports from another project module."""
    modules = project_modules(root, packages)
    found = []
    for module, file, node, _targets in iter_imports(root, packages):
        if isinstance(node, ast.ImportFrom):
            base = _import_base(module, file.name == "__init__.py", node)
            names = [(a.name, base) for a in node.names]
        else:  # import a.b._c: the name _c, taken from a.b
            parts = [alias.name.split(".") for alias in node.names]
            names = [(dotted[i], ".".join(dotted[:i])) for dotted in parts for i in range(1, len(dotted))]
        for name, source in names:
            if name.startswith("_") and not name.startswith("__") and _owner(source, modules) not in (None, module):
                found.append(f"{file.relative_to(root).as_posix()}:{node.lineno} imports {name} from {source}")
    return found


def test_no_import_cycles_among_project_modules():
    edges = import_edges(ROOT)
    assert len(edges) > 50 and "forensic.config" in edges["forensic.presets"]  # the scan sees the project and its imports
    cycles = import_cycles(edges)
    assert not cycles, "import cycles (move the shared types down a layer): " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_private_name_imported_from_another_module():
    found = private_imports(ROOT)
    assert not found, "make these names public where they live, or move them: " + "; ".join(found)


def _plant(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_cycle_checker_reports_a_cycle_hidden_in_functions(tmp_path):
    _plant(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from .b import g\n    return g()\n",
        "pkg/b.py": "def g():\n    import pkg.a\n    return pkg.a\n",
        "pkg/c.py": "from pkg import a\n",  # depends on the cycle, is not in it
        "pkg/sub/__init__.py": "from .d import D\n",
        "pkg/sub/d.py": "from .. import c\nD = 1\n",
    })
    edges = import_edges(tmp_path, ("pkg",))
    assert edges["pkg.c"] == {"pkg.a"}
    assert edges["pkg.sub.d"] == {"pkg.c"}
    assert import_cycles(edges) == [["pkg.a", "pkg.b"]]


def test_the_cycle_checker_sees_a_package_that_imports_its_importer(tmp_path):
    _plant(tmp_path, {
        "pkg/__init__.py": "from .core import Thing\n",
        "pkg/core.py": "class Thing: ...\n",
        "pkg/extra.py": "from . import Thing\n",  # a name from the package: its __init__ runs
        "app.py": "import pkg.extra\n",
        "other/__init__.py": "",
        "other/m.py": "def f():\n    from pkg import core\n",
    })
    edges = import_edges(tmp_path, ("pkg", "other", "app"))
    assert edges["app"] == {"pkg", "pkg.extra"}
    assert edges["pkg.extra"] == {"pkg"}
    assert edges["other.m"] == {"pkg", "pkg.core"}
    assert import_cycles(edges) == []
    (tmp_path / "pkg/core.py").write_text("class Thing: ...\n\ndef later():\n    from .extra import Thing\n")
    assert import_cycles(import_edges(tmp_path, ("pkg", "other", "app"))) == [["pkg", "pkg.core", "pkg.extra"]]


def test_the_private_import_checker_reports_a_planted_import(tmp_path):
    _plant(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "_secret = 1\n__version__ = '1'\n\ndef f():\n    return _secret\n",
        "pkg/_hidden.py": "",
        "pkg/b.py": "import os\nfrom os import _exit\nfrom .a import __version__, f\n\n\ndef g():\n    from .a import _secret\n",
        "app.py": "import pkg._hidden\n",
    })
    assert private_imports(tmp_path, ("pkg", "app")) == [
        "pkg/b.py:7 imports _secret from pkg.a",
        "app.py:1 imports _hidden from pkg",
    ]


# ------------------------------------------------------------------------------ the pipeline owns its stages
PIPELINE = "forensic.pipeline"

#: the calls that make up a stage's job, and who besides the pipeline may make them: the module
#: that defines the call, and the trainer and the explanations, which run the model themselves
#: (training inputs cut by inference's own preprocessing, the faces cached for training, training
#: steps, the vote of a student's probabilities, masked passes)
STAGE_CALLS = {
    "prepare_inputs": ("forensic.streams", "train"),  # prepare
    "analyze_batch": ("forensic.faces", "train"),  # locate
    "forward_streams": ("forensic.model", "forensic.compiled", "forensic.explain", "train"),  # forward
    "vote": ("forensic.ensemble", "train"),  # assemble
    "stability": (),  # assemble: clean vs degraded features
    "explain_report": ("forensic.explain",),  # explain
}


def stage_violations(root: Path, packages=PROJECT, pipeline: str = PIPELINE, calls=None) -> list[str]:
    """Where a module outside ``pipeline`` imports one of its stage modules (only the package's
    ``__all__`` is its API) or makes a stage's call itself (:data:`STAGE_CALLS`)."""
    calls = STAGE_CALLS if calls is None else calls
    found = []
    inside = (lambda m: m == pipeline or m.startswith(pipeline + "."))
    for module, file, node, targets in iter_imports(root, packages):
        if not inside(module):
            for target in sorted(t for t in targets if t.startswith(pipeline + ".")):
                found.append(f"{file.relative_to(root).as_posix()}:{node.lineno} imports the stage module {target}")
    for module, file in project_modules(root, packages).items():
        if inside(module):
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), filename=str(file))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            allowed = calls.get(name)
            if allowed is not None and not any(module == a or module.startswith(a + ".") for a in allowed):
                found.append(f"{file.relative_to(root).as_posix()}:{node.lineno} calls {name}(), a stage's job")
    return found


def test_no_stage_is_reimplemented_or_reached_into_outside_the_pipeline():
    assert (ROOT / "forensic" / "pipeline" / "flow.py").is_file()  # the package the rule protects
    found = stage_violations(ROOT)
    assert not found, "submit work items to forensic.pipeline instead: " + "; ".join(found)


def test_the_stage_checker_reports_planted_violations(tmp_path):
    _plant(tmp_path, {
        "lib/__init__.py": "",
        "lib/pipeline/__init__.py": "from .stage import assemble\n__all__ = ['assemble']\n",
        "lib/pipeline/stage.py": "def stability(a, b):\n    return 1.0\n\ndef assemble():\n    return stability(1, 2)\n",
        "lib/good.py": "from lib.pipeline import assemble\n\ndef f():\n    return assemble()\n",
        "lib/reach.py": "def f():\n    from lib.pipeline.stage import assemble\n    return assemble()\n",
        "lib/again.py": "import numpy as np\n\ndef mine(a, b):\n    return stability(a, b)\n",
        "lib/model.py": "def vote(p):\n    return p\n\ndef g():\n    return vote(1)\n",
        "lib/user.py": "from . import model\n\ndef h():\n    return model.vote(2)\n",
    })
    found = stage_violations(tmp_path, ("lib",), pipeline="lib.pipeline", calls={"stability": (), "vote": ("lib.model",)})
    assert found == [
        "lib/reach.py:2 imports the stage module lib.pipeline.stage",
        "lib/again.py:4 calls stability(), a stage's job",
        "lib/user.py:4 calls vote(), a stage's job",
    ]
