"""The layout's rules, read from the folders: what each package of the core may import.

A module's package is its folder (`cnnlab/runs/worker/training.py` is in `cnnlab.runs.worker`). Each
package has a rule in `RULES`: the `cnnlab` packages it may import and the heavy libraries it may
not, checked on every import at any depth of the file (a function-level `import keras` counts).
Module-level imports between packages must also form no cycle (`test_packages_import_no_cycle`).

The server side (the store, the queue, the views, the pages) never imports TensorFlow or Keras; the
worker side (`cnnlab/runs/worker/`, `cnnlab/trained/`, `cnnlab/model/build.py`) may. Only
`cnnlab/ui/` and `app_pages/` import Streamlit.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
MACHINE_LEARNING = frozenset({"tensorflow", "keras"})
STREAMLIT = frozenset({"streamlit", "streamlit_drawable_canvas"})
RAY = frozenset({"ray"})
SERVER_ONLY = MACHINE_LEARNING | STREAMLIT | RAY


@dataclass(frozen=True)
class Rule:
    """What the modules of one package may import: `cnnlab` packages allowed, libraries forbidden."""

    allowed: frozenset[str]
    forbidden: frozenset[str]


def rule(allowed: str, forbidden: frozenset[str]) -> Rule:
    return Rule(frozenset(allowed.split()), forbidden)


CORE = "cnnlab cnnlab.model cnnlab.data"
STORE = f"{CORE} cnnlab.store"
# The pages may use everything the server has; never the worker, the Ray bridge or the CLI.
SERVER = f"{STORE} cnnlab.lesson cnnlab.figures cnnlab.classroom cnnlab.trained cnnlab.runs.queue cnnlab.runs.views"
UI = f"{SERVER} cnnlab.ui cnnlab.ui.session cnnlab.ui.cache cnnlab.ui.widgets cnnlab.ui.stream"
RULES: dict[str, Rule] = {
    # errors, specs, share: the settings every other package speaks.
    "cnnlab": rule("", SERVER_ONLY),
    "cnnlab.data": rule("cnnlab", SERVER_ONLY),
    "cnnlab.model": rule("cnnlab cnnlab.data", SERVER_ONLY),
    "cnnlab.lesson": rule(CORE, SERVER_ONLY),
    # The one place with SQL.
    "cnnlab.store": rule(CORE, SERVER_ONLY),
    "cnnlab.runs.views": rule(STORE, SERVER_ONLY),
    # The queue starts the executor `$CNNLAB_EXECUTOR` names; Ray's is imported only when chosen.
    "cnnlab.runs.queue": rule(f"{STORE} cnnlab.runs.ray", MACHINE_LEARNING | STREAMLIT),
    "cnnlab.classroom": rule(f"{STORE} cnnlab.runs.queue", SERVER_ONLY),
    "cnnlab.trained": rule(STORE, STREAMLIT | RAY),
    "cnnlab.figures": rule(
        f"{STORE} cnnlab.lesson cnnlab.trained cnnlab.runs.queue cnnlab.runs.views", SERVER_ONLY
    ),
    "cnnlab.runs.worker": rule(
        f"{STORE} cnnlab.trained cnnlab.runs.queue cnnlab.runs.views", STREAMLIT | RAY
    ),
    "cnnlab.runs.ray": rule(f"{STORE} cnnlab.runs.queue cnnlab.runs.worker", MACHINE_LEARNING | STREAMLIT),
    "cnnlab.cli": rule(f"{SERVER} cnnlab.runs.worker", STREAMLIT | RAY),
    "cnnlab.ui": rule(UI, MACHINE_LEARNING | RAY),
    "cnnlab.ui.session": rule(f"{SERVER} cnnlab.ui.session", MACHINE_LEARNING | RAY),
    "cnnlab.ui.cache": rule(f"{SERVER} cnnlab.ui cnnlab.ui.session", MACHINE_LEARNING | RAY),
    "cnnlab.ui.widgets": rule(UI, MACHINE_LEARNING | RAY),
    # The live streams: their routes, the watchers that read the store for them, the chart that follows one.
    "cnnlab.ui.stream": rule(f"{SERVER} cnnlab.ui.stream", MACHINE_LEARNING | RAY),
    "app_pages": rule(UI, MACHINE_LEARNING | RAY),
    # Packages that hold nothing but their sub-packages.
    "cnnlab.runs": rule("", SERVER_ONLY),
    "cnnlab.ui.pages": rule("", SERVER_ONLY),
}
# Files whose rule is not their folder's: the one module of `model/` that builds Keras models, the
# remote half of the Ray bridge (it runs a worker on a node), and `python -m cnnlab`, the CLI's entry.
FILE_RULES = {
    "cnnlab/model/build.py": rule("cnnlab cnnlab.data cnnlab.model", STREAMLIT | RAY),
    "cnnlab/runs/ray/remote.py": rule(
        f"{STORE} cnnlab.runs.queue cnnlab.runs.worker cnnlab.runs.ray", MACHINE_LEARNING | STREAMLIT
    ),
    "cnnlab/__main__.py": rule("cnnlab.cli", SERVER_ONLY),
}
ENTRY = "cnnlab/__main__.py"  # part of the CLI, though it must live at the package's top
PAGE_FOLDERS = "cnnlab.ui.pages."


def package_of(relative: str) -> str:
    """The package of the file at `relative` (a path from the repository's root): its folder."""
    if relative == ENTRY:
        return "cnnlab.cli"
    return ".".join(PurePosixPath(relative).parent.parts)


def rule_for(relative: str) -> Rule:
    """The rule of a file: its own (`FILE_RULES`), else its folder's. A page's folder
    (`cnnlab/ui/pages/train/`) and its script (`app_pages/train.py`) may use what the shared UI
    packages may, and that folder."""
    if relative in FILE_RULES:
        return FILE_RULES[relative]
    package = package_of(relative)
    shared = RULES["cnnlab.ui.widgets"]
    if package.startswith(PAGE_FOLDERS):
        return Rule(shared.allowed | {package}, shared.forbidden)
    if package == "app_pages":
        return Rule(shared.allowed | {PAGE_FOLDERS + PurePosixPath(relative).stem}, shared.forbidden)
    return RULES[package]


def target_package(module: str) -> str:
    """The package (folder) of an imported `cnnlab` module or package."""
    path = ROOT / module.replace(".", "/")
    if path.is_dir():
        return module
    if path.with_suffix(".py").exists():
        return module.rpartition(".")[0]
    return target_package(module.rpartition(".")[0])  # `from cnnlab.store.records import RunRecord`


@dataclass(frozen=True)
class Imports:
    """What one file imports: top-level library names and `cnnlab` packages, at any depth or at module level."""

    libraries: frozenset[str]
    packages: frozenset[str]
    module_level_packages: frozenset[str]


def imports_of(source: str) -> Imports:
    tree = ast.parse(source)
    module_level = set(tree.body)
    libraries: set[str] = set()
    packages: set[str] = set()
    top: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
        for target in targets:
            libraries.add(target.split(".")[0])
            if target.startswith("cnnlab"):
                found = target_package(target)
                packages.add(found)
                if node in module_level:
                    top.add(found)
    return Imports(frozenset(libraries), frozenset(packages), frozenset(top))


def broken_rules(source: str, relative: str) -> set[str]:
    """The libraries and packages the file at `relative`, holding `source`, imports against its rule."""
    package = package_of(relative)
    rule_of_package = rule_for(relative)
    found = imports_of(source)
    strays = {name for name in found.packages if name != package and name not in rule_of_package.allowed}
    return set(found.libraries & rule_of_package.forbidden) | strays


def python_files() -> list[Path]:
    return sorted([*ROOT.glob("cnnlab/**/*.py"), *ROOT.glob("app_pages/*.py")])


def relative_path(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", python_files(), ids=relative_path)
def test_imports_keep_to_the_layout(path: Path) -> None:
    broken = broken_rules(path.read_text(encoding="utf-8"), relative_path(path))
    assert not broken, f"{relative_path(path)} imports {sorted(broken)}, which its folder's rule forbids"


def test_every_folder_has_a_rule() -> None:
    folders = {package_of(relative_path(path)) for path in python_files()}
    missing = {folder for folder in folders if not folder.startswith(PAGE_FOLDERS) and folder not in RULES}
    assert not missing, f"folders without a rule in RULES: {sorted(missing)}"


@pytest.mark.parametrize(
    ("relative", "source", "broken"),
    [
        ("cnnlab/runs/worker/training.py", "import streamlit as st\n", {"streamlit"}),
        ("cnnlab/store/run_store.py", "from streamlit import cache_data\n", {"streamlit"}),
        ("cnnlab/runs/queue/scheduler.py", "def warm() -> None:\n    import tensorflow\n", {"tensorflow"}),
        ("cnnlab/runs/views/diagnosis.py", "import keras\n", {"keras"}),
        ("cnnlab/runs/worker/training.py", "import keras\nimport tensorflow as tf\n", set()),
        ("cnnlab/ui/pages/evaluate/view.py", "import streamlit\nfrom keras import Model\n", {"keras"}),
        ("cnnlab/figures/filters.py", "import keras.ops\n", {"keras"}),
        ("cnnlab/model/shapes.py", "import keras\n", {"keras"}),
        ("cnnlab/model/build.py", "import keras\n", set()),
        ("app_pages/model.py", "import streamlit\nimport tensorflow as tf\n", {"tensorflow"}),
        # The server side reaches the worker only through a process; the store never reaches up.
        (
            "cnnlab/runs/queue/scheduler.py",
            "from cnnlab.runs.worker import training\n",
            {"cnnlab.runs.worker"},
        ),
        (
            "cnnlab/ui/server.py",
            "def f() -> None:\n    from cnnlab.runs.worker import devices\n",
            {"cnnlab.runs.worker"},
        ),
        ("cnnlab/store/reader.py", "from cnnlab.runs.queue import scheduler\n", {"cnnlab.runs.queue"}),
        ("cnnlab/trained/exports.py", "from cnnlab.store.records import RunRecord\n", set()),
        ("cnnlab/ui/pages/train/form.py", "from cnnlab.ui.pages.train import live_run\n", set()),
        (
            "cnnlab/ui/pages/train/form.py",
            "from cnnlab.ui.pages.runs import runs_view\n",
            {"cnnlab.ui.pages.runs"},
        ),
    ],
)
def test_the_rules_catch_a_violation(relative: str, source: str, broken: set[str]) -> None:
    """An example source, judged as if it lived at `relative`."""
    assert broken_rules(source, relative) == broken


def package_graph() -> dict[str, set[str]]:
    """Package -> the packages its modules import at module level (not inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.glob("cnnlab/**/*.py"):
        relative = relative_path(path)
        package = package_of(relative)
        targets = imports_of(path.read_text(encoding="utf-8")).module_level_packages
        graph.setdefault(package, set()).update(target for target in targets if target != package)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph`, as the list of its nodes with the first repeated at the end, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in visiting:
            return [*visiting[visiting.index(name) :], name]
        if name in done:
            return None
        visiting.append(name)
        for target in sorted(graph.get(name, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name)
        if cycle:
            return cycle
    return None


def test_packages_import_no_cycle() -> None:
    cycle = find_cycle(package_graph())
    assert cycle is None, "package import cycle: " + " -> ".join(cycle or [])


def test_a_package_cycle_is_found() -> None:
    """The cycle the issue found (runs -> trained -> runs) is caught, also through a third package."""
    graph = package_graph()
    assert find_cycle({**graph, "cnnlab.store": graph["cnnlab.store"] | {"cnnlab.trained"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# The store is the only code with SQL: no other module imports sqlite3 or holds a statement.
SQL_HOME = "cnnlab/store/"
# Statements as this code base writes them: keywords in capitals, in the shape only SQL has, so
# prose ("Select a run from the list", "Drop an ended run.") passes.
SQL_STATEMENT = re.compile(
    r"^\s*(SELECT\s|INSERT\s+(OR\s+[A-Z]+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s"
    r"|CREATE\s+(TABLE|(UNIQUE\s+)?INDEX|VIEW|TRIGGER)\s|ALTER\s+TABLE\s|DROP\s+(TABLE|INDEX|VIEW)\s"
    r"|PRAGMA\s+\w+|WITH\s+\w+\s+AS\s*\()"
)


# The store's modules that hold connections: outside the store, code asks a `Store`, never these.
DATABASE_MODULES = ("sqlite3", "cnnlab.store.database", "cnnlab.store.migrations")


def _opens_the_database(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in DATABASE_MODULES)


def sql_outside_the_store(source: str) -> list[str]:
    """What in `source` is SQL: imports of sqlite3 or of the store's database modules, a store's
    `database.connection()` or `.transaction()` borrowed, and string constants (f-string parts too)
    that start a statement."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {alias.name}" for alias in node.names if _opens_the_database(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [f"from {node.module} import {name}" for name in names if _opens_the_database(name)]
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_STATEMENT.match(node.value)
        ):
            found.append(repr(node.value[:60]))
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ("connection", "transaction")
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "database"
        ):
            found.append(f"database.{node.attr}()")  # A store's connection, borrowed to run SQL elsewhere.
    return found


@pytest.mark.parametrize(
    "path",
    [path for path in python_files() if not relative_path(path).startswith(SQL_HOME)],
    ids=relative_path,
)
def test_only_the_store_holds_sql(path: Path) -> None:
    found = sql_outside_the_store(path.read_text(encoding="utf-8"))
    assert not found, (
        f"{relative_path(path)} holds SQL {found}; move it into a method of cnnlab/store/ and call that"
    )


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import sqlite3\n", True),
        ("def f():\n    from sqlite3 import connect\n", True),
        ("from cnnlab.store.database import Database\n", True),
        ("from cnnlab.store import database\n", True),
        ("from cnnlab.store.run_store import DatabaseError, Store\n", False),
        ("row = store.database.connection().execute(query).fetchone()\n", True),
        ("with self._store.database.transaction() as connection:\n    pass\n", True),
        ('QUERY = "SELECT owner FROM runs WHERE id = ?"\n', True),
        ('connection.execute(f"UPDATE runs SET {name} = ? WHERE id = ?")\n', True),
        ('connection.execute("DELETE FROM events WHERE run_id = ?")\n', True),
        ('connection.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?)")\n', True),
        ('connection.execute("PRAGMA foreign_keys = ON")\n', True),
        ('st.button("Delete the run")\nst.caption("Select a run from the list")\n', False),
        ('message = "Create a run on the Train page. Drop an ended run."\n', False),
    ],
)
def test_the_sql_rule_catches_a_statement_and_passes_prose(source: str, caught: bool) -> None:
    assert bool(sql_outside_the_store(source)) == caught
