"""Keras callbacks that write a run's files each epoch: telemetry snapshots and checkpoints.

- `TelemetrySnapshots` runs the one validation pass of an epoch (`cnnlab.runs.worker.telemetry`), puts
  `val_loss` and `val_accuracy` into the epoch's logs for the callbacks after it, and writes the
  snapshots (kernels, feature maps, predictions, histograms, confusion matrix);
- `Checkpoints` keeps each epoch's layer weights, the latest whole model and the best one, "best"
  as `cnnlab.store.best` defines it.

Both read `cnnlab.runs.worker.callbacks.FitProgress` and write nothing for a partial or diverged epoch.
The file names and layout are the store's (`cnnlab.store.artifacts`); the layer-weights format
(`save_layer_weights`, `load_layer_weights`) is defined here, next to the callback that writes it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnlab.runs.worker import telemetry
from cnnlab.runs.worker.background_writer import BackgroundWriter
from cnnlab.runs.worker.callbacks import FitProgress
from cnnlab.store import best, retention
from cnnlab.store.run_store import Store


def save_layer_weights(model: keras.Model, path: Path) -> None:
    """Write every layer's weights, without optimizer state, as `<layer name>/<index>` arrays in `.npz`."""
    arrays: dict[str, Any] = {
        f"{layer.name}/{index}": weight
        for layer in model.layers
        for index, weight in enumerate(layer.get_weights())
    }
    np.savez(path, **arrays)


def load_layer_weights(model: keras.Model, path: Path) -> int:
    """Set weights saved by `save_layer_weights` on the layers with the same name and shapes.

    Returns how many layers got their weights; layers added or changed since are left as built.
    Ours, not `Model.load_weights`: Keras pairs layers by type and order, not by name, so a fork that
    adds or changes layers needs its own matching by name (`skip_mismatch` only skips what mismatches).
    """
    with np.load(path) as archive:
        saved = {name: archive[name] for name in archive.files}
    copied = 0
    for layer in model.layers:
        names = [f"{layer.name}/{index}" for index in range(len(layer.weights))]
        if not names or any(name not in saved for name in names):
            continue
        weights = [saved[name] for name in names]
        if [weight.shape for weight in weights] == [tuple(variable.shape) for variable in layer.weights]:
            layer.set_weights(weights)
            copied += 1
    return copied


class TelemetrySnapshots(keras.callbacks.Callback):
    """Validate once per epoch, share the figures through the logs, and write telemetry snapshots.

    At the start of a run's first fit it writes the fixed image panel (epoch 0) and the snapshots
    of the untrained model; a continued run already has them. At the end of every whole epoch it
    runs `Telemetry.validate()` (one pass over the validation images), adds `val_loss`,
    `val_accuracy` and `telemetry_seconds` to the epoch's logs, so `Checkpoints`, `EpochMetrics`,
    `ReduceLROnPlateau` and `EarlyStopping` placed after it can read them, and queues the
    confusion matrix and the other snapshots on the `BackgroundWriter`.

    Args:
        store: The run store.
        run_id: The run being trained.
        watcher: The `cnnlab.runs.worker.telemetry.Telemetry` of the model being fitted.
        progress: The fit's `FitProgress`.
        writer: The fit's `BackgroundWriter`; flushed when training ends.

    Example:

    >>> watcher = telemetry.Telemetry(model, x_val, y_val, class_names)
    >>> progress, writer = FitProgress(), BackgroundWriter()
    >>> snapshots = TelemetrySnapshots(store, run_id, watcher, progress, writer)
    >>> stopping = keras.callbacks.EarlyStopping(monitor="val_accuracy")
    >>> model.fit(x, y, epochs=5, callbacks=[progress, snapshots, stopping])
    >>> store.snapshot_epochs(run_id, "kernels")
    [0, 1, 2, 3, 4, 5]
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        watcher: telemetry.Telemetry,
        progress: FitProgress,
        writer: BackgroundWriter,
    ) -> None:
        super().__init__()
        self.store, self.run_id, self.watcher = store, run_id, watcher
        self.progress, self.writer = progress, writer

    def write_snapshots(self, epoch: int) -> None:
        """Queue every telemetry snapshot of the model as it is now, under `epoch`."""
        for kind, arrays in self.watcher.snapshots().items():
            if arrays:
                self.writer.submit(self.store.write_snapshot, self.run_id, epoch, kind, arrays)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self.store.snapshot_epochs(self.run_id, "panel"):
            # Written on the writer's thread, so the first batch does not wait for the files.
            self.writer.submit(self.store.write_snapshot, self.run_id, 0, "panel", self.watcher.panel())
            self.write_snapshots(self.progress.completed_epochs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or not self.progress.epoch_is_whole():
            return
        started = time.perf_counter()
        validation, confusion = self.watcher.validate()
        logs.update(validation)
        if confusion:
            self.writer.submit(self.store.write_snapshot, self.run_id, epoch + 1, "confusion", confusion)
        self.write_snapshots(epoch + 1)
        logs["telemetry_seconds"] = time.perf_counter() - started

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.writer.flush()


def _same_file(source: Path, path: Path) -> None:
    """Make `path` the file `source` is (a hard link: one model on disk for two names), else a copy.

    Safe because every checkpoint is written to a new file and renamed over the old one: when
    `latest` moves on, `best` keeps the file it names."""
    try:
        os.link(source, path)
    except OSError:  # A file system without hard links.
        shutil.copyfile(source, path)


class Checkpoints(keras.callbacks.Callback):
    """Keep the layer weights of the epochs worth forking from, the latest model and the best model.

    After every whole epoch it writes, through `Store.save_checkpoint`: the epoch's layer weights
    (`epoch_0003.weights.npz`, enough to fork from), the whole model with its optimizer state as
    `latest` (enough to continue), and a copy of it as `best` when the epoch beats the best so far
    by `cnnlab.store.best` (highest `val_accuracy`, else `accuracy`; earliest on ties). Then it
    drops the layer weights of the epochs `cnnlab.store.retention` no longer keeps (neither a
    milestone, nor the latest or best epoch, nor forked from), so a 100-epoch run keeps 9 epochs'
    weights, not 100. It reads the epoch's logs, so it comes after `TelemetrySnapshots`, which adds
    the validation figures. A partial or diverged epoch writes nothing.

    Ours, not `ModelCheckpoint` or `BackupAndRestore`: every file goes through `Store.save_checkpoint`
    (atomic, recorded in SQLite, sent back by a Ray worker), a fork needs layer weights matched by
    name where Keras matches by structure, and a continue starts a later fit, perhaps on another
    machine, from `latest` (`BackupAndRestore` deletes its backup when a fit ends). "Best" is judged
    by the rule `ModelCheckpoint(mode="max", save_best_only=True)` applies (`cnnlab.store.best`).

    Args:
        store: The run store.
        run_id: The run being trained.
        progress: The fit's `FitProgress`.
        best_so_far: For a continued run, the epoch of its `best` checkpoint and that epoch's
            monitored value (None when the value was not recorded); None for a new run.

    Attributes:
        best_epoch: The epoch of the `best` checkpoint, or None before any whole epoch.
        best_value: The monitored value of that epoch (None when it has none).

    Example:

    >>> progress = FitProgress()
    >>> checkpoints = Checkpoints(store, run_id, progress)
    >>> model.fit(x, y, validation_split=0.2, epochs=3, callbacks=[progress, checkpoints])
    >>> store.checkpoints(run_id)["best"] == checkpoints.best_epoch
    True
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        progress: FitProgress,
        best_so_far: tuple[int, float | None] | None = None,
    ) -> None:
        super().__init__()
        self.store, self.run_id, self.progress = store, run_id, progress
        self.best_epoch: int | None = None if best_so_far is None else best_so_far[0]
        self.best_value: float | None = None if best_so_far is None else best_so_far[1]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.progress.epoch_is_whole():
            return
        number = epoch + 1
        self.store.save_checkpoint(
            self.run_id, number, number, lambda path: save_layer_weights(self.model, path)
        )
        latest = self.store.save_checkpoint(self.run_id, "latest", number, self.model.save)
        value = best.monitored_value(logs or {})
        if self.best_epoch is None or best.is_improvement(value, self.best_value):
            self.best_epoch, self.best_value = number, value
            self.store.save_checkpoint(self.run_id, "best", number, lambda path: _same_file(latest, path))
        saved = [
            epoch for name, epoch in self.store.checkpoints(self.run_id).items() if name.startswith("epoch_")
        ]
        forked = self.store.forked_epochs(self.run_id)
        for epoch in retention.epochs_to_drop(saved, number, self.best_epoch, forked):
            self.store.delete_epoch_weights(self.run_id, epoch)
