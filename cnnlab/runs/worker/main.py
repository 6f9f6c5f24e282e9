"""The process that runs one training job.

Started by the scheduler's executor as a fresh interpreter (`python -m cnnlab.runs.worker.main RUN_ID`),
never by `fork`: TensorFlow deadlocks in a forked child. A warm worker
(`python -m cnnlab.runs.worker.main --warm`) imports TensorFlow (without the scikit-learn Keras would
import for wrappers CNN Lab never uses), runs a first run's path once on a throwaway model
(`cnnlab.runs.worker.first_step.warm_up`; skipped when a run id is waiting already) and then waits for a
`TakeRun` message on its standard input, so a run starts training as soon as it is handed over. With
`--reuse N` it takes up to N runs one after the other: after each it reports a `RunDone` message
(with `more` if it waits for another) on its standard output, which the executor reads (JSON lines,
`cnnlab.runs.queue.worker_messages`), then clears Keras's state while it waits for
the next run id; each run's output goes to that run's `worker.log`, and a failed run ends the process.

The worker sets TensorFlow's thread counts before TensorFlow starts, sends a heartbeat to the
store from a background thread, calls the job function (`cnnlab.runs.worker.training:run` unless told
otherwise) with a `Control` that answers stop, pause and resume requests between batches, and
records how the run ended: the job's `Outcome`, or `failed` with the traceback and a reason a
user can read.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import select
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from cnnlab.errors import CnnLabError, RunError
from cnnlab.runs.queue import worker_messages
from cnnlab.runs.queue.job import DEFAULT_ENTRY, Control, Job, Outcome
from cnnlab.runs.worker import devices, threads
from cnnlab.store.run_store import DatabaseError, Store
from cnnlab.store.statuses import Status

HEARTBEAT_SECONDS = 1.0
HEARTBEAT_HINT = (
    "Check that the disk holding CNNLAB_HOME has free space and is writable, and that no other program "
    "locks runs.sqlite3; the metrics and checkpoints recorded before are kept."
)
# After this many failed beats in a row the worker ends the run itself and says why, well before
# the scheduler would give up on it for a stale heartbeat (`cnnlab.runs.queue.scheduler.STALE_SECONDS`).
FAILED_BEATS_LIMIT = 10

# The level of the events that are technical details (processes, warm starts), which the Train page
# shows one click away, below the learner's events.
TECHNICAL = "debug"


class Heartbeat:
    """A daemon thread that records, every `interval` seconds, that this process is alive.

    A beat that cannot be recorded is written to standard error (the run's `worker.log`) and, when
    the store still takes it, to the run's events as a warning. After `failed_beats_limit` failures
    in a row, `failure` says why and `on_give_up` is called (the worker then stops the job and
    records that reason), so the run does not later fail for "no heartbeat" without a cause.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        interval: float | None = None,
        *,
        failed_beats_limit: int | None = None,
        on_give_up: Callable[[], object] | None = None,
    ) -> None:
        # The defaults are read when a heartbeat starts, so a test can shorten them.
        self._store, self._run_id = store, run_id
        self._interval = HEARTBEAT_SECONDS if interval is None else interval
        self._failed_beats_limit = FAILED_BEATS_LIMIT if failed_beats_limit is None else failed_beats_limit
        self._on_give_up = on_give_up
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)
        self.failed_beats = 0  # Failed beats in a row.
        self.last_error: str | None = None
        self.failure: str | None = None  # Set once the beats have failed too often in a row.

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
            except Exception as error:  # Any failure, expected (disk, lock) or a bug, is reported below.
                self._failed(error)
            else:
                if self.failed_beats:
                    self._recovered()

    def _failed(self, error: Exception) -> None:
        """Report a failed beat on stderr and in the run's events; give up after too many in a row."""
        self.failed_beats += 1
        text = f"{type(error).__name__}: {error}"
        print(
            f"cnnlab worker {os.getpid()}: heartbeat {self.failed_beats} in a row for run {self._run_id} "
            f"failed: {text}",
            file=sys.stderr,
            flush=True,
        )
        if not isinstance(error, DatabaseError | OSError | CnnLabError):
            traceback.print_exc(file=sys.stderr)
        if text != self.last_error:
            self._log(f"The heartbeat could not be recorded ({text}); training carries on.", "warning")
        self.last_error = text
        if self.failed_beats >= self._failed_beats_limit and self.failure is None:
            self.failure = (
                f"The worker could not record its heartbeat {self.failed_beats} times in a row "
                f"(last error: {text}), so it stopped the run."
            )
            self._log(self.failure, "error")
            if self._on_give_up is not None:
                self._on_give_up()

    def _recovered(self) -> None:
        self._log(f"The heartbeat was recorded again after {self.failed_beats} failed beat(s).", "info")
        self.failed_beats, self.last_error = 0, None

    def _log(self, message: str, level: str) -> None:
        """An event for the run, if the store takes it (stderr already has the failure)."""
        try:
            self._store.log_event(self._run_id, message, level=level)
        except (DatabaseError, OSError, CnnLabError) as error:
            print(
                f"cnnlab worker {os.getpid()}: could not log {message!r}: {error}",
                file=sys.stderr,
                flush=True,
            )


def load_job(entry: str = DEFAULT_ENTRY, *, warm_up: bool = False, slot_folder: Path | None = None) -> Job:
    """Import the job function named `module:function` (this imports TensorFlow for the default).

    Once TensorFlow is imported, set up this worker's device (`cnnlab.runs.worker.devices`; `slot_folder`
    holds the slot locks that share out several GPUs). With `warm_up`, also call the module's
    `warm_up()` if it has one (start TensorFlow's runtime), unless a run id is already waiting on
    standard input: that run then starts at once and warms the worker itself.
    """
    module_name, _, function_name = entry.partition(":")
    with _keras_without_sklearn():
        module = importlib.import_module(module_name)
    threads.apply_tensorflow_threads()
    if "tensorflow" in sys.modules:
        devices.apply_tensorflow_device(slot_folder)
    if warm_up and callable(getattr(module, "warm_up", None)) and not _run_waiting():
        module.warm_up()
    function = getattr(module, function_name or "run", None)
    if not callable(function):
        raise RunError(
            f"The job entry {entry!r} names no function in {module_name}; "
            "give it as module:function, for example cnnlab.runs.worker.training:run."
        )
    job: Job = function
    return job


@contextlib.contextmanager
def _keras_without_sklearn() -> Iterator[None]:
    """Let Keras be imported without scikit-learn, which it imports only for its `keras.wrappers`.

    CNN Lab never uses those wrappers, and the import costs a cold worker one to three seconds on a
    2-core machine. Inside, `import sklearn` raises ImportError (Keras then leaves its wrappers
    without it); afterwards scikit-learn imports as usual.
    """
    if "keras" in sys.modules or "sklearn" in sys.modules:
        yield
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # None in sys.modules makes its import fail.
    try:
        yield
    finally:
        if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
            del sys.modules["sklearn"]


def _run_waiting() -> bool:
    """True if a run id is waiting on standard input (the executor handed one over already)."""
    try:
        readable, _, _ = select.select([sys.stdin], [], [], 0)
    except (OSError, ValueError, TypeError):  # No selectable standard input (closed, or replaced).
        return False
    return bool(readable)


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


def run_job(run_id: str, store: Store, job: Job | str = DEFAULT_ENTRY, *, served: int = 0) -> Status:
    """Run `job` (a function or its `module:function` name) for the run, with a heartbeat and a `Control`.

    Records the final status in the store and returns it; an exception becomes `failed` with its
    traceback, a readable reason and a hint. `served` counts the runs this process had taken before
    (a warm worker says so in the run's events).
    """
    control = Control(store, run_id)
    heartbeat = Heartbeat(store, run_id, on_give_up=lambda: _stop_job(control)).start()
    try:
        how = "" if isinstance(job, str) else f" (warm: the job was loaded before; run {served + 1} of it)"
        # The learner reads "Training started"; which process took the run is a technical detail.
        store.log_event(run_id, f"worker process {os.getpid()} took the run{how}", level=TECHNICAL)
        store.log_event(run_id, "Training started")
        function = load_job(job, slot_folder=store.home / "workers") if isinstance(job, str) else job
        if devices.chosen_device() is not None:  # This process set up TensorFlow's device (`load_job`).
            _record_device(store, run_id)
        outcome = function(run_id, store, control) or Outcome()
        if heartbeat.failure is not None:
            outcome = Outcome(Status.FAILED, reason=heartbeat.failure, hint=HEARTBEAT_HINT)
        store.set_status(run_id, outcome.status, reason=outcome.reason, hint=outcome.hint)
        if outcome.finish is not None:
            _finish(store, run_id, outcome.finish)
        return outcome.status
    except BaseException as error:
        reason, hint = _failure_reason(error)
        if heartbeat.failure is not None:
            reason, hint = f"{heartbeat.failure} Then: {reason}", HEARTBEAT_HINT
        # The run may have ended already (the scheduler gave up on it); then keep what is there.
        try:
            store.set_status(
                run_id, Status.FAILED, reason=reason, hint=hint, traceback=traceback.format_exc()
            )
        except (RunError, DatabaseError, OSError) as recording_error:
            print(
                f"Run {run_id} failed ({reason}); recording that failed: {recording_error}", file=sys.stderr
            )
        if not isinstance(error, Exception):
            raise
        return Status.FAILED
    finally:
        heartbeat.stop()


def _finish(store: Store, run_id: str, finish: Callable[[], None]) -> None:
    """Run the work a job left for after its status (`Outcome.finish`); a failure is said in the run's
    events, as the run itself has ended as it should."""
    try:
        finish()
    except Exception as error:
        store.log_event(
            run_id, f"The work after the run ended failed: {type(error).__name__}: {error}", "warning"
        )


def _record_device(store: Store, run_id: str) -> None:
    """Say in the run's events and results which device it trains on (the job's results keep it)."""
    device = devices.describe_device()
    store.log_event(run_id, f"training on {device}")
    store.set_results(run_id, {**(store.get_run(run_id).results or {}), "device": device})


def _stop_job(control: Control) -> None:
    """Make the job's next `should_stop()` answer True (the heartbeat gave up)."""
    control.stop_requested = True


def clear_between_runs() -> None:
    """Forget what the last run left in Keras (models, layer names, graphs) before a reused worker's next run.

    Seeds are set by each run from its own settings; the job modules keep no other state between runs.
    """
    if "keras" in sys.modules:
        import keras

        keras.backend.clear_session(free_memory=True)  # This collects the garbage too.
    else:
        gc.collect()


def _next_run_id() -> str | None:
    """The run id of the next `TakeRun` message on standard input; None when the input closes."""
    line = sys.stdin.readline()
    if not line.strip():
        return None
    message = worker_messages.decode(line)
    if not isinstance(message, worker_messages.TakeRun):
        raise RunError(
            f"A worker reads TakeRun messages on its input; got {message!r}. "
            "Hand runs over with cnnlab.runs.queue.worker_messages.encode(TakeRun(run_id))."
        )
    return message.run_id


def serve(store: Store, job: Job, runs: int, report: TextIO) -> int:
    """Take up to `runs` run ids from stdin one after the other; report each ended run on `report`.

    Returns the exit code: 1 after a failed run (a fresh worker takes the next), else 0. Keras's
    state is cleared right after a run is reported done, while the worker waits, so the next run
    does not wait for it.
    """
    for served in range(runs):
        run_id = _next_run_id()
        if run_id is None:
            return 0  # The executor let this worker go.
        _redirect_output(store.run_folder(run_id) / "worker.log")
        status = run_job(run_id, store, job, served=served)
        more = status != Status.FAILED and served + 1 < runs
        try:
            report.write(worker_messages.encode(worker_messages.RunDone(run_id, more)).decode())
            report.flush()
        except (BrokenPipeError, ValueError):
            return 0  # The server went away: nothing will hand this worker another run.
        if not more:
            return 1 if status == Status.FAILED else 0
        clear_between_runs()
    return 0


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
    """`python -m cnnlab.runs.worker.main [RUN_ID | --warm [--reuse N]] [--home H] [--entry module:function] [--threads N]`."""
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab.runs.worker.main", description="Run one training job."
    )
    parser.add_argument("run_id", nargs="?", help="the run to train (omit with --warm)")
    parser.add_argument(
        "--warm", action="store_true", help="import TensorFlow, then read a run id from stdin"
    )
    parser.add_argument("--home", type=Path, default=None, help="the CNN Lab data folder")
    parser.add_argument("--entry", default=DEFAULT_ENTRY, help="the job function, module:function")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads")
    parser.add_argument(
        "--reuse", type=int, default=0, help="with --warm: take up to N runs, reporting each on stdout"
    )
    parser.add_argument("--log", type=Path, default=None, help="with --reuse: where output goes until a run")
    arguments = parser.parse_args(argv)
    if bool(arguments.warm) == bool(arguments.run_id):
        parser.error("give either a RUN_ID or --warm")
    threads.configure_threads(arguments.threads)
    try:
        threads.lower_priority()
    except CnnLabError as error:  # The run goes on at the server's priority; the log says why.
        print(f"{error} Training at the server's priority.", file=sys.stderr)
    with contextlib.suppress(CnnLabError):  # A bad device setting fails the run itself, with its reason.
        devices.configure_environment()
    store = Store(arguments.home)
    job: Job | str
    if arguments.warm and arguments.reuse > 0:
        # Standard output is the executor's pipe: keep it for the reports, send the rest to the log.
        report = os.fdopen(os.dup(1), "w", encoding="utf-8")
        _redirect_output(arguments.log or store.home / "workers" / f"reused-{os.getpid()}.log")
        job = load_job(arguments.entry, warm_up=True, slot_folder=store.home / "workers")
        return serve(store, job, arguments.reuse, report)
    if arguments.warm:
        job = load_job(arguments.entry, warm_up=True, slot_folder=store.home / "workers")
        waiting = _next_run_id()
        if waiting is None:
            return 0  # The scheduler went away before handing over a run.
        run_id = waiting
        _redirect_output(store.run_folder(run_id) / "worker.log")
    else:
        run_id, job = arguments.run_id, arguments.entry
    status = run_job(run_id, store, job)
    return 0 if status != Status.FAILED else 1


if __name__ == "__main__":
    raise SystemExit(main())
