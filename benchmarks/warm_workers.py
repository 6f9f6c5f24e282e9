"""How long a queued run waits for its worker: a cold process, a spare warmed while a run trains, or reuse.

Several digits runs are queued at once behind one slot (`max_workers=1`, the worker gets both
cores' threads). For each run after the first this prints the gap from the end of the run before
it to its own first batch metric in the store (the time a student stares at "starting"), the
median epoch time of all runs (does the way of warming slow the training that runs meanwhile?),
the whole queue's wall time, the handover (from that end to the run's "took the run" event: the
warm-worker mechanism alone, without the run's own data loading, model build and tracing) and the
CPU seconds all worker processes used per run (robust to other load on the machine). The three ways:

- cold: every run starts a fresh `python -m cnnlab.runs.worker.main` that imports TensorFlow;
- spare: a warm worker is prepared as soon as the previous one took a run, so it imports
  TensorFlow while that run trains (option (a) of issue 13.3; one process per run);
- reuse: the worker that ends a run clears Keras's state and takes the next (option (b), what the
  scheduler does by default).

    python benchmarks/warm_workers.py [--runs 3] [--epochs 4] [--modes cold,spare,reuse]

Prints figures; never fails on a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.store.run_store import Store

MODES = ("cold", "spare", "reuse")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, in seconds."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def wait_until_idle(executor: LocalProcessExecutor, timeout: float = 180.0) -> None:
    """Wait until the warm worker exists and has used no CPU for a second (its import is over)."""
    started, previous = time.monotonic(), None
    while time.monotonic() - started < timeout:
        pid = executor.warm_process_id
        if pid is not None:
            seconds = cpu_seconds(pid)
            if seconds == previous:
                return
            previous = seconds
        time.sleep(1.0)
    raise SystemExit("The warm worker did not become idle.")


def keep_a_spare(executor: LocalProcessExecutor, stop: threading.Event) -> None:
    """Option (a): prepare a warm worker whenever there is none, even while every slot is busy."""
    while not stop.wait(0.5):
        executor.prepare()


def worker_processes() -> list[int]:
    """The worker processes this process started (its children running `cnnlab.runs.worker.main`)."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "cnnlab.runs.worker.main" in child.cmdline():
                found.append(child.pid)
    return found


def sample_worker_cpu(seen: dict[int, float], stop: threading.Event) -> None:
    """Keep the latest CPU seconds of every worker process, until `stop` (they may exit at any time)."""
    while not stop.wait(0.25):
        for pid in worker_processes():
            with contextlib.suppress(psutil.Error):
                seen[pid] = max(seen.get(pid, 0.0), cpu_seconds(pid))


def measure(mode: str, runs: int, epochs: int) -> dict[str, float]:
    """Queue `runs` digits runs behind one slot; return the queue gaps, epoch time and total time."""
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        executor = LocalProcessExecutor(store.home, threads=2, warm=mode != "cold", reuse=mode == "reuse")
        scheduler = Scheduler(store, executor, max_workers=1, poll_seconds=0.1).start()
        stop, seconds = threading.Event(), dict[int, float]()
        threading.Thread(target=sample_worker_cpu, args=(seconds, stop), daemon=True).start()
        spare_keeper = threading.Thread(target=keep_a_spare, args=(executor, stop), daemon=True)
        try:
            if mode != "cold":
                wait_until_idle(executor)
            if mode == "spare":
                spare_keeper.start()
            started = time.time()
            queued = [
                scheduler.submit(
                    RunRequest(
                        spec=presets.get(presets.DEFAULT_PRESET).spec,
                        data_settings=specs.DataSettings(),
                        training_settings=specs.TrainingSettings(epochs=epochs),
                    )
                )
                for _ in range(runs)
            ]
            ended = [scheduler.wait(run.id, timeout=600) for run in queued]
        finally:
            stop.set()
            scheduler.shutdown()
        worker_cpu = sum(seconds.values())
        gaps, handovers = [], []
        for before, run in itertools.pairwise(ended):
            first_metric = float(store.batch_metrics(run.id)["time"].min())
            gaps.append(first_metric - (before.ended_at or first_metric))
            events = store.events(run.id)
            took = events[events["message"].str.contains("took the run")]["time"].min()
            handovers.append(float(took) - (before.ended_at or float(took)))
        epoch_seconds = [
            float(value) for run in ended for value in store.epoch_metrics(run.id)["epoch_seconds"]
        ]
        pids = {run.worker_pid for run in ended}
        return {
            "handover": statistics.median(handovers),
            "worker_cpu": worker_cpu / runs,
            "gap": statistics.median(gaps),
            "gap_max": max(gaps),
            "epoch": statistics.median(epoch_seconds),
            "total": max(run.ended_at or 0.0 for run in ended) - started,
            "processes": float(len(pids)),
            "completed": float(sum(run.status == "completed" for run in ended)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--modes", default=",".join(MODES))
    arguments = parser.parse_args()
    print(f"{arguments.runs} queued digits runs of {arguments.epochs} epochs behind one slot:")
    print(
        "mode   | handover | queue gap median (max) | median epoch | whole queue | worker CPU per run "
        "| worker processes | completed"
    )
    for mode in arguments.modes.split(","):
        figures = measure(mode, arguments.runs, arguments.epochs)
        print(
            f"{mode:6} | {figures['handover']:6.2f} s | {figures['gap']:6.2f} s ({figures['gap_max']:5.2f} s)    | "
            f"{figures['epoch']:8.2f} s   | {figures['total']:8.1f} s  | {figures['worker_cpu']:14.1f} s   | "
            f"{figures['processes']:16.0f} | "
            f"{figures['completed']:.0f}"
        )


if __name__ == "__main__":
    main()
