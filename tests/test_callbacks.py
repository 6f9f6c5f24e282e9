"""The recording callbacks, each in a tiny real `model.fit` against a real store.

48 random 8x8 images in batches of 8 (6 batches an epoch), one or two epochs per fit.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
from waiting import wait_until

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.job import Control
from cnnlab.runs.worker import callbacks, telemetry, training
from cnnlab.runs.worker.artifact_callbacks import Checkpoints, TelemetrySnapshots, load_layer_weights
from cnnlab.runs.worker.background_writer import BackgroundWriter
from cnnlab.store import best
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

IMAGES, BATCH_SIZE, STEPS = 48, 8, 6
RNG = np.random.default_rng(0)
X = RNG.random((IMAGES, 8, 8, 1), dtype=np.float32)
Y = RNG.integers(0, 3, IMAGES)
X_VAL, Y_VAL = RNG.random((24, 8, 8, 1), dtype=np.float32), np.arange(24) % 3


@pytest.fixture
def run_id(store: Store) -> str:
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(),
        )
    )
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    return run.id


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, name="conv"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", name="dense"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def fit(
    model: keras.Model,
    callbacks_in_order: list[keras.callbacks.Callback],
    epochs: int = 1,
    x: Any = X,
    initial_epoch: int = 0,
) -> keras.callbacks.History:
    return model.fit(
        x,
        Y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        callbacks=callbacks_in_order,
        verbose=0,
    )


class OnBatch(keras.callbacks.Callback):
    """Calls `action(batch)` after every batch (to act from inside a fit)."""

    def __init__(self, action: Callable[[int], None]) -> None:
        super().__init__()
        self.action = action

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.action(batch)


class LogsSeen(keras.callbacks.Callback):
    """Keeps a copy of every batch's and epoch's logs as the callbacks after it see them."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.append(dict(logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs.append(dict(logs or {}))


class InjectLogs(keras.callbacks.Callback):
    """Puts the given values into each epoch's logs, as `TelemetrySnapshots` does with validation."""

    def __init__(self, per_epoch: list[dict[str, float]]) -> None:
        super().__init__()
        self.per_epoch = per_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update(self.per_epoch[epoch])


def stop_at_batch(number: int) -> OnBatch:
    def action(batch: int) -> None:
        if batch + 1 == number:
            stopper.model.stop_training = True

    stopper = OnBatch(action)
    return stopper


# FitProgress and StopOnDivergence.


def test_fit_progress_counts_epochs_batches_and_steps_after_earlier_epochs() -> None:
    progress = callbacks.FitProgress(initial_epoch=2)
    steps: list[int] = []
    fit(tiny_model(), [progress, OnBatch(lambda batch: steps.append(progress.step))], 4, initial_epoch=2)
    assert progress.steps_per_epoch == STEPS
    assert steps == list(range(2 * STEPS + 1, 4 * STEPS + 1))
    assert (progress.completed_epochs, progress.epoch, progress.stopped_mid_epoch) == (4, 4, False)
    assert progress.epoch_is_whole()


def test_an_epoch_stopped_part_way_is_not_whole() -> None:
    progress = callbacks.FitProgress()
    fit(tiny_model(), [progress, stop_at_batch(3)], epochs=2)
    assert (progress.batches_done, progress.completed_epochs) == (3, 0)
    assert progress.stopped_mid_epoch and not progress.epoch_is_whole()


def test_divergence_stops_at_the_first_nan_loss_and_remembers_where() -> None:
    poisoned = X.copy()
    poisoned[3 * BATCH_SIZE :] = np.nan  # The fourth batch onwards gives a NaN loss.
    progress = callbacks.FitProgress()
    seen = LogsSeen()
    fit(tiny_model(), [progress, callbacks.StopOnDivergence(progress), seen], epochs=2, x=poisoned)
    assert progress.divergence is not None
    assert (progress.divergence.epoch, progress.divergence.batch) == (1, 4)
    assert not math.isfinite(progress.divergence.loss)
    # Keras's own TerminateOnNaN stops at the same batch; ours also says where.
    keras_seen = LogsSeen()
    fit(tiny_model(), [keras.callbacks.TerminateOnNaN(), keras_seen], epochs=2, x=poisoned)
    assert len(seen.batches) == len(keras_seen.batches) == 4
    assert not progress.stopped_mid_epoch and progress.completed_epochs == 0


# BatchMetrics.


def test_batch_metrics_without_a_rate_limit_record_every_batch_as_keras_reports_it(
    store: Store, run_id: str
) -> None:
    progress, seen = callbacks.FitProgress(), LogsSeen()
    model = tiny_model()
    fit(model, [progress, callbacks.BatchMetrics(store, run_id, progress, interval=0.0), seen], epochs=2)
    rows = store.batch_metrics(run_id)
    assert rows["step"].tolist() == list(range(1, 2 * STEPS + 1))
    assert rows["epoch"].tolist() == [1] * STEPS + [2] * STEPS
    assert rows["batch"].tolist() == list(range(1, STEPS + 1)) * 2
    np.testing.assert_allclose(rows["loss"], [logs["loss"] for logs in seen.batches], rtol=1e-6)
    np.testing.assert_allclose(rows["accuracy"], [logs["accuracy"] for logs in seen.batches], rtol=1e-6)
    assert rows["learning_rate"].tolist() == pytest.approx([0.05] * 2 * STEPS)


def test_batch_metrics_are_rate_limited_but_keep_each_epochs_first_and_last_batch(
    store: Store, run_id: str
) -> None:
    ticks = iter(range(1000))  # A clock that advances one second a call.
    progress = callbacks.FitProgress()
    metrics = callbacks.BatchMetrics(store, run_id, progress, interval=2.5, clock=lambda: next(ticks))
    fit(tiny_model(), [progress, metrics], epochs=2)
    # Batch 1 at t=0, then only when 2.5 s have passed (batch 4 at t=3), and always the last.
    assert store.batch_metrics(run_id)["batch"].tolist() == [1, 4, 6, 1, 4, 6]


def test_a_diverged_batch_is_not_recorded(store: Store, run_id: str) -> None:
    poisoned = X.copy()
    poisoned[BATCH_SIZE:] = np.nan
    progress = callbacks.FitProgress()
    recorders = [
        progress,
        callbacks.StopOnDivergence(progress),
        callbacks.BatchMetrics(store, run_id, progress, 0.0),
    ]
    fit(tiny_model(), recorders, x=poisoned)
    assert store.batch_metrics(run_id)["batch"].tolist() == [1]


# ControlRequests.


def test_a_stop_request_ends_the_fit_after_the_batch_that_sees_it(store: Store, run_id: str) -> None:
    progress = callbacks.FitProgress()
    control = Control(store, run_id, poll_seconds=0.0)
    request = OnBatch(lambda batch: store.request_control(run_id, "stop") if batch == 1 else None)
    fit(tiny_model(), [progress, request, callbacks.ControlRequests(control)], epochs=3)
    assert control.stop_requested
    assert progress.batches_done == 2 and progress.stopped_mid_epoch


def test_the_end_of_an_epoch_polls_for_a_stop_despite_the_rate_limit(store: Store, run_id: str) -> None:
    progress = callbacks.FitProgress()
    control = Control(store, run_id, poll_seconds=math.inf)  # Only the first batch and epoch ends poll.
    request = OnBatch(lambda batch: store.request_control(run_id, "stop") if batch == 2 else None)
    fit(tiny_model(), [progress, request, callbacks.ControlRequests(control)], epochs=3)
    assert control.stop_requested
    assert progress.completed_epochs == 1 and not progress.stopped_mid_epoch


def test_a_pause_holds_the_fit_between_batches_until_resume(store: Store, run_id: str) -> None:
    progress = callbacks.FitProgress()
    control = Control(store, run_id, poll_seconds=0.0)
    store.request_control(run_id, "pause")
    held_at: list[int] = []

    def resume_once_paused() -> None:
        wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the run to pause")
        held_at.append(progress.batches_done)
        store.request_control(run_id, "resume")

    resumer = threading.Thread(target=resume_once_paused)
    resumer.start()
    fit(tiny_model(), [progress, callbacks.ControlRequests(control)], epochs=2)
    resumer.join(timeout=60)
    assert held_at == [1]  # It paused after the first batch and stayed there while paused.
    assert progress.completed_epochs == 2 and not control.stop_requested
    assert store.get_run(run_id).status == Status.RUNNING


# TelemetrySnapshots, Checkpoints and EpochMetrics.


def test_telemetry_puts_keras_validation_figures_into_the_logs_and_writes_snapshots(
    store: Store, run_id: str
) -> None:
    model = tiny_model()
    progress, writer, seen = callbacks.FitProgress(), BackgroundWriter(), LogsSeen()
    watcher = telemetry.Telemetry(model, X_VAL, Y_VAL, ["a", "b", "c"])
    stopping = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=100)
    evaluated: list[list[float]] = []

    class Evaluate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            evaluated.append(self.model.evaluate(X_VAL, Y_VAL, verbose=0))

    snapshots = TelemetrySnapshots(store, run_id, watcher, progress, writer)
    fit(model, [progress, snapshots, seen, stopping, Evaluate()], epochs=2)
    for logs, (keras_loss, keras_accuracy) in zip(seen.epochs, evaluated, strict=True):
        assert logs["val_loss"] == pytest.approx(keras_loss, rel=1e-4)
        assert logs["val_accuracy"] == pytest.approx(keras_accuracy)
        assert logs["telemetry_seconds"] >= 0
    assert stopping.best == max(logs["val_accuracy"] for logs in seen.epochs)  # EarlyStopping read them.
    for kind in ("kernels", "feature_maps", "predictions", "histograms"):
        assert store.snapshot_epochs(run_id, kind) == [0, 1, 2]
    assert store.snapshot_epochs(run_id, "panel") == [0]
    confusion = store.read_snapshot(run_id, 2, "confusion")["matrix"]
    assert confusion.sum() == len(Y_VAL)
    assert np.trace(confusion) / len(Y_VAL) == pytest.approx(seen.epochs[-1]["val_accuracy"])


def test_telemetry_records_nothing_for_a_partial_epoch(store: Store, run_id: str) -> None:
    model = tiny_model()
    progress, writer, seen = callbacks.FitProgress(), BackgroundWriter(), LogsSeen()
    watcher = telemetry.Telemetry(model, X_VAL, Y_VAL, ["a", "b", "c"])
    fit(
        model,
        [progress, stop_at_batch(2), TelemetrySnapshots(store, run_id, watcher, progress, writer), seen],
    )
    assert store.snapshot_epochs(run_id, "kernels") == [0]  # The untrained model only.
    assert store.snapshot_epochs(run_id, "confusion") == []
    assert "val_loss" not in seen.epochs[0]


def test_checkpoints_keep_each_epoch_the_latest_and_the_best_by_the_one_definition(
    store: Store, run_id: str
) -> None:
    accuracies = [0.5, 0.7, 0.7]  # Epoch 2 is best: epoch 3 only ties it.
    progress = callbacks.FitProgress()
    checkpoints = Checkpoints(store, run_id, progress)
    injected = InjectLogs([{"val_accuracy": value, "val_loss": 1.0 - value} for value in accuracies])
    model = tiny_model()
    fit(model, [progress, injected, checkpoints], epochs=3)
    oracle = best.best_epoch(pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": accuracies}))
    assert (checkpoints.best_epoch, checkpoints.best_value) == (oracle, 0.7) == (2, 0.7)
    assert store.checkpoints(run_id) == {
        "epoch_0001": 1,
        "best": 2,
        "epoch_0002": 2,
        "epoch_0003": 3,
        "latest": 3,
    }
    # The best model is the model after epoch 2: its weights are that epoch's layer weights.
    best_model = keras.models.load_model(store.checkpoint_path(run_id, "best"))
    from_epoch = tiny_model()
    assert load_layer_weights(from_epoch, store.checkpoint_path(run_id, 2)) == 2
    np.testing.assert_allclose(best_model.predict(X, verbose=0), from_epoch.predict(X, verbose=0), rtol=1e-6)
    latest = keras.models.load_model(store.checkpoint_path(run_id, "latest"))
    np.testing.assert_allclose(latest.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    assert not os.path.samefile(
        store.checkpoint_path(run_id, "best"), store.checkpoint_path(run_id, "latest")
    )


def test_a_best_epoch_that_is_the_latest_keeps_one_model_file(store: Store, run_id: str) -> None:
    progress = callbacks.FitProgress()
    injected = InjectLogs([{"val_accuracy": value} for value in (0.5, 0.7)])
    fit(tiny_model(), [progress, injected, Checkpoints(store, run_id, progress)], epochs=2)
    assert store.checkpoints(run_id)["best"] == store.checkpoints(run_id)["latest"] == 2
    assert os.path.samefile(store.checkpoint_path(run_id, "best"), store.checkpoint_path(run_id, "latest"))


@pytest.mark.parametrize(
    ("monitor", "values"),
    [("val_accuracy", [0.5, 0.7, 0.7, 0.6, 0.8]), ("accuracy", [0.4, 0.4, 0.3, 0.9, 0.9])],
)
def test_the_best_epoch_is_the_one_kerass_model_checkpoint_keeps(
    store: Store, run_id: str, tmp_path: Path, monitor: str, values: list[float]
) -> None:
    # The oracle: `ModelCheckpoint(save_best_only=True)` in the same fit, judging the same logs.
    progress = callbacks.FitProgress()
    checkpoints = Checkpoints(store, run_id, progress)
    keras_best = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "epoch_{epoch}.keras"), monitor=monitor, mode="max", save_best_only=True
    )
    injected = InjectLogs([{monitor: value} for value in values])
    fit(tiny_model(), [progress, injected, checkpoints, keras_best], epochs=len(values))
    kept_by_keras = sorted(int(path.stem.removeprefix("epoch_")) for path in tmp_path.glob("epoch_*.keras"))
    assert checkpoints.best_epoch == kept_by_keras[-1] == store.checkpoints(run_id)["best"]
    assert checkpoints.best_value == keras_best.best == max(values)
    # The server's definition, read from the epoch metrics, agrees (without validation, by training accuracy).
    history = pd.DataFrame({"epoch": range(1, len(values) + 1), monitor: values})
    assert best.best_epoch(history) == kept_by_keras[-1]


def test_a_continued_run_keeps_its_best_unless_beaten(store: Store, run_id: str) -> None:
    progress = callbacks.FitProgress(initial_epoch=5)
    checkpoints = Checkpoints(store, run_id, progress, best_so_far=(5, 0.9))
    injected = InjectLogs([{}] * 5 + [{"val_accuracy": 0.8}, {"val_accuracy": 0.95}])
    fit(tiny_model(), [progress, injected, checkpoints], epochs=6, initial_epoch=5)
    assert (checkpoints.best_epoch, "best" in store.checkpoints(run_id)) == (5, False)
    fit(tiny_model(), [progress, injected, checkpoints], epochs=7, initial_epoch=6)
    assert (checkpoints.best_epoch, checkpoints.best_value) == (7, 0.95)
    assert store.checkpoints(run_id)["best"] == 7


def test_epoch_metrics_write_keras_epoch_figures_once_each_epoch_is_whole(store: Store, run_id: str) -> None:
    progress, writer = callbacks.FitProgress(), BackgroundWriter()
    metrics = callbacks.EpochMetrics(store, run_id, progress, writer)
    history = fit(tiny_model(), [progress, metrics], epochs=2)
    rows = store.epoch_metrics(run_id)  # The writer was flushed when training ended.
    assert rows["epoch"].tolist() == [1, 2]
    np.testing.assert_allclose(rows["loss"], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(rows["accuracy"], history.history["accuracy"], rtol=1e-6)
    assert rows["learning_rate"].tolist() == pytest.approx([0.05, 0.05])
    assert (rows["epoch_seconds"] > 0).all() and rows["val_loss"].isna().all()
    last = {"loss": history.history["loss"][-1], "accuracy": history.history["accuracy"][-1]}
    assert metrics.last_metrics == pytest.approx(last)
    fit(tiny_model(), [progress, stop_at_batch(3), metrics], epochs=3, initial_epoch=2)
    assert store.epoch_metrics(run_id)["epoch"].tolist() == [1, 2]  # A partial epoch 3 is not an epoch.


def test_the_writer_runs_in_order_and_reports_a_failed_write() -> None:
    writer, done = BackgroundWriter(), []
    for number in range(20):
        writer.submit(done.append, number)
    writer.flush()
    assert done == list(range(20))

    def broken() -> None:
        raise OSError("disk full")

    writer.submit(broken)
    with pytest.raises(OSError, match="disk full"):
        writer.close()


# All of them together, in the order `training.recording_callbacks` sets out.


def test_the_recording_callbacks_agree_with_each_other_and_feed_keras_callbacks(
    store: Store, run_id: str
) -> None:
    model = tiny_model()
    watcher = telemetry.Telemetry(model, X_VAL, Y_VAL, ["a", "b", "c"])
    recording = training.recording_callbacks(store, run_id, Control(store, run_id), watcher)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=100)
    stopping = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=100)
    fit(model, [*recording.ordered, plateau, stopping], epochs=2)
    recording.writer.close()
    rows = store.epoch_metrics(run_id)
    assert rows["epoch"].tolist() == [1, 2] and rows["val_accuracy"].notna().all()
    assert stopping.best == rows["val_accuracy"].max() and plateau.best == rows["val_loss"].min()
    assert recording.checkpoints.best_epoch == best.best_epoch(rows) == store.checkpoints(run_id)["best"]
    assert store.batch_metrics(run_id)["step"].max() == 2 * STEPS
