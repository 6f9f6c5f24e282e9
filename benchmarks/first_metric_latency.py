"""How soon the first batch metric reaches the store after a submit: cold, warm, and a reused warm worker.

Cold: the scheduler starts a fresh `python -m cnnlab.runs.worker.main` that imports TensorFlow. Warm: a
worker started earlier has imported TensorFlow and warmed up, and waits for a run id. Reused: the
worker that trained the run before takes the next one (the server's default). Each measurement
submits the default digits preset on the built-in digits (one epoch), as Home's "Train a digits
classifier" does, and polls the store every 10 ms until the first batch metric is there, as a page
would; the run's "took the run" event splits that into the hand-over and the worker's own part.

The baseline, measured in the same run, is a bare `model.fit` of the same model and data in a
process that has imported TensorFlow: the seconds from `fit` to the end of its first batch (Keras
traces its training step there). With `--compare DIR` the CNN Lab in DIR (for example the last
commit, `git archive HEAD | tar -x -C DIR`) is measured the same way, alternating rounds.

    python benchmarks/first_metric_latency.py [--repeats 2] [--compare DIR]

Prints figures with the load average; never fails on a timing. Goal: warm at most 1.5 s on a
2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from cnnlab.run_request import RunRequest

ROOT = Path(__file__).resolve().parents[1]
BARE_FIT = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from cnnlab.runs.worker import threads
threads.configure_threads(None)
import keras
threads.apply_tensorflow_threads()
from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.model import presets
from cnnlab.runs.worker import training

class FirstBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.seconds = time.perf_counter() - started

data = datasets.load(specs.DataSettings())
model = training.new_model(presets.get(presets.DEFAULT_PRESET).spec, specs.TrainingSettings(epochs=1))
first = FirstBatch()
started = time.perf_counter()
model.fit(data.x_train, data.y_train, batch_size=32, epochs=1, verbose=0, callbacks=[first])
print(json.dumps({"bare": first.seconds}))
"""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, in seconds."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def wait_until_idle(executor: Any, timeout: float = 180.0) -> None:
    """Wait until the warm worker exists and has used no CPU for a second."""
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


def first_metric(runner: Any) -> dict[str, float]:
    """Submit one run; the seconds to the worker taking it and to its first batch metric in the store."""
    from cnnlab import specs
    from cnnlab.model import presets

    submitted_at, submitted = time.time(), time.perf_counter()
    run = runner.submit(
        RunRequest(
            spec=presets.get(presets.DEFAULT_PRESET).spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=1),
        )
    )
    while runner.store.batch_metrics(run.id).empty:
        if runner.store.get_run(run.id).is_ended:
            raise SystemExit(f"The run ended before its first metric: {runner.store.get_run(run.id).reason}")
        time.sleep(0.01)
    latency = time.perf_counter() - submitted
    events = runner.store.events(run.id)
    took = events[events["message"].str.contains("took the run")]["time"]
    runner.wait(run.id, timeout=180)
    return {"first": latency, "took": float(took.iloc[0]) - submitted_at if len(took) else float("nan")}


def measure_here() -> dict[str, list[dict[str, float]]]:
    """In this process (its cnnlab): one cold run, then a warm worker's run and a reused worker's run."""
    from cnnlab.runs.queue.executor import LocalProcessExecutor
    from cnnlab.runs.queue.scheduler import Scheduler
    from cnnlab.store.run_store import Store

    results: dict[str, list[dict[str, float]]] = {}
    for warm in (False, True):
        with tempfile.TemporaryDirectory() as home:
            store = Store(home)
            executor = LocalProcessExecutor(store.home, warm=warm, reuse=warm)
            runner = Scheduler(store, executor, max_workers=1).start()
            try:
                if not warm:
                    results["cold"] = [first_metric(runner)]
                    continue
                wait_until_idle(executor)
                results["warm"] = [first_metric(runner)]
                wait_until_idle(executor)
                results["reused"] = [first_metric(runner)]
            finally:
                runner.shutdown()
    return results


def run_json(arguments: list[str]) -> dict[str, Any]:
    """Run a child Python and return the JSON of its last output line."""
    output = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, check=True, env=dict(os.environ)
    ).stdout
    loaded: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compare", type=Path, default=None, help="another CNN Lab checkout to measure too")
    parser.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.root is not None:  # A child: measure the CNN Lab at `--root`.
        sys.path.insert(0, str(arguments.root))
        print(json.dumps(measure_here()))
        return
    roots = {"this": ROOT, **({"compare": arguments.compare.resolve()} if arguments.compare else {})}
    collected: dict[str, dict[str, list[dict[str, float]]]] = {name: {} for name in roots}
    bare: list[float] = []
    for _ in range(arguments.repeats):
        bare.append(run_json(["-c", BARE_FIT, str(ROOT)])["bare"])
        for name, root in roots.items():
            child = run_json([str(Path(__file__).resolve()), "--root", str(root)])
            for kind, values in child.items():
                collected[name].setdefault(kind, []).extend(values)
    baseline = statistics.median(bare)
    print(f"load average {os.getloadavg()[0]:.1f}; a bare model.fit's first batch: median {baseline:.2f} s")
    for name, kinds in collected.items():
        for kind, values in kinds.items():
            first = statistics.median(value["first"] for value in values)
            took = statistics.median(value["took"] for value in values)
            figures = ", ".join(f"{value['first']:.2f}" for value in values)
            print(
                f"{name} {kind}: first batch metric {first:.2f} s ({figures}); the worker took it at "
                f"{took:.2f} s; {first / baseline:.2f}x a bare fit's first batch"
            )


if __name__ == "__main__":
    main()
