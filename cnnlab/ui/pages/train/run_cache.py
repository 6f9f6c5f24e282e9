"""The server's one copy of each followed run's tables, shared by every session that follows it.

Thirty students watching the teacher's run used to read the same metric tables thirty times a
second. Here the server keeps one `cnnlab.runs.views.live_frames.LiveFrames` per run (and per data
folder), so a tick of any number of sessions costs one small read of what is new, and the figures
drawn from one version of the tables are built once (`LiveFrames.memo`).

The cache holds data of every user's runs, so it must not become a way around the access rule:
`live` takes the `RunRecord` the session's own access-checked reader (`cnnlab.ui.server.store()`)
has just returned, which it can only have if the session may read the run.

Streamlit's `st.cache_resource(max_entries=...)` holds the frames: one copy per run shared by every
session, made once however many sessions ask at the same moment, the least recently used let go
beyond `MAX_RUNS`.

It also counts the sessions following each run (`viewers`), so that a crowd refreshes less often
(`cnnlab.ui.pages.train.live_run.poll_seconds`).
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import streamlit as st

from cnnlab.runs.views.live_frames import LiveFrames
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store

MAX_RUNS = 64  # runs held at once; the least recently followed is dropped first
MIN_SECONDS = 0.5  # the tables are checked at most this often, however many sessions ask
VIEWER_SECONDS = 10.0  # a session counts as a viewer of a run this long after it last read it
VIEWER_KEY = "run_cache_viewer"  # session state: the session's name among a run's viewers


class Viewers:
    """The sessions that read each run lately, counted per run.

    A time window, not a cache: `st.cache_resource` keeps values, it does not count who asked.
    """

    def __init__(self, viewer_seconds: float = VIEWER_SECONDS) -> None:
        self.viewer_seconds = viewer_seconds
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, float]] = {}  # run id -> viewer -> when it last read the run

    def note(self, run_id: str, viewer: str, now: float | None = None) -> int:
        """Note that `viewer` reads run `run_id` now; how many viewers read it in the last `viewer_seconds`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._seen.setdefault(run_id, {})[viewer] = now
            for run, seen in list(self._seen.items()):
                for gone in [name for name, when in seen.items() if now - when > self.viewer_seconds]:
                    del seen[gone]
                # A run nobody has read for a while is forgotten, so the table does not grow with old runs.
                if not seen:
                    del self._seen[run]
            return len(self._seen[run_id])


@st.cache_resource(show_spinner=False)
def _store_at(home: str) -> Store:
    return Store(Path(home))


@st.cache_resource(max_entries=MAX_RUNS, show_spinner=False)
def _frames(home: str, run_id: str) -> LiveFrames:
    return LiveFrames(_store_at(home), run_id, MIN_SECONDS)


@st.cache_resource(show_spinner=False)
def _viewers_at(home: str) -> Viewers:
    return Viewers()


def live(run: RunRecord, home: Path) -> LiveFrames:
    """The shared frames of `run`, a record the session's access-checked reader returned."""
    return _frames(str(home), run.id)


def viewers(run: RunRecord, home: Path) -> int:
    """How many sessions follow `run` now, this one included (which this call notes)."""
    if VIEWER_KEY not in st.session_state:
        st.session_state[VIEWER_KEY] = uuid.uuid4().hex
    return _viewers_at(str(home)).note(run.id, st.session_state[VIEWER_KEY])
