"""The run store and scheduler of this Streamlit server, shared by every session."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit import runtime

from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.limits import Limits
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import scheduler as scheduler_module
from cnnlab.store import probes
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store, default_home
from cnnlab.ui.session import identity

if TYPE_CHECKING:
    import numpy as np


# What the Train and Evaluate pages need and Home does not: imported in a background thread once the
# first page is drawn, so a later page does not wait for them (pandas alone is slow on a busy
# machine). Not as the server starts: the import then ran beside the first page's script and made Home
# slower, while the first page opened gained nothing (`benchmarks/cold_start.py`,
# `benchmarks/evaluate_open.py`).
PAGE_MODULES = (
    "pandas",
    "plotly.graph_objects",
    "cnnlab.figures.training",
    "cnnlab.runs.views.live_frames",
    "cnnlab.trained.evaluation",
    "cnnlab.trained.exports",
    "cnnlab.ui.cache.run_models",
    "cnnlab.ui.pages.evaluate.evaluate_view",
)
logger = logging.getLogger(__name__)
_import_once = threading.Lock()  # taken, never released, by the first call that starts the import
_imports_done = threading.Event()  # set once that import has ended, however it ended


@st.cache_resource(show_spinner=False)
def _store_at(home: str) -> Store:
    return Store(Path(home))


def _class_limits() -> Limits:
    """The class budget of this server, from the `[limits]` of classroom.toml (it binds students only)."""
    return identity.classroom_settings().limits


def _access() -> RunAccess:
    home = str(default_home())
    return RunAccess(_store_at(home), identity.current_user(), _class_limits(), lambda: _scheduler_at(home))


def store() -> RunAccess:
    """The server's runs (CNNLAB_HOME) as this session's user may see them (`cnnlab.classroom.access`).

    Pages read runs through the `RunReader` methods; a run the user may not read raises AccessError.
    """
    return _access()


@st.cache_resource(show_spinner=False)
def _scheduler_at(home: str) -> scheduler_module.Scheduler:
    return scheduler_module.shared(home)


def scheduler() -> RunAccess:
    """The server's scheduler (started once, with a warm worker) as this session's user may use it.

    The one place a page changes runs: submit, stop, pause, continue, fork, rename, delete and share,
    each refused (AccessError) for a run the user may not change.
    """
    home = str(default_home())
    return RunAccess.of(_scheduler_at(home), identity.current_user(), _class_limits())


@contextlib.asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """The life of the server `streamlit run app.py` starts (the `st.App` in app.py).

    As the server starts, before any visitor: start the scheduler and its warm worker in a
    background thread (`cnnlab.runs.queue.scheduler.start_in_background`), so the worker's TensorFlow
    import runs while the first visitor's browser loads the page, and queued runs left by an
    earlier server start at once. As it stops: end the warm worker
    (`cnnlab.runs.queue.scheduler.shutdown_shared`); runs in training carry on for the next server.
    """
    scheduler_module.start_in_background(str(default_home()))
    try:
        yield
    finally:
        scheduler_module.shutdown_shared()


def start_in_background() -> None:
    """Start the server's scheduler and its warm worker in a background thread, once per server.

    The server's `lifespan` has normally started them already; `app.py` calls this after every page
    it draws, for a server that ran no lifespan; after the first page it also imports `PAGE_MODULES`
    in another thread. Under AppTest (no server: its runtime is a stand-in) nothing starts; a page
    that submits still starts the scheduler itself.
    """
    if runtime.exists() and type(runtime.get_instance()) is runtime.Runtime:
        scheduler_module.start_in_background(str(default_home()))
        _import_page_modules_in_background()


def _import_page_modules_in_background() -> None:
    """Start `_import_page_modules` in a daemon thread, once per server."""
    if not _import_once.acquire(blocking=False):
        return
    threading.Thread(target=_import_page_modules, name="cnnlab-imports", daemon=True).start()


def wait_for_page_imports(timeout: float = 120.0) -> None:
    """Wait, before a page runs, for the background import of `PAGE_MODULES` if it has started.

    A page importing pandas while that thread imports it too can find pandas half made (ImportError:
    "partially initialized module 'pandas.core.apply'"): the Teacher page failed so in a class's
    first seconds. The first page (Home) runs before the import starts and never waits.
    """
    if _import_once.locked():
        _imports_done.wait(timeout)


def _import_page_modules() -> None:
    """Import `PAGE_MODULES` and write one throwaway chart as Streamlit sends it, which loads
    plotly's chart code (a page that needs them first waits only for what is left of this import)."""
    try:
        for name in PAGE_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                logger.exception(
                    "Importing %s ahead of the Train page failed; the page will import it.", name
                )
                return
        import plotly.graph_objects as go
        import plotly.io

        plotly.io.to_json(go.Figure(go.Scatter(x=[0, 1], y=[1, 0], mode="lines")), validate=False)
    finally:
        _imports_done.set()


@st.cache_data(max_entries=512, show_spinner=False)
def _snapshot_version(
    home: str, run_id: str, epoch: int, kind: str, modified: float
) -> dict[str, np.ndarray]:
    return _store_at(home).read_snapshot(run_id, epoch, kind)


def snapshot(run_id: str, epoch: int, kind: str) -> dict[str, np.ndarray]:
    """A stored snapshot, read from disk once per version of its file (pages poll it every second)."""
    path = store().snapshot_path(run_id, epoch, kind)
    modified = path.stat().st_mtime if path.exists() else 0.0
    return _snapshot_version(str(store().home), run_id, epoch, kind, modified)


def submit(request: RunRequest) -> RunRecord:
    """Queue the run `request` describes, owned by this session's user; it starts as soon as a worker is
    free, following the pinned probes (unless the request brings its own)."""
    if request.probes is None:
        pinned = probes.for_input_shape(store(), request.spec.input_shape)
        request = dataclasses.replace(request, probes=pinned)
    return scheduler().submit(request)
