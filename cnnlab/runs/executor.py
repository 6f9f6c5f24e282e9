"""How the scheduler starts worker processes: the `Executor` protocol and `LocalProcessExecutor`.

`LocalProcessExecutor` starts `python -m cnnlab.runs.worker` on this machine (a fresh interpreter,
never `fork`: TensorFlow deadlocks after it) with its output in the run's `worker.log`, and keeps
one warm worker (TensorFlow imported, waiting for a run id on its input) ready while a slot is
free, so the first metrics of the next run arrive in about a second. A cluster executor can
implement the same protocol; `process_alive` tells whether a worker on this machine still exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Protocol

import cnnlab
from cnnlab.runs.job import DEFAULT_ENTRY

WARM_RETRY_SECONDS = 30.0  # after a warm worker dies while waiting, wait this long before the next


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

    def _launch(
        self, arguments: list[str], log_path: Path, stdin: int | IO[bytes]
    ) -> subprocess.Popen[bytes]:
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
                command,
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                close_fds=True,
                start_new_session=True,
            )

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
