"""What recording costs: epoch time with the worker and full telemetry over a bare `model.fit`.

Trains the minimal MNIST CNN on MNIST-sized data (10,000 images of 28x28: MNIST itself when its
file is in the Keras cache, else CNN Lab's generated shapes) three times in one go: a bare
`model.fit` here, the same run through the scheduler and a worker process with everything
switched on (batch and epoch metrics, kernels, feature maps, predictions, confusion matrix,
histograms, layer health, diagnoses, checkpoints), then the bare fit again. Epoch time
includes validation in both. The first epoch (tracing) is left out; the ratios compare the
medians of the others (wall and CPU time), and the fastest epochs, which other load on the
machine disturbs least.

    python benchmarks/telemetry_overhead.py [--epochs 4] [--batch-size 128] [--rounds 5]

Prints figures and the ratio; never fails on a timing. Goal (issue 15): a median CPU-time ratio of at
most 1.03 over at least five rounds (`--rounds 5`), with layer health and diagnoses switched on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab.runs.worker import threads

THREADS = threads.configure_threads(max(1, os.cpu_count() or 1))

import keras  # noqa: E402

from cnnlab import specs  # noqa: E402
from cnnlab.data import datasets  # noqa: E402
from cnnlab.data.info import SplitData  # noqa: E402
from cnnlab.model import presets  # noqa: E402
from cnnlab.run_request import RunRequest  # noqa: E402
from cnnlab.runs.queue.executor import LocalProcessExecutor  # noqa: E402
from cnnlab.runs.queue.scheduler import Scheduler  # noqa: E402
from cnnlab.runs.worker import training  # noqa: E402
from cnnlab.store.run_store import Store  # noqa: E402


def data_settings() -> specs.DataSettings:
    """10,000 images of 28x28: MNIST if available offline, else eight generated shapes."""
    if datasets.info("mnist").available:
        return specs.DataSettings(dataset="mnist", subset=10_000)
    classes = ["circle", "square", "triangle", "star", "cross", "diamond", "ring", "hexagon"]
    options = {"count_per_class": 1250, "classes": classes}
    return specs.DataSettings(dataset="shapes", image_size=28, color_mode="grayscale", options=options)


class EpochTimer(keras.callbacks.Callback):
    """Wall and CPU seconds from the start of each epoch to its end (validation included)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started, self._cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)
        self.cpu_seconds.append(time.process_time() - self._cpu_started)


Timings = tuple[list[float], list[float]]  # wall seconds and CPU seconds per epoch


def bare_fit(spec: specs.ModelSpec, settings: specs.TrainingSettings, data: SplitData) -> Timings:
    """Epoch times of a plain compile and fit with validation data, nothing recorded."""
    model = training.new_model(spec, settings)
    timer = EpochTimer()
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_data=(data.x_val, data.y_val),
        callbacks=[timer],
        verbose=0,
    )
    return timer.seconds, timer.cpu_seconds


def worker_fit(spec: specs.ModelSpec, settings: specs.TrainingSettings, data: specs.DataSettings) -> Timings:
    """Epoch times recorded by a worker process with full telemetry, through the scheduler."""
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        executor = LocalProcessExecutor(store.home, threads=THREADS, warm=False)
        runner = Scheduler(store, executor, max_workers=1).start()
        try:
            run = runner.wait(
                runner.submit(RunRequest(spec=spec, data_settings=data, training_settings=settings)).id
            )
            if run.status != "completed":
                raise SystemExit(f"The worker run ended {run.status}: {run.reason}\n{run.traceback}")
            table = store.epoch_metrics(run.id)
            print(f"    telemetry seconds per epoch: {_figures(table['telemetry_seconds'])}")
            return table["epoch_seconds"].tolist(), table["cpu_seconds"].tolist()
        finally:
            runner.shutdown()


def _figures(values: object) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5, help="bare and worker runs, alternating")
    arguments = parser.parse_args()
    settings_for_data = data_settings()
    data = datasets.load(settings_for_data)
    spec = presets.adapt(presets.get("mnist_minimal").spec, data.image_shape, data.num_classes)
    settings = specs.TrainingSettings(epochs=arguments.epochs, batch_size=arguments.batch_size)
    print(
        f"{data.info.name}: {len(data.y_train)} training and {len(data.y_val)} validation images of "
        f"{data.image_shape}; {spec.name}; batch size {settings.batch_size}; {THREADS} threads; "
        f"{settings.epochs} epochs per run, the first left out; {arguments.rounds} rounds"
    )
    pooled: dict[str, tuple[list[float], list[float]]] = {"bare": ([], []), "worker": ([], [])}
    for round_number in range(arguments.rounds):
        for name in ("bare", "worker"):
            print(f"  round {round_number + 1}, {name}:")
            wall, cpu = (
                bare_fit(spec, settings, data)
                if name == "bare"
                else worker_fit(spec, settings, settings_for_data)
            )
            print(f"    wall seconds per epoch: {_figures(wall)}; CPU seconds: {_figures(cpu)}")
            pooled[name][0].extend(wall[1:])
            pooled[name][1].extend(cpu[1:])
    bare_wall, bare_cpu = (statistics.median(values) for values in pooled["bare"])
    worker_wall, worker_cpu = (statistics.median(values) for values in pooled["worker"])
    print(f"bare fit: {bare_wall:.3f} s per epoch ({len(data.y_train) / bare_wall:,.0f} training images/s)")
    print(f"worker + telemetry: {worker_wall:.3f} s per epoch")
    print(f"epoch-time ratio (worker + telemetry / bare): {worker_wall / bare_wall:.3f} (goal <= 1.03)")
    print(f"epoch CPU-time ratio (less sensitive to other load): {worker_cpu / bare_cpu:.3f}")
    fastest = min(pooled["worker"][0]) / min(pooled["bare"][0])
    print(f"fastest-epoch ratio (the least disturbed epoch of each): {fastest:.3f}")


if __name__ == "__main__":
    main()
