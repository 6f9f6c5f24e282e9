"""The queue of training runs: a concurrency limit, warm workers, and watching over workers.

`Scheduler.submit` records a queued run; the scheduler starts queued runs in order while fewer
than `max_workers` runs hold a slot (`starting` or `running`; a paused run holds none), hands
each to an `Executor`, and watches the workers: a worker process that dies is marked `failed`
("the worker process died") within about a second, and at start-up a run whose process is gone
becomes `interrupted`. Several schedulers may share one store (the Streamlit server and a CLI):
claims are atomic and the limit counts every run in the store.

Launching processes sits behind the small `Executor` protocol; `LocalProcessExecutor` starts
`python -m cnnlab.runs.worker` on this machine and keeps one warm worker (TensorFlow imported,
waiting for a run id) ready while a slot is free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Protocol

import cnnlab
from cnnlab.errors import RunError
from cnnlab.runs import statuses
from cnnlab.runs.job import DEFAULT_ENTRY
from cnnlab.runs.records import RunRecord
from cnnlab.runs.store import Store
from cnnlab.runs.threads import default_max_workers, default_threads

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
STALE_SECONDS = 30.0  # a run with no heartbeat for this long has lost its worker
DIED = "the worker process died"


def process_alive(pid: int) -> bool:
    """True if process `pid` exists on this machine, is not a zombie and (where /proc tells) runs CNN Lab."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    process_folder = Path(f"/proc/{pid}")
    with contextlib.suppress(OSError):
        if process_folder.exists():
            state = (process_folder / "stat").read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z" and b"cnnlab" in (process_folder / "cmdline").read_bytes()
    return True


class Executor(Protocol):
    """Starts and watches worker processes; a cluster executor can implement the same methods."""

    def submit(self, run_id: str) -> int:
        """Start a worker for a run the store already marked `starting`; return its process id."""
        ...

    def alive(self, run_id: str) -> bool:
        """True while the worker of a submitted run is alive."""
        ...

    def describe_exit(self, run_id: str) -> str:
        """How the worker ended, for a failure message (e.g. "killed by SIGKILL")."""
        ...

    def cancel(self, run_id: str) -> None:
        """End the worker at once (a polite stop goes through the store instead)."""
        ...

    def forget(self, run_id: str) -> None:
        """Drop what it keeps about a run whose worker has ended."""
        ...

    def prepare(self) -> None:
        """Get ready for the next submit (for example start a warm worker)."""
        ...

    def shutdown(self) -> None:
        """Release idle resources; running workers carry on and stay in the store."""
        ...


class LocalProcessExecutor:
    """Runs each worker as `python -m cnnlab.runs.worker` on this machine (a fresh interpreter, never fork)."""

    def __init__(
        self,
        home: Path,
        *,
        entry: str = DEFAULT_ENTRY,
        threads: int | None = None,
        warm: bool = True,
    ) -> None:
        self.home = Path(home)
        self.entry = entry
        self.threads = threads
        self.warm = warm
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._warm_process: subprocess.Popen[bytes] | None = None
        self._warm_retry_at = 0.0
        self._lock = threading.Lock()

    def _launch(self, arguments: list[str], log_path: Path, stdin: Any) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "cnnlab.runs.worker", *arguments, "--home", str(self.home)]
        command += ["--entry", self.entry] + (["--threads", str(self.threads)] if self.threads else [])
        environment = dict(os.environ)
        # The worker imports the same cnnlab as this process, installed or not.
        package_root = str(Path(cnnlab.__file__).resolve().parents[1])
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_root, environment.get("PYTHONPATH")])
        )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                command, stdin=stdin, stdout=log, stderr=subprocess.STDOUT, env=environment,
                close_fds=True, start_new_session=True,
            )  # fmt: skip

    def prepare(self) -> None:
        """Start a warm worker unless one is already waiting (or warm workers are off)."""
        with self._lock:
            process = self._warm_process
            if process is not None and process.poll() is None:
                return
            if process is not None:
                # The warm worker died while waiting; try again in 30 seconds, not in a loop.
                self._warm_process = None
                self._warm_retry_at = time.monotonic() + 30.0
            if self.warm and time.monotonic() >= self._warm_retry_at:
                log_path = self.home / "workers" / f"warm-{time.strftime('%Y%m%d-%H%M%S')}.log"
                self._warm_process = self._launch(["--warm"], log_path, subprocess.PIPE)

    @property
    def warm_process_id(self) -> int | None:
        """The process id of the warm worker waiting for a run, if there is one."""
        process = self._warm_process
        return process.pid if process is not None and process.poll() is None else None

    def submit(self, run_id: str) -> int:
        """Hand the run to the warm worker if there is one, else start a cold worker."""
        with self._lock:
            process, self._warm_process = self._warm_process, None
            if process is not None and process.stdin is not None and process.poll() is None:
                try:
                    process.stdin.write(f"{run_id}\n".encode())
                    process.stdin.close()
                except OSError:
                    process = None
            else:
                process = None
            if process is None:
                log_path = self.home / "runs" / run_id / "worker.log"
                process = self._launch([run_id], log_path, subprocess.DEVNULL)
            self._processes[run_id] = process
            return process.pid

    def alive(self, run_id: str) -> bool:
        """True while the run's worker process has not exited."""
        process = self._processes.get(run_id)
        return process is not None and process.poll() is None

    def describe_exit(self, run_id: str) -> str:
        """ "exit code N", "killed by SIGKILL", or "still running"."""
        process = self._processes.get(run_id)
        code = None if process is None else process.poll()
        if code is None:
            return "still running" if process is not None else "not started here"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def cancel(self, run_id: str) -> None:
        """Kill the run's worker process and wait for it."""
        process = self._processes.get(run_id)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def forget(self, run_id: str) -> None:
        """Drop a finished worker from the table."""
        self._processes.pop(run_id, None)

    def shutdown(self) -> None:
        """Let the warm worker go (it exits when its input closes); running workers carry on."""
        with self._lock:
            process, self._warm_process = self._warm_process, None
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()


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
        self.executor: Executor = executor or LocalProcessExecutor(
            self.store.home, threads=threads, warm=warm
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

    def submit(
        self, *, spec: Any, data_settings: Any, training_settings: Any, probes: Any = None, **details: Any
    ) -> RunRecord:
        """Queue a new run (see `Store.create_run` for the details) and start it if a slot is free.

        `probes` (float32 images shaped like the model input) become the run's `probes` snapshot
        before it can start, so its telemetry follows them from the first epoch.
        """
        run = self.store.create_run(
            spec=spec, data_settings=data_settings, training_settings=training_settings, **details
        )
        if probes is not None and len(probes):
            self.store.write_snapshot(run.id, 0, "probes", {"images": probes})
        self.tick()
        return self.store.get_run(run.id)

    def requeue(self, run_id: str) -> RunRecord:
        """Queue an ended run again (a continue); its job resumes from the latest checkpoint."""
        self.store.set_status(run_id, statuses.QUEUED)
        self.tick()
        return self.store.get_run(run_id)

    def continue_run(self, run_id: str, more_epochs: int) -> RunRecord:
        """Queue a completed, stopped or interrupted run for `more_epochs` more, from its latest checkpoint."""
        run = self.store.get_run(run_id)
        done = self.store.checkpoints(run.id).get("latest")
        if run.status not in statuses.CONTINUABLE or done is None:
            raise RunError(
                f"Run {run.id} is {run.status} with {done or 0} epoch(s) saved; only a completed, stopped or "
                "interrupted run with a checkpoint can be continued. Fork it from an earlier epoch instead."
            )
        if more_epochs < 1:
            raise RunError(f"Continue for at least 1 more epoch; got {more_epochs}.")
        settings = dataclasses.replace(run.training(), epochs=done + more_epochs)
        self.store.set_training_settings(run.id, settings)
        return self.requeue(run.id)

    def fork(self, run_id: str, epoch: int, training_settings: Any = None, **details: Any) -> RunRecord:
        """Queue a new run that starts from run `run_id`'s weights after `epoch`, with new training settings.

        The fork records its parent and parent epoch, and starts with the parent's epoch metrics up to there.
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
        if int(getattr(settings, "epochs", 0)) <= epoch:
            raise RunError(
                f"A fork from epoch {epoch} must train to a later epoch; got epochs={settings.epochs}."
            )
        details.setdefault("name", f"{parent.name} (fork of epoch {epoch})")
        details.setdefault("owner", parent.owner)
        run = self.store.create_run(
            spec=parent.spec, data_settings=parent.data_settings, training_settings=settings,
            parent_id=parent.id, parent_epoch=epoch, **details,
        )  # fmt: skip
        self.store.copy_epoch_metrics(parent.id, run.id, epoch)
        self.tick()
        return self.store.get_run(run.id)

    def stop(self, run_id: str) -> RunRecord:
        """Stop a run: a queued run at once, a live one after its current batch (through the store)."""
        run = self.store.get_run(run_id)
        if run.status == statuses.QUEUED:
            with contextlib.suppress(RunError):
                self.store.set_status(run.id, statuses.STOPPED, reason="Stopped before it started.")
        elif run.status in statuses.LIVE:
            self.store.request_control(run.id, "stop")
        return self.store.get_run(run.id)

    def pause(self, run_id: str) -> None:
        """Ask a running run to pause between batches."""
        self.store.request_control(run_id, "pause")

    def resume(self, run_id: str) -> None:
        """Ask a paused run to carry on."""
        self.store.request_control(run_id, "resume")

    def kill(self, run_id: str) -> None:
        """End a run's worker at once (status stopped); use when a polite stop gets no answer."""
        run = self.store.get_run(run_id)
        if run.status in statuses.ACTIVE:
            with contextlib.suppress(RunError):
                self.store.set_status(run.id, statuses.STOPPED, reason="Killed by the user.")
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

    def _end(self, run: RunRecord, status: str, reason: str, hint: str) -> None:
        with contextlib.suppress(RunError):  # The worker may have finished the run meanwhile.
            self.store.set_status(run.id, status, reason=reason, hint=hint, expected=statuses.LIVE)

    def reconcile(self) -> list[str]:
        """At start-up: mark `interrupted` every live run whose worker is gone; return their ids."""
        now, interrupted = time.time(), []
        for run in self.store.list_runs(status=statuses.LIVE):
            if run.id not in self._owned and self._gone(run, now):
                hint = "Continue it from its latest checkpoint, or fork it from an earlier epoch."
                self._end(
                    run, statuses.INTERRUPTED, "The worker process was gone when CNN Lab restarted.", hint
                )
                interrupted.append(run.id)
        return interrupted

    def tick(self) -> None:
        """One round of watching: mark dead workers failed, start queued runs, keep a warm worker."""
        with self._lock:
            now = time.time()
            hint = "The metrics and checkpoints recorded before it died are kept; fork or continue from them."
            for run_id in list(self._owned):
                if self.executor.alive(run_id):
                    continue
                self._owned.discard(run_id)
                run = self.store.get_run(run_id)
                if run.status in statuses.LIVE:
                    how = self.executor.describe_exit(run_id)
                    self._end(run, statuses.FAILED, f"{DIED[0].upper()}{DIED[1:]} ({how}).", hint)
                    self.store.log_event(run_id, f"{DIED} ({how})", level="error")
                self.executor.forget(run_id)
            for run in self.store.list_runs(status=statuses.LIVE):
                if run.id not in self._owned and self._gone(run, now):
                    self._end(run, statuses.FAILED, f"{DIED[0].upper()}{DIED[1:]} (no heartbeat).", hint)
            while (run := self.store.claim_next_queued(self.max_workers)) is not None:
                self._launch(run)
            if self.store.count_runs(statuses.OCCUPYING) < self.max_workers:
                self.executor.prepare()

    def _launch(self, run: RunRecord) -> None:
        try:
            pid = self.executor.submit(run.id)
        except Exception as error:
            self.store.set_status(
                run.id, statuses.FAILED, reason=f"The worker process could not be started: {error}",
                hint="Check that Python can run `python -m cnnlab.runs.worker`.", traceback=traceback.format_exc(),
            )  # fmt: skip
            return
        self._owned.add(run.id)
        self.store.heartbeat(run.id, pid)


_shared: dict[Path, Scheduler] = {}
_shared_lock = threading.Lock()


def shared(home: Path | str | None = None, **options: Any) -> Scheduler:
    """The started scheduler of this process for `home` (one per process, e.g. for the Streamlit server)."""
    store = Store(home)
    with _shared_lock:
        if store.home not in _shared:
            _shared[store.home] = Scheduler(store, **options).start()
        return _shared[store.home]
