"""Keras callbacks that record a fit in the run store and obey the user's stop and pause.

Each callback does one job, in the style of Keras's own (`keras.callbacks.EarlyStopping`):

- `FitProgress` counts epochs, batches and steps and says whether an epoch ran whole; the
  others read it, so a partial (stopped) or diverged epoch is never recorded as an epoch;
- `StopOnDivergence` stops at the first NaN or infinite loss and remembers where it happened;
- `BatchMetrics` writes a batch's loss, accuracy and learning rate, at most four times a second;
- `ControlRequests` obeys stop and pause requests between batches (`cnnlab.runs.queue.job.Control`);
- `TelemetrySnapshots` (in `cnnlab.runs.worker.artifact_callbacks`) runs the validation pass, puts
  `val_loss` and `val_accuracy` into the epoch's logs and writes the telemetry snapshots;
- `Checkpoints` (in `cnnlab.runs.worker.artifact_callbacks`) keeps each epoch's weights, the latest
  model and the best one;
- `EpochMetrics` writes the epoch's metrics row.

They share one `FitProgress` and one `BackgroundWriter`, and their order matters: it is set out
once, in `cnnlab.runs.worker.training.recording_callbacks`. This module never imports streamlit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from cnnlab.runs.queue.job import Control
from cnnlab.runs.worker.background_writer import BackgroundWriter
from cnnlab.store.run_store import Store

BATCH_METRIC_SECONDS = 0.25  # Batch metrics are recorded at most four times a second.
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def learning_rate(model: keras.Model) -> float:
    """The optimizer's current learning rate as a plain float."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


@dataclass(frozen=True)
class Divergence:
    """Where a fit diverged: the epoch and batch (both counted from 1) and the loss it reached."""

    epoch: int
    batch: int
    loss: float


class FitProgress(keras.callbacks.Callback):
    """Count epochs, batches and steps, and tell the other callbacks whether an epoch ran whole.

    An epoch is whole when every one of its batches ran and the loss stayed finite. Keras calls
    `on_epoch_end` after a stop in the middle of an epoch too; the recording callbacks ask
    `epoch_is_whole()` first and record nothing for such an epoch (a partial epoch is not an
    epoch). Put this callback first.

    Args:
        initial_epoch: The epochs already done before this fit (a continued or forked run), the
            same number given to `model.fit(initial_epoch=...)`. Defaults to `0`.

    Attributes:
        epoch: The number (from 1) of the epoch running or last run.
        batches_done: Batches finished in that epoch.
        completed_epochs: Whole epochs done, the initial ones included.
        divergence: Where the loss became NaN or infinite (set by `StopOnDivergence`), or None.
        stopped_mid_epoch: True when the fit ended inside an epoch without diverging.

    Example:

    >>> progress = FitProgress()
    >>> model.fit(x, y, epochs=2, callbacks=[progress, StopOnDivergence(progress)])
    >>> progress.completed_epochs
    2
    """

    def __init__(self, initial_epoch: int = 0) -> None:
        super().__init__()
        self.epoch = initial_epoch
        self.batches_done = 0
        self.completed_epochs = initial_epoch
        self.divergence: Divergence | None = None
        self.stopped_mid_epoch = False

    @property
    def steps_per_epoch(self) -> int | None:
        """Batches in one epoch, as `model.fit` counted them (None when it does not know)."""
        steps = self.params.get("steps") if self.params else None
        return int(steps) if steps else None

    @property
    def step(self) -> int:
        """Batches done since the run's first epoch, earlier fits of the run included."""
        return (self.epoch - 1) * (self.steps_per_epoch or 0) + self.batches_done

    def epoch_is_whole(self) -> bool:
        """True when every batch of the current epoch ran and the loss stayed finite."""
        steps = self.steps_per_epoch
        return self.divergence is None and (steps is None or self.batches_done >= steps)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch, self.batches_done = epoch + 1, 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches_done = batch + 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.epoch_is_whole():
            self.completed_epochs = epoch + 1
        elif self.divergence is None:
            self.stopped_mid_epoch = True


class StopOnDivergence(keras.callbacks.Callback):
    """Stop training at the first NaN or infinite loss and remember where it happened.

    `keras.callbacks.TerminateOnNaN` stops the same way (`model.stop_training = True`) but keeps
    no record of where; a run that diverged tells the user the epoch, the batch and the loss, so
    this callback stores them in `progress.divergence`, and the recording callbacks then keep
    nothing of that epoch (diverged weights are not worth a checkpoint). Put it right after
    `FitProgress`, before the callbacks that record batches.

    Args:
        progress: The fit's `FitProgress`, which receives the `Divergence`.

    Example:

    >>> progress = FitProgress()
    >>> model.fit(x, y, epochs=3, callbacks=[progress, StopOnDivergence(progress)])
    >>> progress.divergence
    Divergence(epoch=1, batch=4, loss=nan)
    """

    def __init__(self, progress: FitProgress) -> None:
        super().__init__()
        self.progress = progress

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("loss", math.nan))
        if not math.isfinite(loss) and self.progress.divergence is None:
            self.progress.divergence = Divergence(self.progress.epoch, batch + 1, loss)
            self.model.stop_training = True


class BatchMetrics(keras.callbacks.Callback):
    """Write a batch's loss, accuracy and learning rate to the store, at most every `interval` seconds.

    The first and the last batch of every epoch are always written, so the curve starts and ends
    where the epoch does; in between, a batch is written when `interval` seconds have passed
    since the last written one. Rows carry the epoch and batch (from 1) and the run's global
    step. A batch whose loss is not finite is not written (see `StopOnDivergence`).

    Args:
        store: The run store.
        run_id: The run being trained.
        progress: The fit's `FitProgress` (epoch, step, divergence).
        interval: The least seconds between two written batches inside an epoch. Defaults to
            `BATCH_METRIC_SECONDS` (0.25).
        clock: The function telling the time in seconds. Defaults to `time.monotonic`.

    Example:

    >>> progress = FitProgress()
    >>> metrics = BatchMetrics(store, run_id, progress, interval=0.0)  # every batch
    >>> model.fit(x, y, batch_size=8, callbacks=[progress, metrics])
    >>> store.batch_metrics(run_id)["step"].tolist()
    [1, 2, 3, 4]
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        progress: FitProgress,
        interval: float = BATCH_METRIC_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.store, self.run_id, self.progress = store, run_id, progress
        self.interval, self.clock = interval, clock
        self._last_written = -math.inf

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.progress.divergence is not None:
            return
        now = self.clock()
        last_batch = batch + 1 == self.progress.steps_per_epoch
        if batch != 0 and not last_batch and now - self._last_written < self.interval:
            return
        self._last_written = now
        row = {
            "epoch": self.progress.epoch,
            "batch": batch + 1,
            "step": self.progress.step,
            "loss": float(logs.get("loss", math.nan)),
            "accuracy": logs.get("accuracy"),
            "learning_rate": learning_rate(self.model),
        }
        self.store.add_batch_metrics(self.run_id, [row])


class ControlRequests(keras.callbacks.Callback):
    """Obey the user's stop and pause requests between batches and at the end of each epoch.

    After every batch it asks `control.should_stop()`, which reads the store at most every
    `control.poll_seconds` and, on a pause, blocks there until a resume or a stop arrives (the
    model and optimizer wait in memory). A stop sets `model.stop_training`, so Keras ends the fit
    after the current batch. At the end of an epoch it asks again without the rate limit. Put it
    after the callbacks that record an epoch, so a pause asked for at the end of an epoch waits
    once that epoch is in the store.

    Args:
        control: The job's `cnnlab.runs.queue.job.Control`.

    Example:

    >>> control = Control(store, run_id)
    >>> model.fit(x, y, epochs=100, callbacks=[ControlRequests(control)])
    >>> control.stop_requested  # True if the user pressed stop
    True
    """

    def __init__(self, control: Control) -> None:
        super().__init__()
        self.control = control

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.model.stop_training and self.control.should_stop():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.model.stop_training and self.control.should_stop(force_poll=True):
            self.model.stop_training = True


class EpochMetrics(keras.callbacks.Callback):
    """Write one row per whole epoch: metrics, learning rate, wall, paused and CPU seconds.

    The row holds `loss`, `accuracy`, `val_loss` and `val_accuracy` from the epoch's logs (the
    validation figures are there because `TelemetrySnapshots` ran before), the learning rate the
    epoch trained with, the epoch's wall seconds, the CPU seconds of every thread of this process
    and, when the logs carry it, `telemetry_seconds`. It goes through the `BackgroundWriter`
    after the epoch's snapshots, so a reader that sees an epoch also finds its snapshots. A
    partial or diverged epoch writes nothing. `last_metrics` keeps the last written metrics for
    the run's results. With `paused_seconds` given, the row also holds the epoch's
    `paused_seconds` (its wall seconds include them; `cnnlab.runs.views.time_left` takes them out).

    Args:
        store: The run store.
        run_id: The run being trained.
        progress: The fit's `FitProgress`.
        writer: The fit's `BackgroundWriter`; flushed when training ends.
        paused_seconds: A function giving the seconds the fit has spent paused so far (the job's
            `Control.paused_seconds`), or None.

    Example:

    >>> progress, writer = FitProgress(), BackgroundWriter()
    >>> model.fit(x, y, epochs=2, callbacks=[progress, EpochMetrics(store, run_id, progress, writer)])
    >>> store.epoch_metrics(run_id)["epoch"].tolist()
    [1, 2]
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        progress: FitProgress,
        writer: BackgroundWriter,
        paused_seconds: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        self.store, self.run_id, self.progress, self.writer = store, run_id, progress, writer
        self.paused_seconds = paused_seconds
        self.last_metrics: dict[str, float] = {}
        self._started = self._cpu_started = self._paused_before = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started, self._cpu_started = time.perf_counter(), time.process_time()
        self._paused_before = self.paused_seconds() if self.paused_seconds is not None else 0.0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if not self.progress.epoch_is_whole():
            return
        row: dict[str, Any] = {name: logs.get(name) for name in EPOCH_METRICS}
        row.update(epoch=epoch + 1, learning_rate=learning_rate(self.model))
        if "telemetry_seconds" in logs:
            row["telemetry_seconds"] = logs["telemetry_seconds"]
        row["epoch_seconds"] = time.perf_counter() - self._started
        row["cpu_seconds"] = time.process_time() - self._cpu_started  # All threads of this process.
        if self.paused_seconds is not None:
            row["paused_seconds"] = self.paused_seconds() - self._paused_before
        self.writer.submit(self.store.add_epoch_metrics, self.run_id, row)
        self.last_metrics = {
            name: float(logs[name]) for name in EPOCH_METRICS if isinstance(logs.get(name), int | float)
        }

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.writer.flush()
