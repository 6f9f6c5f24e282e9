"""The process that runs one training job.

Started by the scheduler's executor as a fresh interpreter (`python -m cnnlab.runs.worker RUN_ID`),
never by `fork`: TensorFlow deadlocks in a forked child. A warm worker
(`python -m cnnlab.runs.worker --warm`) imports TensorFlow first and then waits for a run id on its
standard input, so a run starts training as soon as it is handed over.

The worker sets TensorFlow's thread counts before TensorFlow starts, sends a heartbeat to the
store from a background thread, calls the job function (`cnnlab.runs.training:run` unless told
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
import traceback
from collections.abc import Sequence
from pathlib import Path

from cnnlab.errors import CnnLabError, RunError
from cnnlab.runs import threads
from cnnlab.runs.job import DEFAULT_ENTRY, Control, Job, Outcome
from cnnlab.runs.statuses import Status
from cnnlab.runs.store import Store

HEARTBEAT_SECONDS = 1.0


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


def load_job(entry: str = DEFAULT_ENTRY, *, warm_up: bool = False) -> Job:
    """Import the job function named `module:function` (this imports TensorFlow for the default).

    With `warm_up`, also call the module's `warm_up()` if it has one (start TensorFlow's runtime).
    """
    module_name, _, function_name = entry.partition(":")
    module = importlib.import_module(module_name)
    threads.apply_tensorflow_threads()
    if warm_up and callable(getattr(module, "warm_up", None)):
        module.warm_up()
    function = getattr(module, function_name or "run", None)
    if not callable(function):
        raise RunError(
            f"The job entry {entry!r} names no function in {module_name}; "
            "give it as module:function, for example cnnlab.runs.training:run."
        )
    job: Job = function
    return job


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


def run_job(run_id: str, store: Store, job: Job | str = DEFAULT_ENTRY) -> Status:
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
                run_id, Status.FAILED, reason=reason, hint=hint, traceback=traceback.format_exc()
            )
        if not isinstance(error, Exception):
            raise
        return Status.FAILED
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
    """`python -m cnnlab.runs.worker [RUN_ID | --warm] [--home H] [--entry module:function] [--threads N]`."""
    parser = argparse.ArgumentParser(prog="python -m cnnlab.runs.worker", description="Run one training job.")
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
    threads.configure_threads(arguments.threads)
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
    return 0 if status != Status.FAILED else 1


if __name__ == "__main__":
    raise SystemExit(main())
