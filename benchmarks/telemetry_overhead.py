"""What recording costs: epoch time with the worker and full telemetry over a bare `model.fit`.

Trains the minimal MNIST CNN on MNIST-sized data (10,000 images of 28x28: MNIST itself when its
file is in the Keras cache, else CNN Lab's generated shapes) three times in one go: a bare
`model.fit` here, the same run through the scheduler and a worker process with everything
switched on (batch and epoch metrics, kernels, feature maps, predictions, confusion matrix,
histograms, checkpoints), then the bare fit again. Epoch time includes validation in both. The
first epoch (tracing) is left out; the ratio compares the medians of the others.

    python benchmarks/telemetry_overhead.py [--epochs 4] [--batch-size 128]

Prints figures and the ratio; never fails on a timing. Goal: a ratio of at most 1.05.
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

from cnnlab import worker

THREADS = worker.configure_threads(max(1, os.cpu_count() or 1))

import keras  # noqa: E402

from cnnlab import datasets, presets, specs, training  # noqa: E402
from cnnlab.scheduler import LocalProcessExecutor, Scheduler  # noqa: E402
from cnnlab.store import Store  # noqa: E402


def data_settings() -> specs.DataSettings:
    """10,000 images of 28x28: MNIST if available offline, else eight generated shapes."""
    if datasets.info("mnist").available:
        return specs.DataSettings(dataset="mnist", subset=10_000)
    options = {"count_per_class": 1250, "classes": ["circle", "square", "triangle", "star", "cross", "diamond",
                                                    "ring", "hexagon"]}  # fmt: skip
    return specs.DataSettings(dataset="shapes", image_size=28, color_mode="grayscale", options=options)


class EpochTimer(keras.callbacks.Callback):
    """Seconds from the start of each epoch to its end (validation included)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)


def bare_fit(
    spec: specs.ModelSpec, settings: specs.TrainingSettings, data: datasets.SplitData
) -> list[float]:
    """Epoch times of a plain compile and fit with validation data, nothing recorded."""
    model = training.new_model(spec, settings)
    timer = EpochTimer()
    model.fit(
        data.x_train, data.y_train, batch_size=settings.batch_size, epochs=settings.epochs,
        validation_data=(data.x_val, data.y_val), callbacks=[timer], verbose=0,
    )  # fmt: skip
    return timer.seconds


def worker_fit(
    spec: specs.ModelSpec, settings: specs.TrainingSettings, data_settings: specs.DataSettings
) -> list[float]:
    """Epoch times recorded by a worker process with full telemetry, through the scheduler."""
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        runner = Scheduler(
            store, LocalProcessExecutor(store.home, threads=THREADS, warm=False), max_workers=1
        )
        runner.start()
        try:
            run = runner.submit(spec=spec, data_settings=data_settings, training_settings=settings)
            run = runner.wait(run.id)
            if run.status != "completed":
                raise SystemExit(f"The worker run ended {run.status}: {run.reason}\n{run.traceback}")
            table = store.epoch_metrics(run.id)
            telemetry = table["telemetry_seconds"].tolist()
            print(f"  worker telemetry seconds per epoch: {', '.join(f'{value:.3f}' for value in telemetry)}")
            print(f"  worker validation accuracy: {table['val_accuracy'].iloc[-1]:.4f}")
            return table["epoch_seconds"].tolist()
        finally:
            runner.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    arguments = parser.parse_args()
    settings_for_data = data_settings()
    data = datasets.load(settings_for_data)
    spec = presets.adapt(presets.get("mnist_minimal").spec, data.image_shape, data.num_classes)
    settings = specs.TrainingSettings(epochs=arguments.epochs, batch_size=arguments.batch_size)
    print(
        f"{data.info.name}: {len(data.y_train)} training and {len(data.y_val)} validation images of "
        f"{data.image_shape}; {spec.name}; batch size {settings.batch_size}; {THREADS} threads; "
        f"{settings.epochs} epochs (the first is left out)"
    )
    runs = {"bare (before)": bare_fit(spec, settings, data)}
    runs["worker + telemetry"] = worker_fit(spec, settings, settings_for_data)
    runs["bare (after)"] = bare_fit(spec, settings, data)
    medians = {}
    for name, seconds in runs.items():
        medians[name] = statistics.median(seconds[1:])
        print(f"  {name:<20} epoch seconds: {', '.join(f'{value:.3f}' for value in seconds)}")
    bare = (medians["bare (before)"] + medians["bare (after)"]) / 2
    images_per_second = len(data.y_train) / bare
    print(f"bare fit: {bare:.3f} s per epoch ({images_per_second:,.0f} training images/s)")
    print(f"worker + telemetry: {medians['worker + telemetry']:.3f} s per epoch")
    print(
        f"epoch-time ratio (worker + telemetry / bare): {medians['worker + telemetry'] / bare:.3f} (goal <= 1.05)"
    )


if __name__ == "__main__":
    main()
