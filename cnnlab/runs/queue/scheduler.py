"""The queue of training runs: a concurrency limit, claims, and watching over workers.

`Scheduler.submit` records a queued run; the scheduler starts queued runs in order while fewer
than `max_workers` runs hold a slot (`starting` or `running`; a paused run holds none), hands
each to an `Executor` (`cnnlab.runs.queue.executor`: local processes and a warm worker by default),
and watches the workers: the run of a worker process that dies is marked `interrupted` ("the
worker process died", continuable from its last complete epoch) within about a second, and at start-up a run whose process is gone becomes `interrupted`.
Several schedulers may share one store (the Streamlit server and a CLI): claims are atomic and
the limit counts every run in the store. The scheduler is also where the server changes runs
(stop, continue, fork, rename, delete); its pages only read them. Each round it also advances the
sweeps on Optuna (`cnnlab.runs.queue.sweep_watcher`): epochs reported, losing trials pruned, the next
trials queued before the queue's head is claimed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path

from cnnlab.errors import RunError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import executor_choice
from cnnlab.runs.queue.capacity import default_max_workers, default_threads
from cnnlab.runs.queue.executor import Executor, process_alive
from cnnlab.specs import TrainingSettings
from cnnlab.store import statuses
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

__all__ = ["DIED", "Scheduler", "shared", "start_in_background"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
STALE_SECONDS = 30.0  # a run with no heartbeat for this long has lost its worker
DIED = "the worker process died"


class Scheduler:
    """The queue and the watcher of workers for one store; `start()` it, then `submit` runs."""

    def __init__(
        self,
        store: Store | None = None,
        executor: Executor | None = None,
        *,
        max_workers: int | None = None,
        warm: bool = True,
        poll_seconds: float = POLL_SECONDS,
        stale_seconds: float = STALE_SECONDS,
    ) -> None:
        self.store = store if store is not None else Store()
        self.max_workers = max_workers or default_max_workers()
        threads = default_threads(self.max_workers)
        # A worker that ends a run takes the next one: queued runs start without a TensorFlow import.
        self.executor: Executor = executor or executor_choice.choose_executor(
            self.store, threads=threads, warm=warm, reuse=warm
        )
        self.poll_seconds = poll_seconds
        self.stale_seconds = stale_seconds
        self._owned: set[str] = set()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._host = socket.gethostname()

    # Life cycle.

    def start(self) -> Scheduler:
        """Reconcile the store with reality, start queued runs, and keep watching in a daemon thread."""
        # A cluster executor follows again the runs an earlier server left training there.
        reattach = getattr(self.executor, "reattach", None)
        if callable(reattach):
            self._owned.update(reattach())
        self.reconcile()
        self.tick()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="cnnlab-scheduler", daemon=True)
            self._thread.start()
        return self

    def shutdown(self, *, kill_workers: bool = False) -> None:
        """Stop watching; release the warm worker; optionally kill the workers this scheduler started."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if kill_workers:
            for run_id in list(self._owned):
                self.kill(run_id)
        self.executor.shutdown()

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            try:
                self.tick()
            except Exception:
                logger.exception("The scheduler's watch failed once; it carries on.")

    # Runs.

    def submit(self, request: RunRequest) -> RunRecord:
        """Queue a new run as `request` describes it (see `Store.create_run`) and start it if a slot is free.

        The request's `probes` (float32 images shaped like the model input) become the run's `probes`
        snapshot before it can start, so its telemetry follows them from the first epoch.
        """
        run = self.store.create_run(request)
        if request.probes is not None and len(request.probes):
            self.store.write_snapshot(run.id, 0, "probes", {"images": request.probes})
        self.tick()
        return self.store.get_run(run.id)

    def requeue(self, run_id: str) -> RunRecord:
        """Queue an ended run again (a continue); its job resumes from the latest checkpoint."""
        self.store.set_status(run_id, Status.QUEUED)
        self.tick()
        return self.store.get_run(run_id)

    def continue_run(self, run_id: str, more_epochs: int) -> RunRecord:
        """Queue a completed, stopped, pruned or interrupted run for `more_epochs` more, from its latest checkpoint."""
        run = self.store.get_run(run_id)
        done = self.store.checkpoints(run.id).get("latest")
        if run.status not in statuses.CONTINUABLE or done is None:
            raise RunError(
                f"Run {run.id} is {run.status} with {done or 0} epoch(s) saved; only a completed, stopped, pruned or "
                "interrupted run with a checkpoint can be continued. Fork it from an earlier epoch instead."
            )
        if more_epochs < 1:
            raise RunError(f"Continue for at least 1 more epoch; got {more_epochs}.")
        settings = dataclasses.replace(run.training(), epochs=done + more_epochs)
        self.store.set_training_settings(run.id, settings)
        return self.requeue(run.id)

    def fork(
        self,
        run_id: str,
        epoch: int,
        training_settings: TrainingSettings | None = None,
        *,
        name: str | None = None,
        owner: str | None = None,
        keep_exercise: bool = False,
    ) -> RunRecord:
        """Queue a new run that starts from run `run_id`'s weights after `epoch`, with new training settings.

        The fork records its parent and parent epoch, and starts with the parent's epoch metrics up to there.
        It keeps what the parent's exercise hid (hidden stays hidden), and the parent's exercise tag
        only with `keep_exercise` (the caller checked that the fork stays within the exercise).
        """
        parent = self.store.get_run(run_id)
        saved = sorted(
            epoch for name, epoch in self.store.checkpoints(parent.id).items() if name.startswith("epoch_")
        )
        if epoch not in saved:
            raise RunError(
                f"Run {parent.id} has no weights saved for epoch {epoch}; it has epochs {saved or 'none'}."
            )
        settings = training_settings if training_settings is not None else parent.training()
        if settings.epochs <= epoch:
            raise RunError(
                f"A fork from epoch {epoch} must train to a later epoch; got epochs={settings.epochs}."
            )
        run = self.store.create_run(
            RunRequest(
                spec=parent.model_spec(),
                data_settings=parent.data(),
                training_settings=settings,
                name=name if name is not None else f"{parent.name} (fork of epoch {epoch})",
                owner=owner if owner is not None else parent.owner,
                parent_id=parent.id,
                parent_epoch=epoch,
                exercise=parent.exercise if keep_exercise else None,
                exercise_locked=parent.exercise_control_names("locked"),
                exercise_hidden=parent.exercise_control_names("hidden"),
            )
        )
        self.store.copy_epoch_metrics(parent.id, run.id, epoch)
        self.tick()
        return self.store.get_run(run.id)

    def rename(self, run_id: str, name: str) -> RunRecord:
        """Give a run a new display name (RunError for an empty one)."""
        self.store.rename_run(run_id, name)
        return self.store.get_run(run_id)

    def delete(self, run_id: str) -> None:
        """Remove an ended or queued run and all its files (RunError while a worker has it: stop it first)."""
        self.store.delete_run(run_id)

    def stop(self, run_id: str, *, by: str | None = None) -> RunRecord:
        """Stop a run: a queued run at once, a live one after its current batch (through the store).

        `by` records who asked when not the run's owner ("teacher"), so the owner is told.
        """
        run = self.store.get_run(run_id)
        if run.status == Status.QUEUED:
            with contextlib.suppress(RunError):
                self.store.set_status(run.id, Status.STOPPED, reason="Stopped before it started.")
                self.store.note_request(run.id, "stop", by=by)
        elif run.status in statuses.LIVE:
            self.store.request_control(run.id, "stop", by=by)
        return self.store.get_run(run.id)

    def pause(self, run_id: str, *, by: str | None = None) -> None:
        """Ask a running run to pause between batches (a paused run is left as it is, `by` noted)."""
        if self.store.get_run(run_id).status == Status.PAUSED:
            if by is not None:
                self.store.note_request(run_id, "pause", by=by)  # The teacher now holds the pause.
            return
        self.store.request_control(run_id, "pause", by=by)

    def resume(self, run_id: str, *, by: str | None = None) -> None:
        """Ask a paused run to carry on."""
        self.store.request_control(run_id, "resume", by=by)

    def kill(self, run_id: str) -> None:
        """End a run's worker at once (status stopped); use when a polite stop gets no answer."""
        run = self.store.get_run(run_id)
        if run.status in statuses.ACTIVE:
            with contextlib.suppress(RunError):
                self.store.set_status(run.id, Status.STOPPED, reason="Killed by the user.")
        if run.id in self._owned:
            self.executor.cancel(run.id)
        elif run.worker_pid and run.worker_host == self._host and process_alive(run.worker_pid):
            os.kill(run.worker_pid, signal.SIGKILL)

    def wait(self, run_id: str, timeout: float | None = None, poll_seconds: float = 0.2) -> RunRecord:
        """Block until the run has ended (or `timeout` seconds pass); return its record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.store.get_run(run_id)
            if run.is_ended or (deadline is not None and time.monotonic() > deadline):
                return run
            if self._thread is None:
                self.tick()
            time.sleep(poll_seconds)

    # Watching.

    def _gone(self, run: RunRecord, now: float) -> bool:
        """True if a live run's worker is gone: its process has exited or its heartbeat is stale."""
        if run.worker_pid and run.worker_host in (None, self._host) and not process_alive(run.worker_pid):
            return True
        last_sign_of_life = run.heartbeat_at if run.heartbeat_at is not None else run.created_at
        return now - last_sign_of_life > self.stale_seconds

    def _how(self, run: RunRecord, now: float) -> str:
        """How a worker this scheduler did not start was found gone, for the reason."""
        if run.worker_pid and run.worker_host in (None, self._host) and not process_alive(run.worker_pid):
            return f"its process {run.worker_pid} has exited"
        last_sign_of_life = run.heartbeat_at if run.heartbeat_at is not None else run.created_at
        return f"no heartbeat for {now - last_sign_of_life:.0f} s"

    def _end(self, run: RunRecord, status: Status, reason: str, hint: str) -> None:
        with contextlib.suppress(RunError):  # The worker may have finished the run meanwhile.
            self.store.set_status(run.id, status, reason=reason, hint=hint, expected=statuses.LIVE)

    def reconcile(self) -> list[str]:
        """At start-up: mark `interrupted` every live run whose worker is gone; return their ids."""
        now = time.time()
        interrupted: list[str] = []
        for run in self.store.list_runs(status=statuses.LIVE):
            if run.id not in self._owned and self._gone(run, now):
                hint = "Continue it from its latest checkpoint, or fork it from an earlier epoch."
                self._end(
                    run, Status.INTERRUPTED, "The worker process was gone when CNN Lab restarted.", hint
                )
                interrupted.append(run.id)
        return interrupted

    def tick(self) -> None:
        """One round of watching: mark runs whose worker died interrupted, start queued runs, keep a warm worker.

        A dead worker is not a fault of the run's settings, so its run can be continued from the last
        complete epoch (its latest checkpoint, optimizer state included).
        """
        with self._lock:
            now = time.time()
            hint = (
                "The metrics and checkpoints recorded before it died are kept: continue it from its last "
                "complete epoch, or fork it from an earlier one."
            )
            for run_id in list(self._owned):
                if self.executor.alive(run_id):
                    continue
                self._owned.discard(run_id)
                run = self.store.get_run(run_id)
                if run.status in statuses.LIVE:
                    how = self.executor.describe_exit(run_id)
                    self._end(run, Status.INTERRUPTED, f"{DIED[0].upper()}{DIED[1:]} ({how}).", hint)
                    self.store.log_event(run_id, f"{DIED} ({how})", level="error")
                self.executor.forget(run_id)
            for run in self.store.list_runs(status=statuses.LIVE):
                if run.id not in self._owned and self._gone(run, now):
                    self._end(
                        run, Status.INTERRUPTED, f"{DIED[0].upper()}{DIED[1:]} ({self._how(run, now)}).", hint
                    )
            self._advance_sweeps()
            while (claimed := self.store.claim_next_queued(self.max_workers)) is not None:
                self._launch(claimed)
            # Counted first, then checked: a run that ends between the two reads is seen finishing (read
            # the other way round, its worker was taken for neither, and a second warm worker started).
            if self.store.count_runs(statuses.OCCUPYING) < self.max_workers and not self._finishing():
                self.executor.prepare()

    def _finishing(self) -> bool:
        """True while a worker of ours is alive though its run has ended: it is about to report the run
        done and become the warm worker, so no other should start."""
        return any(
            self.executor.alive(run_id) and self.store.get_run(run_id).is_ended for run_id in self._owned
        )

    def _advance_sweeps(self) -> None:
        """Report epochs to the sweeps on Optuna, prune their losing trials and queue their next ones."""
        if not self.store.sweeps.open_searches():
            return
        from cnnlab.runs.queue import sweep_watcher  # Optuna and pandas, only once a sweep on Optuna is open.

        try:
            sweep_watcher.advance_all(self.store)
        except Exception:
            logger.exception("The sweeps could not advance this round; they carry on at the next.")

    def _launch(self, run: RunRecord) -> None:
        try:
            pid = self.executor.submit(run.id)
        except Exception as error:
            self.store.set_status(
                run.id,
                Status.FAILED,
                reason=f"The worker process could not be started: {error}",
                hint="Check that Python can run `python -m cnnlab.runs.worker.main`.",
                traceback=traceback.format_exc(),
            )
            return
        self._owned.add(run.id)
        self.store.heartbeat(run.id, pid)


_shared: dict[Path, Scheduler] = {}
_shared_lock = threading.Lock()
_started_in_background: set[str] = set()


def shared(home: Path | str | None = None, *, max_workers: int | None = None, warm: bool = True) -> Scheduler:
    """The started scheduler of this process for `home` (one per process, e.g. for the Streamlit server)."""
    store = Store(home)
    with _shared_lock:
        if store.home not in _shared:
            _shared[store.home] = Scheduler(store, max_workers=max_workers, warm=warm).start()
        return _shared[store.home]


def shutdown_shared() -> None:
    """Shut down every scheduler `shared` started in this process, as its server stops.

    The warm worker ends at once (it holds no run); workers on runs carry on, and the next server's
    scheduler follows them.
    """
    with _shared_lock:
        schedulers = list(_shared.values())
        _shared.clear()
        _started_in_background.clear()
    for scheduler in schedulers:
        scheduler.shutdown()


def start_in_background(home: Path | str | None = None) -> None:
    """Start `shared(home)` (the scheduler and its warm worker) in a daemon thread, once per process.

    The Streamlit server calls this after its first page is drawn, so the warm worker imports
    TensorFlow while the first visitor reads the page, and no page waits for the scheduler to start.
    """
    key = str(home)
    with _shared_lock:
        if key in _started_in_background:
            return
        _started_in_background.add(key)

    def start() -> None:
        try:
            shared(home)
        except Exception:
            logger.exception("The scheduler could not be started in the background; a page will try again.")

    threading.Thread(target=start, name="cnnlab-scheduler-start", daemon=True).start()
