"""The job contract between the worker process and a job function.

A job is a function `job(run_id, store, control) -> Outcome | None` named by its
`module:function` entry (`DEFAULT_ENTRY` trains a model). It reads its settings from the store,
writes what it records back to the store, asks `control.should_stop()` between batches, and
returns an `Outcome` saying how it ended. The worker records that outcome (or `failed`, when the
job raises) as the run's final status.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

DEFAULT_ENTRY = "cnnlab.runs.worker.training:run"
# How often `Control` reads the store for requests, at most: one indexed read of a row, so a stop or
# a pause waits at most this long (and its batch) before it is seen.
POLL_SECONDS = 0.05
PAUSE_POLL_SECONDS = 0.05  # How often a paused job looks for a resume or a stop.


@dataclass(frozen=True)
class Outcome:
    """How a job ended: `completed`, `stopped`, `pruned` or `diverged`, with an optional reason and hint.

    `finish`: work the worker does once the status is recorded (a stopped run's test figures), so
    that the status is said without waiting for it; an exception in it is logged as a warning.
    """

    status: Status = Status.COMPLETED
    reason: str | None = None
    hint: str | None = None
    finish: Callable[[], None] | None = field(default=None, compare=False, repr=False)


class Control:
    """The job's view of stop, pause and resume requests, asked between batches.

    `should_stop()` reads the store at most once per `poll_seconds`, so calling it after every
    batch costs next to nothing. A pause blocks inside `should_stop()` (status `paused`) until a
    resume (status back to `running`) or a stop arrives; the model and optimizer stay in memory.
    A stop is final: once seen, every later `should_stop()` answers True without reading the store.
    A prune (a stop asked by the run's sweep) stops the same way and sets `prune_requested`.
    `paused_seconds` adds up the time spent paused (the epoch metrics record it, so that the time
    left is estimated from training time only).

    Args:
        store: The run store the requests arrive through.
        run_id: The run this job trains.
        poll_seconds: The least seconds between two reads of the store. Defaults to `POLL_SECONDS`.
        clock: The function telling the time in seconds. Defaults to `time.monotonic`.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.stop_requested = False
        self.prune_requested = False
        self.paused_seconds = 0.0  # Seconds spent paused so far: the time-left estimate leaves them out.
        self._last_poll = -math.inf

    def should_stop(self, *, force_poll: bool = False) -> bool:
        """True once a stop was requested; handles a pause by waiting here until resume or stop."""
        if self.stop_requested:
            return True
        now = self.clock()
        if not force_poll and now - self._last_poll < self.poll_seconds:
            return False
        self._last_poll = now
        action = self.store.pending_control(self.run_id)
        if action == "pause":
            self._pause()
        elif action == "resume":
            self.store.clear_control(self.run_id, "resume")
        elif action in ("stop", "prune"):
            self.stop_requested = True
            self.prune_requested = action == "prune"
        return self.stop_requested

    def _pause(self) -> None:
        if self.store.get_run(self.run_id).status != Status.RUNNING:
            return  # A pause asked for while starting waits until the run is running.
        self.store.set_status(self.run_id, Status.PAUSED)
        self.store.clear_control(self.run_id, "pause")
        paused_at = time.monotonic()
        try:
            self._wait_for_resume()
        finally:
            self.paused_seconds += time.monotonic() - paused_at

    def _wait_for_resume(self) -> None:
        while True:
            time.sleep(max(0.01, min(self.poll_seconds, PAUSE_POLL_SECONDS)))
            action = self.store.pending_control(self.run_id)
            if action in ("stop", "prune"):
                self.stop_requested = True
                self.prune_requested = action == "prune"
                return
            if action == "resume":
                self.store.set_status(self.run_id, Status.RUNNING)
                self.store.clear_control(self.run_id, "resume")
                return
            if action == "pause":
                # A second pause (a click replayed by a rerun) is answered: the run is paused already.
                # Left pending, it showed "Pausing…" for ever and hid the Resume button.
                self.store.clear_control(self.run_id, "pause")


Job = Callable[[str, Store, Control], "Outcome | None"]
