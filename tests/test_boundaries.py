"""The layout's rules, read from the imports: which code may import TensorFlow, Keras or Streamlit.

- `cnnlab/model/` answers instantly on the Model page: no TensorFlow or Keras, except `build.py`;
- `cnnlab/data/` is numpy and PIL only; `cnnlab/classroom/` (users, sign-in, the class's rules) has no
  TensorFlow or Keras either;
- no core package imports Streamlit (only `cnnlab/ui/` and `app_pages/` do);
- `app_pages/` never imports Keras or TensorFlow: the pages ask `cnnlab` for what they need;
- `cnnlab/ui/` never builds a `keras.Model` itself: Grad-CAM, layer probes and the Learn page's
  model walk go through `cnnlab.trained.inspection`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MACHINE_LEARNING = {"tensorflow", "keras"}
STREAMLIT = {"streamlit", "streamlit_drawable_canvas"}


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every module `path` imports, at any depth of the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def forbidden_imports(path: Path) -> set[str]:
    """What `path` may not import, by where it lives."""
    relative = path.relative_to(ROOT).as_posix()
    if relative.startswith("app_pages/"):
        return MACHINE_LEARNING
    if relative.startswith("cnnlab/ui/"):
        return set()
    forbidden = set(STREAMLIT)
    if relative.startswith(("cnnlab/data/", "cnnlab/classroom/")) or (
        relative.startswith("cnnlab/model/") and relative != "cnnlab/model/build.py"
    ):
        forbidden |= MACHINE_LEARNING
    return forbidden


def python_files() -> list[Path]:
    return sorted([*ROOT.glob("cnnlab/**/*.py"), *ROOT.glob("app_pages/*.py")])


@pytest.mark.parametrize("path", python_files(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_imports_keep_to_the_layout(path: Path) -> None:
    broken = imported_packages(path) & forbidden_imports(path)
    assert not broken, f"{path.relative_to(ROOT)} imports {sorted(broken)}, which its package forbids"


def builds_keras_models(path: Path) -> list[int]:
    """Lines of `path` that call `keras.Model(...)`, `keras.Sequential(...)` or `keras.models.*`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in {"keras.Model", "keras.Sequential", "tf.keras.Model"} or name.startswith(
                "keras.models."
            ):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", sorted(ROOT.glob("cnnlab/ui/*.py")), ids=lambda path: path.name)
def test_ui_builds_no_keras_model(path: Path) -> None:
    assert not builds_keras_models(path), (
        f"{path.name} builds a Keras model at lines {builds_keras_models(path)}; use cnnlab.trained.inspection"
    )


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    """The checks above fail on a runs module that imports streamlit and a ui module building a model."""
    runs_module = ROOT / "cnnlab" / "runs" / "_violation_example.py"
    ui_module = tmp_path / "view.py"
    ui_module.write_text("import keras\nmodel = keras.Model(inputs, outputs)\n")
    try:
        runs_module.write_text("import streamlit as st\n")
        assert imported_packages(runs_module) & forbidden_imports(runs_module) == {"streamlit"}
    finally:
        runs_module.unlink()
    assert builds_keras_models(ui_module) == [2]


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
