"""How soon the first batch metric reaches the store after a submit, cold and with a warm worker.

Cold: the scheduler starts a fresh `python -m cnnlab.runs.worker` that imports TensorFlow. Warm: a
worker started earlier has imported TensorFlow and run a throwaway fit, and waits for a run id.
Each measurement submits the default digits preset on the built-in digits (one epoch) and
polls the store every 10 ms until the first batch metric is there, as a page would.

    python benchmarks/first_metric_latency.py [--repeats 3]

Prints figures; never fails on a timing. Goal: warm at most 1.5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.runs.executor import LocalProcessExecutor
from cnnlab.runs.scheduler import Scheduler
from cnnlab.runs.store import Store


def cpu_ticks(pid: int) -> int:
    """User and system CPU time of a process so far, in clock ticks (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_until_idle(executor: LocalProcessExecutor, timeout: float = 120.0) -> float:
    """Wait until the warm worker exists and has used no CPU for a second; return the seconds waited."""
    started = time.monotonic()
    previous = None
    while time.monotonic() - started < timeout:
        pid = executor.warm_process_id
        if pid is not None:
            ticks = cpu_ticks(pid)
            if ticks == previous:
                return time.monotonic() - started
            previous = ticks
        time.sleep(1.0)
    raise SystemExit("The warm worker did not become idle.")


def first_metric_seconds(runner: Scheduler) -> float:
    """Submit one run; return the seconds until its first batch metric is in the store."""
    spec = presets.get(presets.DEFAULT_PRESET).spec
    submitted = time.perf_counter()
    run = runner.submit(
        spec=spec, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings(epochs=1)
    )
    while runner.store.batch_metrics(run.id).empty:
        if runner.store.get_run(run.id).is_ended:
            raise SystemExit(f"The run ended before its first metric: {runner.store.get_run(run.id).reason}")
        time.sleep(0.01)
    latency = time.perf_counter() - submitted
    runner.wait(run.id, timeout=120)
    return latency


def measure(warm: bool, repeats: int) -> list[float]:
    """Latencies of `repeats` runs, one after the other, with or without a warm worker."""
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        executor = LocalProcessExecutor(store.home, warm=warm)
        runner = Scheduler(store, executor, max_workers=1, poll_seconds=0.1).start()
        latencies = []
        try:
            for _ in range(repeats):
                if warm:
                    wait_until_idle(executor)
                latencies.append(first_metric_seconds(runner))
        finally:
            runner.shutdown()
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    results = {"cold": measure(False, arguments.repeats), "warm": measure(True, arguments.repeats)}
    for name, latencies in results.items():
        figures = ", ".join(f"{value:.2f}" for value in latencies)
        print(f"{name}: median {statistics.median(latencies):.2f} s to the first batch metric ({figures})")
    ratio = statistics.median(results["cold"]) / statistics.median(results["warm"])
    print(f"a warm worker is {ratio:.1f}x sooner (goal: warm <= 1.5 s)")


if __name__ == "__main__":
    main()
