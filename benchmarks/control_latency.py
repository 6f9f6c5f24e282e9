"""How fast a training worker answers the user's pause, resume and stop requests.

Trains the default digits preset on the built-in digits in a real worker process started by the
scheduler (as the app does), and measures, from the moment the request is in the store:

- pause: until the run's status is `paused` (the worker answers between batches);
- resume: until a new batch metric arrives;
- stop: until the run's status is `stopped` (the worker answers between batches and ends).

A killed worker and `Scheduler.stop` are measured from the scheduler's side by
benchmarks/scheduler_reactions.py.

    python benchmarks/control_latency.py [--repeats 3] [--threads 1]

Prints figures; never fails on a timing. Goal on a 2-core machine: each within 2 s. The tests
assert only the behaviour (nothing recorded while paused but the batch in flight, the final status).
"""

from __future__ import annotations

import argparse
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
from cnnlab.store.statuses import Status

POLL_SECONDS = 0.005
GIVE_UP_SECONDS = 300.0


def seconds_until(condition: Callable[[], object], what: str) -> float:
    """Poll `condition` every 5 ms; return the seconds until it held (exit if it never does)."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > GIVE_UP_SECONDS:
            raise SystemExit(f"Gave up waiting for {what}.")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def one_round(runner: Scheduler) -> dict[str, float]:
    """Submit one long run and measure its pause, resume and stop."""
    store = runner.store
    spec = presets.get(presets.DEFAULT_PRESET).spec
    settings = specs.TrainingSettings(epochs=500, batch_size=16)

    def status(run_id: str) -> Status:
        return store.get_run(run_id).status

    figures: dict[str, float] = {}
    run_id = runner.submit(
        RunRequest(spec=spec, data_settings=specs.DataSettings(), training_settings=settings)
    ).id
    seconds_until(lambda: store.get_run(run_id).last_epoch >= 1, "the first epoch")
    store.request_control(run_id, "pause")
    figures["pause"] = seconds_until(lambda: status(run_id) == Status.PAUSED, "paused")
    rows = len(store.batch_metrics(run_id))
    store.request_control(run_id, "resume")
    figures["resume"] = seconds_until(lambda: len(store.batch_metrics(run_id)) > rows, "a batch after resume")
    store.request_control(run_id, "stop")
    figures["stop"] = seconds_until(lambda: status(run_id) == Status.STOPPED, "stopped")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads of the worker")
    arguments = parser.parse_args()
    pooled: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        executor = LocalProcessExecutor(store.home, threads=arguments.threads, warm=False)
        runner = Scheduler(store, executor, max_workers=1, poll_seconds=0.1).start()
        try:
            for repeat in range(arguments.repeats):
                figures = one_round(runner)
                print(
                    f"round {repeat + 1}: "
                    + ", ".join(f"{name} {value:.3f} s" for name, value in figures.items())
                )
                for name, value in figures.items():
                    pooled.setdefault(name, []).append(value)
        finally:
            runner.shutdown(kill_workers=True)
    print(
        "median: " + ", ".join(f"{name} {statistics.median(values):.3f} s" for name, values in pooled.items())
    )


if __name__ == "__main__":
    main()
