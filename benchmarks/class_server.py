"""One classroom server for the load benchmarks: `streamlit run app.py` and the runs of a class.

`ClassServer` starts the app on a free port with its own CNNLAB_HOME and a number of training slots
(`CNNLAB_MAX_WORKERS`), queues long digits runs for several owners in the same store (the server's
scheduler gives them fair turns: one trains per slot, the others wait), says which run trains, clears
the slot for a click, reads the server's own CPU time and memory, and ends the server and the workers
it left. `measure_window` reads the server and the training over a window of time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchmarks import process_figures
from benchmarks.streamlit_protocol import PageSession
from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.store import statuses
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
OWNERS = ("student-a", "student-b", "student-c", "student-d")
# A class's run as long as one may be: MNIST's smallest preset on the digits drawn at MNIST's 28x28,
# in batches of 16, for the most epochs a run may ask for (about 1-2 s an epoch on 2 cores, so a run
# outlasts a 10-minute window). The benchmark stops its runs; `fresh_training_run` replaces one that
# would end inside a window.
CLASS_RUN = RunRequest(
    spec=presets.get("mnist_minimal").spec,
    data_settings=specs.DataSettings(dataset="digits", image_size=28),
    training_settings=specs.TrainingSettings(epochs=500, batch_size=16),
)


class ClassServer:
    """The app server of one benchmark, its store and its class's runs (see the module's docstring)."""

    def __init__(self, home: Path, training_slots: int = 1) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "CNNLAB_HOME": str(home), "CNNLAB_MAX_WORKERS": str(training_slots)}
        environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        command += ["--server.port", str(self.port), "--browser.gatherUsageStats", "false"]
        self.log_path = home / "streamlit.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=log)
        self.store = Store(home)
        self.queued_so_far = 0
        self._wait_until_healthy()
        # As the teacher would, open Home once: the first page also starts what a lifespan may not have.
        # On a thread of its own: Playwright's synchronous API may be running a loop on this one.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._open_home()).result()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def _wait_until_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"streamlit ended: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"streamlit did not answer within {timeout:.0f} s")

    async def _open_home(self) -> None:
        home_page = PageSession(self.url, "")
        await home_page.open()
        await home_page.wait_for_page(120)
        await home_page.close()

    def queue_runs(self, count: int) -> None:
        """Queue `count` long runs (`CLASS_RUN`), owners taking turns; the server's scheduler starts them."""
        for _ in range(count):
            self.queued_so_far += 1
            owner = OWNERS[self.queued_so_far % len(OWNERS)]
            name = f"class run {self.queued_so_far}"
            self.store.create_run(dataclasses.replace(CLASS_RUN, owner=owner, name=name))

    def queued_count(self) -> int:
        """How many runs wait in the queue."""
        return len(self.store.queued_runs())

    def training_run(self, timeout: float = 300.0) -> str:
        """The id of the run that trains, once it has ended an epoch (waiting for one if needed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = self.store.list_runs(status=[Status.RUNNING])
            if running and running[0].last_epoch >= 1:
                return running[0].id
            time.sleep(0.2)
        raise SystemExit("No run started training; is the queue empty?")

    def fresh_training_run(self, seconds: float) -> str:
        """The run that trains, if it has epochs enough left for `seconds` more; else it is stopped and
        the next one (queued here if none waits) is taken, once it has ended an epoch."""
        run_id = self.training_run()
        run = self.store.get_run(run_id)
        epochs = self.store.epoch_metrics(run_id)["epoch_seconds"]
        left = (run.training().epochs - run.last_epoch) * float(epochs.median())
        if left >= seconds:
            return run_id
        if not self.store.queued_runs():
            self.queue_runs(1)
        with contextlib.suppress(RunError):  # It ended meanwhile.
            self.store.request_control(run_id, "stop")
        while self.store.get_run(run_id).status in statuses.LIVE:
            time.sleep(0.2)
        return self.training_run()

    def clear_the_slot(self, timeout: float = 120.0) -> None:
        """Take the queued runs out and stop the live ones; return once none is live."""
        for run in self.store.queued_runs():
            with contextlib.suppress(RunError):  # The scheduler may have taken it meanwhile.
                self.store.delete_run(run.id)
        deadline = time.monotonic() + timeout
        while (live := self.store.list_runs(status=statuses.LIVE)) and time.monotonic() < deadline:
            for run in live:
                if self.store.pending_control(run.id) != "stop":
                    with contextlib.suppress(RunError):  # It ended meanwhile.
                        self.store.request_control(run.id, "stop")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """The server's own CPU seconds so far (all its threads; its training workers are processes apart)."""
        return process_figures.cpu_seconds(self.pid)

    def rss_megabytes(self) -> float:
        """The server's resident memory in MB."""
        return process_figures.rss_megabytes(self.pid)

    def worker_cpu(self) -> dict[int, float]:
        """CPU seconds of each training worker (a python process below the server)."""
        return process_figures.group_cpu(self.pid, "python")

    def shutdown(self) -> None:
        """End the server and the workers it leaves running (by design they outlive it)."""
        workers = process_figures.descendants(self.pid)
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def measure_window(
    server: ClassServer, seconds: float, pass_time: Callable[[float], None]
) -> dict[str, float]:
    """Let `seconds` pass (through `pass_time`, which may pump a browser's events) while the class's run
    trains, and measure the server over them: its CPU in cores, its RSS growth, the median epoch of the
    run (its first epoch and any that began before the window left out), the workers' and this
    process's CPU (the clients')."""
    run_id = server.training_run()
    me = os.getpid()
    server_before, clients_before = server.cpu_seconds(), process_figures.cpu_seconds(me)
    workers_before, rss_before = server.worker_cpu(), server.rss_megabytes()
    first_epoch = server.store.get_run(run_id).last_epoch + 1  # The first one to end inside the window.
    started = time.perf_counter()
    pass_time(seconds)
    elapsed = time.perf_counter() - started
    last_epoch = server.store.get_run(run_id).last_epoch
    epochs = server.store.epoch_metrics(run_id)
    inside = epochs[(epochs["epoch"] >= max(2, first_epoch)) & (epochs["epoch"] <= last_epoch)]
    return {
        "server_cores": (server.cpu_seconds() - server_before) / elapsed,
        "client_cores": (process_figures.cpu_seconds(me) - clients_before) / elapsed,
        "worker_cores": process_figures.spent(workers_before, server.worker_cpu()) / elapsed,
        "epoch": statistics.median(inside["epoch_seconds"]) if len(inside) else math.nan,
        "epochs": float(len(inside)),
        "rss_growth": server.rss_megabytes() - rss_before,
    }
