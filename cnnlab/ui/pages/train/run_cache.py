"""The server's one copy of each followed run's tables, shared by every session that follows it.

Thirty students watching the teacher's run used to read the same metric tables thirty times a
second. Here the server keeps one `cnnlab.runs.views.live_frames.LiveFrames` per run (and per data
folder), so a tick of any number of sessions costs one small read of what is new, and the figures
drawn from one version of the tables are built once (`LiveFrames.memo`).

The cache holds data of every user's runs, so it must not become a way around the access rule:
`frames` takes the `RunRecord` the session's own access-checked reader (`cnnlab.ui.server.store()`)
has just returned, which it can only have if the session may read the run.

It also counts the sessions following each run (`viewers`), so that a crowd refreshes less often
(`cnnlab.ui.pages.train.live_run.poll_seconds`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import streamlit as st

from cnnlab.runs.views.live_frames import LiveFrames
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store

MAX_RUNS = 64  # runs held at once; the least recently followed is dropped first
MIN_SECONDS = 0.5  # the tables are checked at most this often, however many sessions ask
VIEWER_SECONDS = 10.0  # a session counts as a viewer of a run this long after it last read it
VIEWER_KEY = "run_cache_viewer"  # session state: the session's name among a run's viewers


class RunCache:
    """`LiveFrames` per run id for one data folder, the least recently used dropped beyond `max_runs`."""

    def __init__(
        self,
        home: Path,
        max_runs: int = MAX_RUNS,
        min_seconds: float = MIN_SECONDS,
        viewer_seconds: float = VIEWER_SECONDS,
    ) -> None:
        self.store = Store(home)
        self.max_runs = max_runs
        self.min_seconds = min_seconds
        self.viewer_seconds = viewer_seconds
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, LiveFrames] = OrderedDict()
        self._seen: dict[str, dict[str, float]] = {}  # run id -> viewer -> when it last read the run

    def note_viewer(self, run_id: str, viewer: str, now: float | None = None) -> int:
        """Note that `viewer` reads run `run_id` now; how many viewers read it in the last `viewer_seconds`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            seen = self._seen.setdefault(run_id, {})
            seen[viewer] = now
            for gone in [name for name, when in seen.items() if now - when > self.viewer_seconds]:
                del seen[gone]
            # A run nobody has read for a while is forgotten, so the table does not grow with old runs.
            for other in [key for key, views in self._seen.items() if not views or key not in self._runs]:
                if other != run_id:
                    del self._seen[other]
            return len(seen)

    def follow(self, run_id: str) -> LiveFrames:
        """The shared `LiveFrames` of run `run_id` (a full id), made on first use."""
        with self._lock:
            frames = self._runs.get(run_id)
            if frames is None:
                frames = self._runs[run_id] = LiveFrames(self.store, run_id, self.min_seconds)
                while len(self._runs) > self.max_runs:
                    self._runs.popitem(last=False)
            else:
                self._runs.move_to_end(run_id)
            return frames

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)


@st.cache_resource(show_spinner=False)
def _cache_at(home: str) -> RunCache:
    return RunCache(Path(home))


def live(run: RunRecord, home: Path) -> LiveFrames:
    """The shared frames of `run`, a record the session's access-checked reader returned."""
    return _cache_at(str(home)).follow(run.id)


def viewers(run: RunRecord, home: Path) -> int:
    """How many sessions follow `run` now, this one included (which this call notes)."""
    if VIEWER_KEY not in st.session_state:
        st.session_state[VIEWER_KEY] = uuid.uuid4().hex
    return _cache_at(str(home)).note_viewer(run.id, st.session_state[VIEWER_KEY])
