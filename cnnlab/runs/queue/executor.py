"""How the scheduler starts worker processes: the `Executor` protocol and `LocalProcessExecutor`.

`LocalProcessExecutor` starts `python -m cnnlab.runs.worker.main` on this machine (a fresh interpreter,
never `fork`: TensorFlow deadlocks after it) with its output in the run's `worker.log`, and keeps
one warm worker (TensorFlow imported, waiting for a `TakeRun` message on its input) ready while a
slot is free, so the next run starts without waiting for a TensorFlow import. The messages both ways
are JSON lines, written and read by `cnnlab.runs.queue.worker_messages`.

With `reuse` (the scheduler's default) a worker that ends a run cleanly stays alive: it clears
Keras's state, says so on its output pipe (a `RunDone` message with `more`) and becomes the warm
worker that takes the next run, so runs that queue behind a busy slot start without a TensorFlow import and without
a spare process competing for the cores while a run trains (`benchmarks/warm_workers.py` measures
both). A run that fails, or a worker that has served `MAX_RUNS_PER_WORKER` runs, ends its process,
so a crash or a leak stays with one worker. A cluster executor can implement the same protocol;
`process_alive` tells whether a worker on this machine still exists.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Protocol

import psutil

import cnnlab
from cnnlab.runs.queue import worker_messages
from cnnlab.runs.queue.job import DEFAULT_ENTRY

logger = logging.getLogger(__name__)

WARM_RETRY_SECONDS = 30.0  # after a warm worker dies while waiting, wait this long before the next
MAX_RUNS_PER_WORKER = 25  # a reused worker ends after this many runs, so a slow leak cannot grow for ever
# A submit that finds no warm worker while a reused worker is busy waits this long for it: the
# slot was freed by that worker's run ending, and its `RunDone` message follows the status by milliseconds.
FINISHING_WAIT_SECONDS = 1.0


def process_alive(pid: int) -> bool:
    """True if process `pid` exists on this machine, is not a zombie and (where the system tells) runs CNN Lab."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid the system reused for another program is not our worker.
        return any("cnnlab" in part for part in process.cmdline())
    except psutil.NoSuchProcess:  # Gone, or a zombie by the time its command line was read.
        return False
    except psutil.AccessDenied:  # Another user's process: it exists, but its command line is hidden.
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
    """Runs each worker as `python -m cnnlab.runs.worker.main` on this machine (a fresh interpreter, never fork)."""

    def __init__(
        self,
        home: Path,
        *,
        entry: str = DEFAULT_ENTRY,
        threads: int | None = None,
        warm: bool = True,
        reuse: bool = False,
    ) -> None:
        self.home = Path(home)
        self.entry = entry
        self.threads = threads
        self.warm = warm
        self.reuse = reuse
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._finished: set[str] = set()  # Runs a reused worker reported done (its process lives on).
        self._warm_process: subprocess.Popen[bytes] | None = None
        self._warm_retry_at = 0.0
        self._lock = threading.Lock()
        self._became_idle = threading.Condition(self._lock)

    def _launch(
        self, arguments: list[str], log_path: Path, stdin: int | IO[bytes]
    ) -> subprocess.Popen[bytes]:
        if self.reuse and "--warm" in arguments:
            return self._launch_reusable(log_path)
        command = [sys.executable, "-m", "cnnlab.runs.worker.main", *arguments, "--home", str(self.home)]
        command += ["--entry", self.entry] + (["--threads", str(self.threads)] if self.threads else [])
        environment = self._environment()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                command,
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                close_fds=True,
                start_new_session=True,
            )

    def _launch_reusable(self, log_path: Path) -> subprocess.Popen[bytes]:
        """A warm worker that reports each run it ends on its output pipe and can take another."""
        command = [
            sys.executable,
            "-m",
            "cnnlab.runs.worker.main",
            "--warm",
            "--reuse",
            str(MAX_RUNS_PER_WORKER),
        ]
        command += ["--home", str(self.home), "--entry", self.entry, "--log", str(log_path)]
        command += ["--threads", str(self.threads)] if self.threads else []
        log_path.parent.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # The worker sends its own output to `--log`, then to each run's log.
            env=self._environment(),
            close_fds=True,
            start_new_session=True,
        )
        reader = threading.Thread(
            target=self._read_reports, args=(process,), name=f"cnnlab-worker-{process.pid}", daemon=True
        )
        reader.start()
        return process

    def _read_reports(self, process: subprocess.Popen[bytes]) -> None:
        """Follow a reused worker's reports: a `RunDone` with `more` makes it the warm worker, without not."""
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = worker_messages.decode(line)
            except ValueError:
                logger.warning("Worker %s wrote a line that is no message: %r", process.pid, line)
                continue
            if not isinstance(message, worker_messages.RunDone):
                continue
            with self._lock:
                self._finished.add(message.run_id)
                if message.more and self._warm_process is None and process.poll() is None:
                    self._warm_process = process
                    self._became_idle.notify_all()
                elif message.more:
                    # One warm worker is enough: let this one go (it exits when its input closes).
                    self._let_go(process)
        process.stdout.close()

    def _environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        # The worker imports the same cnnlab as this process, installed or not.
        package_root = str(Path(cnnlab.__file__).resolve().parents[1])
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_root, environment.get("PYTHONPATH")])
        )
        return environment

    @staticmethod
    def _let_go(process: subprocess.Popen[bytes]) -> None:
        """Close a waiting worker's input, so it exits instead of waiting for another run."""
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def prepare(self) -> None:
        """Start a warm worker unless one is already waiting (or warm workers are off)."""
        with self._lock:
            process = self._warm_process
            if process is not None and process.poll() is None:
                return
            if process is not None:
                # The warm worker died while waiting; try again later, not in a loop.
                self._warm_process = None
                self._warm_retry_at = time.monotonic() + WARM_RETRY_SECONDS
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
            if self._warm_process is None and self._busy_reusable():
                self._became_idle.wait(FINISHING_WAIT_SECONDS)
            process, self._warm_process = self._warm_process, None
            if process is not None and process.stdin is not None and process.poll() is None:
                process = process if self._hand_over(process, run_id) else None
            else:
                process = None
            if process is None and self.reuse:
                process = self._launch(
                    ["--warm"], self.home / "runs" / run_id / "worker.log", subprocess.PIPE
                )
                process = process if self._hand_over(process, run_id) else None
            if process is None:
                log_path = self.home / "runs" / run_id / "worker.log"
                process = self._launch([run_id], log_path, subprocess.DEVNULL)
            self._processes[run_id] = process
            self._finished.discard(run_id)
            return process.pid

    def _hand_over(self, process: subprocess.Popen[bytes], run_id: str) -> bool:
        """Hand the run to a waiting worker (a `TakeRun` message); a worker that is not reused gets no second one."""
        assert process.stdin is not None
        try:
            process.stdin.write(worker_messages.encode(worker_messages.TakeRun(run_id)))
            process.stdin.flush()
            if not self.reuse:
                process.stdin.close()
        except OSError:
            return False
        return True

    def _busy_reusable(self) -> bool:
        """True if a reused worker is still on a run (it may be about to report it done)."""
        return self.reuse and any(
            process.poll() is None and run_id not in self._finished
            for run_id, process in self._processes.items()
        )

    def alive(self, run_id: str) -> bool:
        """True while the run's worker process has not exited nor reported the run done."""
        process = self._processes.get(run_id)
        return process is not None and process.poll() is None and run_id not in self._finished

    def describe_exit(self, run_id: str) -> str:
        """ "exit code N", "killed by SIGKILL", "still running", or that a reused worker ended the run."""
        process = self._processes.get(run_id)
        code = None if process is None else process.poll()
        if run_id in self._finished:
            return (
                f"the worker finished the run ({'exit code ' + str(code) if code is not None else 'reused'})"
            )
        if code is None:
            return "still running" if process is not None else "not started here"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def cancel(self, run_id: str) -> None:
        """Kill the run's worker process and wait for it (not once a reused worker has moved on)."""
        process = self._processes.get(run_id)
        if process is not None and process.poll() is None and run_id not in self._finished:
            process.kill()
            process.wait(timeout=10)

    def forget(self, run_id: str) -> None:
        """Drop a finished worker from the table."""
        with self._lock:
            self._processes.pop(run_id, None)
            self._finished.discard(run_id)

    def shutdown(self) -> None:
        """End the warm worker at once (it holds no run, and may still be importing TensorFlow, which
        would take a core for seconds after its server stopped); running workers carry on, then exit."""
        with self._lock:
            process, self._warm_process = self._warm_process, None
            for busy in self._processes.values():
                self._let_go(busy)  # A reused worker on a run ends after it instead of waiting for more.
        if process is not None:
            process.kill()
            process.wait()
