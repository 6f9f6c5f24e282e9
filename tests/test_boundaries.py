"""The layout's rules, read from the imports: which code may import TensorFlow, Keras or Streamlit.

- `cnnlab/model/` answers instantly on the Model page: no TensorFlow or Keras, except `build.py`;
- `cnnlab/data/` is numpy and PIL only; `cnnlab/classroom/` (users, sign-in, the class's rules) has no
  TensorFlow or Keras either;
- `cnnlab/runs/` splits along the process boundary: its server-side modules (`SERVER_SIDE_RUNS`) never
  import TensorFlow or Keras, not even inside a function; the worker side may;
- no core package imports Streamlit (only `cnnlab/ui/` and `app_pages/` do);
- `app_pages/`, `cnnlab/ui/` and `cnnlab/figures/` never import Keras or TensorFlow: what needs a model
  (Grad-CAM, layer probes, the Learn page's model walk) goes through `cnnlab.trained`.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
MACHINE_LEARNING = {"tensorflow", "keras"}
STREAMLIT = {"streamlit", "streamlit_drawable_canvas"}
# The modules of `cnnlab/runs/` the Streamlit server imports: the store and what reads it, the queue, the
# executors and the Ray cluster's server half. The worker side is everything else in `runs/`.
SERVER_SIDE_RUNS = {
    *("store", "records", "reader", "database", "metrics", "artifacts", "statuses", "access", "names"),
    *("fair_queue", "scheduler", "executor", "executor_choice", "job", "live_frames", "best", "compare"),
    *("sweeps", "sweep_plan", "ray_executor", "ray_records", "ray_bundle", "ray_cluster"),
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every module `path` imports, at any depth of the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def forbidden_imports(relative: str) -> set[str]:
    """What the file at `relative` (a path from the repository's root) may not import."""
    if relative.startswith(("app_pages/", "cnnlab/ui/")):
        return MACHINE_LEARNING
    path = PurePosixPath(relative)
    free_of_machine_learning = (
        relative.startswith(("cnnlab/data/", "cnnlab/classroom/", "cnnlab/figures/"))
        or (relative.startswith("cnnlab/model/") and relative != "cnnlab/model/build.py")
        or (path.parent.as_posix() == "cnnlab/runs" and path.stem in SERVER_SIDE_RUNS)
    )
    return STREAMLIT | MACHINE_LEARNING if free_of_machine_learning else STREAMLIT


def broken_rules(path: Path, relative: str) -> set[str]:
    """The packages the file at `path`, placed at `relative` in the repository, imports against the rules."""
    return imported_packages(path) & forbidden_imports(relative)


def python_files() -> list[Path]:
    return sorted([*ROOT.glob("cnnlab/**/*.py"), *ROOT.glob("app_pages/*.py")])


@pytest.mark.parametrize("path", python_files(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_imports_keep_to_the_layout(path: Path) -> None:
    broken = broken_rules(path, path.relative_to(ROOT).as_posix())
    assert not broken, f"{path.relative_to(ROOT)} imports {sorted(broken)}, which its package forbids"


def test_every_server_side_module_exists() -> None:
    assert {path.stem for path in ROOT.glob("cnnlab/runs/*.py")} >= SERVER_SIDE_RUNS


@pytest.mark.parametrize(
    ("relative", "source", "broken"),
    [
        ("cnnlab/runs/training.py", "import streamlit as st\n", {"streamlit"}),
        ("cnnlab/runs/store.py", "from streamlit import cache_data\n", {"streamlit"}),
        ("cnnlab/runs/scheduler.py", "def warm() -> None:\n    import tensorflow\n", {"tensorflow"}),
        ("cnnlab/runs/training.py", "import keras\nimport tensorflow as tf\n", set()),
        ("cnnlab/ui/inspection_view.py", "import streamlit\nfrom keras import Model\n", {"keras"}),
        ("cnnlab/figures/filters.py", "import keras.ops\n", {"keras"}),
        ("cnnlab/model/shapes.py", "import keras\n", {"keras"}),
        ("cnnlab/model/build.py", "import keras\n", set()),
        ("app_pages/model.py", "import streamlit\nimport tensorflow as tf\n", {"tensorflow"}),
    ],
)
def test_the_rules_catch_a_violation(tmp_path: Path, relative: str, source: str, broken: set[str]) -> None:
    """An example module, written under `tmp_path` and judged as if it lived at `relative`."""
    module = tmp_path / "example.py"
    module.write_text(source, encoding="utf-8")
    assert broken_rules(module, relative) == broken


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_imports(path: Path, known: set[str]) -> set[str]:
    """The `cnnlab` modules `path` imports at import time (not inside functions or TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cnnlab"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return found & known


def test_core_modules_import_no_cycle() -> None:
    paths = {module_name(path): path for path in ROOT.glob("cnnlab/**/*.py")}
    graph = {name: core_imports(path, set(paths)) - {name} for name, path in paths.items()}
    graph = {
        name: {target for target in targets if not name.startswith(target + ".")}
        for name, targets in graph.items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
