"""The process that runs one training job.

Started by the scheduler's executor as a fresh interpreter (`python -m cnnlab.worker RUN_ID`),
never by `fork`: TensorFlow deadlocks in a forked child. A warm worker
(`python -m cnnlab.worker --warm`) imports TensorFlow first and then waits for a run id on its
standard input, so a run starts training as soon as it is handed over.

The worker sets TensorFlow's thread counts before TensorFlow starts, sends a heartbeat to the
store from a background thread, calls the job function (`cnnlab.training:run` unless told
otherwise) with a `Control` that answers stop, pause and resume requests between batches, and
records how the run ended: the job's `Outcome`, or `failed` with the traceback and a reason a
user can read.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnlab import statuses
from cnnlab.errors import CnnLabError, RunError
from cnnlab.store import Store

DEFAULT_ENTRY = "cnnlab.training:run"
HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    """How a job ended: `completed`, `stopped` or `diverged`, with an optional reason and hint."""

    status: str = statuses.COMPLETED
    reason: str | None = None
    hint: str | None = None


Job = Callable[[str, Store, "Control"], "Outcome | None"]


class Control:
    """The job's view of stop, pause and resume requests, asked between batches.

    `should_stop()` reads the store at most once per `poll_seconds`, so calling it after every
    batch costs next to nothing. A pause blocks inside `should_stop()` (status `paused`) until a
    resume (status back to `running`) or a stop arrives; the model and optimizer stay in memory.
    """

    def __init__(self, store: Store, run_id: str, poll_seconds: float = 0.2) -> None:
        self.store = store
        self.run_id = run_id
        self.poll_seconds = poll_seconds
        self.stop_requested = False
        self._last_poll = 0.0

    def should_stop(self, *, force_poll: bool = False) -> bool:
        """True once a stop was requested; handles a pause by waiting here until resume or stop."""
        if self.stop_requested:
            return True
        now = time.monotonic()
        if not force_poll and now - self._last_poll < self.poll_seconds:
            return False
        self._last_poll = now
        action = self.store.pending_control(self.run_id)
        if action == "pause":
            self._pause()
        elif action == "resume":
            self.store.clear_control(self.run_id, "resume")
        elif action == "stop":
            self.stop_requested = True
        return self.stop_requested

    def _pause(self) -> None:
        if self.store.get_run(self.run_id).status != statuses.RUNNING:
            return  # A pause asked for while starting waits until the run is running.
        self.store.set_status(self.run_id, statuses.PAUSED)
        self.store.clear_control(self.run_id, "pause")
        while True:
            time.sleep(min(self.poll_seconds, 0.1))
            action = self.store.pending_control(self.run_id)
            if action == "stop":
                self.stop_requested = True
                return
            if action == "resume":
                self.store.set_status(self.run_id, statuses.RUNNING)
                self.store.clear_control(self.run_id, "resume")
                return


class Heartbeat:
    """A daemon thread that records, every `interval` seconds, that this process is alive."""

    def __init__(self, store: Store, run_id: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self._store, self._run_id, self._interval = store, run_id, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def start(self) -> Heartbeat:
        """Send the first beat now and then keep beating in the background."""
        self._store.heartbeat(self._run_id, os.getpid())
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating (the last beat stays in the store)."""
        self._stopped.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._store.heartbeat(self._run_id, os.getpid())
            except Exception:
                # A missed beat must never end the run; the next one will do.
                continue


def configure_threads(threads: int | None = None) -> int:
    """Set TensorFlow's thread counts and log level in the environment; call before TensorFlow starts.

    `threads` defaults to `$CNNLAB_WORKER_THREADS`, else the cores shared among `$CNNLAB_MAX_WORKERS`.
    Returns the intra-op thread count.
    """
    if threads is None:
        text = os.environ.get("CNNLAB_WORKER_THREADS", "").strip()
        threads = int(text) if text.isdigit() and int(text) > 0 else None
    if threads is None:
        from cnnlab.scheduler import default_threads

        threads = default_threads()
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(min(2, threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return threads


def apply_tensorflow_threads() -> None:
    """Apply the thread counts set by `configure_threads` through `tf.config` once TensorFlow is imported."""
    if "tensorflow" not in sys.modules:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
    except (RuntimeError, KeyError):
        # TensorFlow was already initialised; the environment variables took effect instead.
        pass


def load_job(entry: str = DEFAULT_ENTRY, *, warm_up: bool = False) -> Job:
    """Import the job function named `module:function` (this imports TensorFlow for the default).

    With `warm_up`, also call the module's `warm_up()` if it has one (start TensorFlow's runtime).
    """
    module_name, _, function_name = entry.partition(":")
    module = importlib.import_module(module_name)
    apply_tensorflow_threads()
    if warm_up and callable(getattr(module, "warm_up", None)):
        module.warm_up()
    return getattr(module, function_name or "run")


def _failure_reason(error: BaseException) -> tuple[str, str | None]:
    """A reason and a hint a user can read, for an exception that ended a run."""
    if isinstance(error, CnnLabError):
        return str(error), None
    if isinstance(error, MemoryError):
        return "Training ran out of memory.", "Use a smaller batch size, smaller images or a smaller model."
    return (
        f"Training failed with {type(error).__name__}: {error}",
        "This looks like a bug in CNN Lab or an unusual setting; the traceback is kept with the run.",
    )


def run_job(run_id: str, store: Store, job: Job | str = DEFAULT_ENTRY) -> str:
    """Run `job` (a function or its `module:function` name) for the run, with a heartbeat and a `Control`.

    Records the final status in the store and returns it; an exception becomes `failed` with its
    traceback, a readable reason and a hint.
    """
    heartbeat = Heartbeat(store, run_id).start()
    try:
        store.log_event(run_id, f"worker process {os.getpid()} took the run")
        function = load_job(job) if isinstance(job, str) else job
        outcome = function(run_id, store, Control(store, run_id)) or Outcome()
        store.set_status(run_id, outcome.status, reason=outcome.reason, hint=outcome.hint)
        return outcome.status
    except BaseException as error:
        reason, hint = _failure_reason(error)
        # The run may have ended already (the scheduler gave up on it); then keep what is there.
        with contextlib.suppress(RunError):
            store.set_status(
                run_id, statuses.FAILED, reason=reason, hint=hint, traceback=traceback.format_exc()
            )
        if not isinstance(error, Exception):
            raise
        return statuses.FAILED
    finally:
        heartbeat.stop()


def _redirect_output(path: Path) -> None:
    """Send this process's stdout and stderr (TensorFlow's C++ logs included) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m cnnlab.worker [RUN_ID | --warm] [--home H] [--entry module:function] [--threads N]`."""
    parser = argparse.ArgumentParser(prog="python -m cnnlab.worker", description="Run one training job.")
    parser.add_argument("run_id", nargs="?", help="the run to train (omit with --warm)")
    parser.add_argument(
        "--warm", action="store_true", help="import TensorFlow, then read a run id from stdin"
    )
    parser.add_argument("--home", type=Path, default=None, help="the CNN Lab data folder")
    parser.add_argument("--entry", default=DEFAULT_ENTRY, help="the job function, module:function")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads")
    arguments = parser.parse_args(argv)
    if bool(arguments.warm) == bool(arguments.run_id):
        parser.error("give either a RUN_ID or --warm")
    configure_threads(arguments.threads)
    store = Store(arguments.home)
    job: Job | str
    if arguments.warm:
        job = load_job(arguments.entry, warm_up=True)
        line = sys.stdin.readline().strip()
        if not line:
            return 0  # The scheduler went away before handing over a run.
        run_id = line
        _redirect_output(store.run_folder(run_id) / "worker.log")
    else:
        run_id, job = arguments.run_id, arguments.entry
    status = run_job(run_id, store, job)
    return 0 if status != statuses.FAILED else 1


if __name__ == "__main__":
    raise SystemExit(main())
