"""What a live view of one run draws, read once for every viewer and only as far as it is new.

A page that follows a run redraws every second. Reading the whole metric tables and event log on
each redraw, in each open browser tab, made a class of viewers cost more than the training they
watched. `LiveFrames` holds one run's tables and reads:

- the run's `RunVersion` first (`Store.run_version`, one indexed query: status, pending control,
  newest epoch row, newest batch step, newest event, newest diagnosis): nothing else is read while
  it is unchanged;
- batch metrics only after the last step it holds (`batch_metrics(after_step=...)`), appended;
- epoch metrics, the event log, the diagnoses and the checkpoints only when their part of the
  version changed.

A change of status (a continue, a restart) reads everything again, so what it holds is always
what a full read would give (the tests compare the two). It is safe across threads: the server
keeps one per run (`cnnlab.ui.pages.train.run_cache`) and every session following the run renders from it.
`memo` keeps values built from one version (figures), so they too are built once per change.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pandas as pd

from cnnlab.store.diagnoses import Diagnosis
from cnnlab.store.records import RunVersion
from cnnlab.store.run_store import Store

Value = TypeVar("Value")

__all__ = ["Frames", "LiveFrames", "RunVersion", "read_version"]


def read_version(store: Store, run_id: str) -> RunVersion | None:
    """The run's version in one query over indexed columns; None if there is no such run."""
    return store.run_version(run_id)


@dataclasses.dataclass(frozen=True)
class Frames:
    """One version of a run's tables, as a live view draws them (never changed once made)."""

    version: RunVersion | None
    epochs: pd.DataFrame
    batches: pd.DataFrame
    events: pd.DataFrame
    diagnoses: tuple[Diagnosis, ...]
    checkpoints: dict[str, int]


class LiveFrames:
    """One run's tables for live views, refreshed at most every `min_seconds` and only when changed."""

    def __init__(self, store: Store, run_id: str, min_seconds: float = 0.5) -> None:
        self.store = store
        self.run_id = run_id
        self.min_seconds = min_seconds
        self.reads = 0  # how many times the tables were read (a measure of the work saved)
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._frames = Frames(None, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), (), {})
        self._memo: dict[tuple[object, ...], object] = {}

    def current(self, *, status: str | None = None, control: str | None = None) -> Frames:
        """The run's frames, read again if the last check is older than `min_seconds`.

        A caller that has just read the run's record passes its `status` and `control`: if they
        differ from the held version the frames are checked at once, so a change is never hidden.
        """
        with self._lock:
            held = self._frames.version
            stale = held is None or (status is not None and (held.status, held.control) != (status, control))
            if stale or time.monotonic() - self._checked_at >= self.min_seconds:
                self._refresh()
            return self._frames

    def memo(self, version: RunVersion | None, key: tuple[object, ...], build: Callable[[], Value]) -> Value:
        """`build()` for frames of `version`, made once and shared (figures drawn from those frames).

        Pass the version of the frames `build` draws from, so a value is never filed under a newer one.
        """
        with self._lock:
            full_key = (version, *key)
            if full_key not in self._memo:
                self._memo[full_key] = build()
            return self._memo[full_key]  # type: ignore[return-value]  # stored by this same key

    def _refresh(self) -> None:
        """Read what changed since the held version (the lock is held)."""
        self._checked_at = time.monotonic()
        version = read_version(self.store, self.run_id)
        held = self._frames
        if version is None or version == held.version:
            return
        old = held.version
        # A new status (a continue, a restart) may rewrite steps already held: read everything again.
        everything = old is None or old.status != version.status

        def changed(part: str) -> bool:
            return everything or getattr(version, part) != getattr(old, part)

        batches = held.batches
        if everything or not len(batches):
            batches = self.store.batch_metrics(self.run_id)
        elif changed("last_step"):
            # After the last step held, not the version's: rows written since it was read are held too.
            newer = self.store.batch_metrics(self.run_id, after_step=int(batches["step"].iloc[-1]))
            batches = pd.concat([batches, newer], ignore_index=True) if len(newer) else batches
        epochs = self.store.epoch_metrics(self.run_id) if changed("epoch_time") else held.epochs
        checkpoints = self.store.checkpoints(self.run_id) if changed("checkpoint_time") else held.checkpoints
        events = self.store.events(self.run_id) if changed("last_event") else held.events
        found = tuple(self.store.diagnoses(self.run_id)) if changed("last_diagnosis") else held.diagnoses
        self._frames = Frames(version, epochs, batches, events, found, checkpoints)
        self._memo = {key: value for key, value in self._memo.items() if key[0] == version}
        self.reads += 1
