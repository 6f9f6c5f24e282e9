"""How soon the scheduler reacts: a stop reaching a worker, and a killed worker's run marked interrupted.

Both use the real training job (the default digits preset on the built-in digits, many epochs) in
a cold worker. Stop: seconds from `Scheduler.stop` to the run's status `stopped` (the worker
stops after its current batch). Death: seconds from SIGKILL to the status `interrupted` ("The
worker process died", ready to continue from its last complete epoch), which the scheduler notices
on its next watch (every 0.1 s here, 0.5 s in the app).
The warm worker's head start is measured by benchmarks/first_metric_latency.py.

    python benchmarks/scheduler_reactions.py [--repeats 3]

Prints figures; never fails on a timing. Goals on a 2-core machine: stop under 2 s, death under 3 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.store.run_store import Store


def _until(condition: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"Gave up waiting: {what}.")
        time.sleep(0.01)


def reaction_seconds(runner: Scheduler, action: str) -> float:
    """Start a long run, wait for its first batches, then stop or kill it; return the seconds to its end."""
    store = runner.store
    run = runner.submit(
        RunRequest(
            spec=presets.get(presets.DEFAULT_PRESET).spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=200),
        )
    )
    _until(lambda: len(store.batch_metrics(run.id)) >= 5, "the first batches")
    started = time.perf_counter()
    if action == "stop":
        runner.stop(run.id)
    else:
        pid = store.get_run(run.id).worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    _until(lambda: store.get_run(run.id).is_ended, "the end of the run")
    seconds = time.perf_counter() - started
    print(f"  {action}: {seconds:.2f} s, ended {store.get_run(run.id).status}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    results: dict[str, list[float]] = {"stop": [], "kill": []}
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        runner = Scheduler(
            store, LocalProcessExecutor(store.home, warm=False), max_workers=1, poll_seconds=0.1
        )
        runner.start()
        try:
            for _ in range(arguments.repeats):
                for action, seconds in results.items():
                    seconds.append(reaction_seconds(runner, action))
        finally:
            runner.shutdown(kill_workers=True)
    for action, seconds in results.items():
        print(f"{action}: median {statistics.median(seconds):.2f} s to the run's end")


if __name__ == "__main__":
    main()
