"""Compile, fit and evaluate a spec on a dataset, recording everything in the store.

`run(run_id, store, control)` is the job the worker process runs. It loads the run's data,
builds and compiles the model (or reloads it: a continued run from its latest checkpoint with
the optimizer state, a fork from its parent's weights at the chosen epoch), fits it with
`RunRecorder`, which writes batch and epoch metrics, telemetry snapshots and checkpoints and
obeys stop and pause between batches, then evaluates on the test split. A NaN or infinite loss
ends the run as diverged; the worker turns an exception into a failed run.

Everything a setting does reaches Keras through `make_optimizer`, `make_callbacks` and
`compile_model`, which take the same descriptions (`keras_config`) the exported code is written from.
"""

from __future__ import annotations

import concurrent.futures
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnlab.data import datasets
from cnnlab.model import build, keras_config, shapes
from cnnlab.runs import statuses, telemetry
from cnnlab.runs.job import Control, Outcome
from cnnlab.runs.store import Store
from cnnlab.specs import ModelSpec, TrainingSettings
from cnnlab.trained import exports

BATCH_METRIC_SECONDS = 0.25  # batch metrics are recorded at most four times a second


def make_optimizer(settings: TrainingSettings) -> keras.optimizers.Optimizer:
    """The Keras optimizer the settings describe (SGD with momentum and Nesterov, Adam, AdamW, RMSprop)."""
    call = keras_config.optimizer_call(settings)
    return getattr(keras.optimizers, call.class_name)(**call.arguments)


def make_callbacks(settings: TrainingSettings) -> list[keras.callbacks.Callback]:
    """The learning-rate schedule and early stopping as Keras callbacks."""
    callbacks: list[keras.callbacks.Callback] = []
    for call in keras_config.callback_calls(settings):
        if call.class_name == "LearningRateScheduler":
            callbacks.append(
                keras.callbacks.LearningRateScheduler(
                    lambda epoch, learning_rate: keras_config.learning_rate_at(settings, epoch)
                )
            )
        else:
            callbacks.append(getattr(keras.callbacks, call.class_name)(**call.arguments))
    return callbacks


def compile_model(model: keras.Model, spec: ModelSpec, settings: TrainingSettings) -> keras.Model:
    """Compile with the settings' optimizer, the loss read from the output layer, and accuracy."""
    model.compile(optimizer=make_optimizer(settings), loss=shapes.loss_for(spec), metrics=["accuracy"])
    return model


def new_model(spec: ModelSpec, settings: TrainingSettings) -> keras.Model:
    """Seed every random generator, then build and compile the model."""
    keras.utils.set_random_seed(int(settings.seed))
    return compile_model(build.build_model(spec, settings), spec, settings)


def save_layer_weights(model: keras.Model, path: Path) -> None:
    """Write every layer's weights, without optimizer state, as `<layer name>/<index>` arrays in `.npz`."""
    arrays = {
        f"{layer.name}/{index}": weight
        for layer in model.layers
        for index, weight in enumerate(layer.get_weights())
    }
    np.savez(path, **arrays)


def load_layer_weights(model: keras.Model, path: Path) -> int:
    """Set weights saved by `save_layer_weights` on the layers with the same name and shapes.

    Returns how many layers got their weights; layers added or changed since are left as built.
    """
    with np.load(path) as archive:
        saved = {name: archive[name] for name in archive.files}
    copied = 0
    for layer in model.layers:
        weights = [saved.get(f"{layer.name}/{index}") for index in range(len(layer.weights))]
        if not weights or any(weight is None for weight in weights):
            continue
        if [weight.shape for weight in weights] == [tuple(variable.shape) for variable in layer.weights]:
            layer.set_weights(weights)
            copied += 1
    return copied


class BackgroundWriter:
    """Runs store writes in order on one thread, so compressing and saving overlap training.

    `flush()` waits for everything submitted and raises the first error; the recorder flushes at
    the end of training. Epoch metrics go through the same queue after their snapshots, so a
    reader that sees an epoch also finds its snapshots.
    """

    def __init__(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cnnlab-writer"
        )
        self._pending: list[concurrent.futures.Future] = []

    def submit(self, function: Any, *arguments: Any) -> None:
        """Queue `function(*arguments)`; raise now if an earlier write failed."""
        for future in [future for future in self._pending if future.done()]:
            self._pending.remove(future)
            future.result()
        self._pending.append(self._executor.submit(function, *arguments))

    def flush(self) -> None:
        """Wait for every queued write."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()


class RunRecorder(keras.callbacks.Callback):
    """Records a fit in the store and obeys control; must come first among the callbacks.

    Per batch (at most every `BATCH_METRIC_SECONDS`): loss, accuracy, learning rate; stop and
    pause; divergence. Per epoch: validation loss and accuracy (injected into the logs for early
    stopping and the plateau schedule), telemetry snapshots, the epoch's weights, the latest
    checkpoint, the best one (lowest validation loss), then the epoch metrics.
    """

    def __init__(self, store: Store, run_id: str, control: Control, watcher: telemetry.Telemetry) -> None:
        super().__init__()
        self.store, self.run_id, self.control, self.watcher = store, run_id, control, watcher
        self.diverged: tuple[int, int, float] | None = None
        self.stopped_mid_epoch = False
        self.completed_epochs = 0
        self.best_loss = math.inf
        self.last_logs: dict[str, float] = {}
        self._step = 0
        self._last_record = -math.inf
        self._epoch_started = self._epoch_cpu = 0.0
        self._batches = 0
        self.writer = BackgroundWriter()

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def write_snapshots(self, epoch: int) -> None:
        """Record every telemetry snapshot of the model as it is now, under `epoch`."""
        for kind, arrays in self.watcher.snapshots().items():
            if arrays:
                self.writer.submit(self.store.write_snapshot, self.run_id, epoch, kind, arrays)

    def on_train_begin(self, logs: dict | None = None) -> None:
        steps = self.params.get("steps") or 0
        self._step = self.completed_epochs * steps
        if not self.store.snapshot_epochs(self.run_id, "panel"):
            self.store.write_snapshot(self.run_id, 0, "panel", self.watcher.panel())
            self.write_snapshots(self.completed_epochs)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.writer.flush()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_started, self._epoch_cpu = time.perf_counter(), time.process_time()
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        loss = float(logs.get("loss", math.nan))
        self._batches, self._step = batch + 1, self._step + 1
        if not math.isfinite(loss):
            self.diverged = (self.completed_epochs + 1, batch + 1, loss)
            self.model.stop_training = True
            return
        now = time.monotonic()
        if (
            batch == 0
            or now - self._last_record >= BATCH_METRIC_SECONDS
            or batch + 1 == self.params.get("steps")
        ):
            self._last_record = now
            row = {"epoch": self.completed_epochs + 1, "batch": batch + 1, "step": self._step, "loss": loss}
            row.update(accuracy=logs.get("accuracy"), learning_rate=self._learning_rate())
            self.store.add_batch_metrics(self.run_id, [row])
        if self.control.should_stop():
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if self.diverged is not None:
            return
        if self.control.stop_requested and self._batches < (self.params.get("steps") or 0):
            self.stopped_mid_epoch = True  # A partial epoch is not an epoch; only its weights are kept.
            return
        number = epoch + 1
        telemetry_started = time.perf_counter()
        validation, confusion = self.watcher.validate()
        logs.update(validation)
        if confusion:
            self.writer.submit(self.store.write_snapshot, self.run_id, number, "confusion", confusion)
        self.write_snapshots(number)
        telemetry_seconds = time.perf_counter() - telemetry_started
        self.store.save_checkpoint(
            self.run_id, number, number, lambda path: save_layer_weights(self.model, path)
        )
        latest = self.store.save_checkpoint(self.run_id, "latest", number, self.model.save)
        monitored = logs.get("val_loss", logs.get("loss", math.inf))
        if monitored < self.best_loss:
            self.best_loss = monitored
            self.store.save_checkpoint(
                self.run_id, "best", number, lambda path: shutil.copyfile(latest, path)
            )
        self.completed_epochs = number
        self.last_logs = {key: float(value) for key, value in logs.items() if isinstance(value, int | float)}
        row: dict[str, Any] = {key: logs.get(key) for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        row.update(epoch=number, learning_rate=self._learning_rate(), telemetry_seconds=telemetry_seconds)
        row["epoch_seconds"] = time.perf_counter() - self._epoch_started
        row["cpu_seconds"] = time.process_time() - self._epoch_cpu  # all threads of this process
        self.writer.submit(self.store.add_epoch_metrics, self.run_id, row)
        if self.control.should_stop(force_poll=True):
            self.model.stop_training = True


def _probes(store: Store, run_id: str) -> np.ndarray | None:
    """The images the user pinned as probes (the latest `probes` snapshot), if any."""
    versions = store.snapshot_epochs(run_id, "probes")
    if not versions:
        return None
    return store.read_snapshot(run_id, versions[-1], "probes").get("images")


def _restore(
    store: Store, run_id: str, spec: ModelSpec, settings: TrainingSettings
) -> tuple[keras.Model, int]:
    """The model to train and the epochs already done: a continue, a fork, or a new model."""
    run = store.get_run(run_id)
    done = store.checkpoints(run_id).get("latest")
    if done is not None:
        model = keras.models.load_model(store.checkpoint_path(run_id, "latest"))
        store.log_event(run_id, f"continuing from the checkpoint of epoch {done}, optimizer state included")
        return model, done
    model = new_model(spec, settings)
    if run.parent_id is None or not run.parent_epoch:
        return model, 0
    copied = load_layer_weights(model, store.checkpoint_path(run.parent_id, run.parent_epoch))
    store.log_event(
        run_id, f"forked from run {run.parent_id} at epoch {run.parent_epoch} ({copied} layers' weights)"
    )
    return model, run.parent_epoch


def _divergence(settings: TrainingSettings, where: tuple[int, int, float]) -> Outcome:
    epoch, batch, loss = where
    lower = settings.learning_rate / 10
    return Outcome(
        statuses.DIVERGED,
        reason=f"The loss became {loss} at epoch {epoch}, batch {batch}: training diverged.",
        hint=(
            f"Lower the learning rate (it was {settings.learning_rate:g}; try {lower:g}), or add "
            "BatchNormalization after the convolutions."
        ),
    )


def run(run_id: str, store: Store, control: Control) -> Outcome:
    """The training job of run `run_id` (see the module docstring); returns how it ended."""
    record = store.get_run(run_id)
    spec, settings = record.model_spec(), record.training()
    data = datasets.load(record.data())
    store.set_dataset_summary(run_id, data.summary.reset_index())
    store.log_event(
        run_id, f"loaded {data.info.name}: {len(data.y_train)} training images of {data.image_shape}"
    )
    shapes.analyse(
        spec, num_classes=data.num_classes, dataset_input_shape=data.image_shape
    ).raise_for_errors()
    model, done = _restore(store, run_id, spec, settings)
    if control.should_stop(force_poll=True):
        return Outcome(statuses.STOPPED, reason="Stopped before training started.")
    if done >= settings.epochs:
        settings = replace(settings, epochs=done + 1)
    watcher = telemetry.Telemetry(model, data.x_val, data.y_val, data.class_names, _probes(store, run_id))
    recorder = RunRecorder(store, run_id, control, watcher)
    recorder.completed_epochs = done
    if store.checkpoints(run_id).get("best") is not None:
        # A continued run keeps its best checkpoint unless a new epoch beats it.
        history = store.epoch_metrics(run_id)
        recorder.best_loss = float(history["val_loss"].fillna(history["loss"]).min())
    store.set_status(run_id, statuses.RUNNING)
    try:
        model.fit(
            data.x_train, data.y_train, batch_size=int(settings.batch_size), epochs=int(settings.epochs),
            initial_epoch=done, callbacks=[recorder, *make_callbacks(settings)], verbose=0,
        )  # fmt: skip
    finally:
        recorder.writer.flush()
    # TensorBoard reads the same epoch metrics: `tensorboard --logdir $CNNLAB_HOME/runs`.
    exports.write_tensorboard_scalars(store, store.get_run(run_id))
    if recorder.diverged is not None:
        return _divergence(settings, recorder.diverged)
    if recorder.stopped_mid_epoch:
        # The weights after the last finished batch, for a continue (which redoes that epoch).
        store.save_checkpoint(run_id, "latest", recorder.completed_epochs, model.save)
    results: dict[str, Any] = {"epochs": recorder.completed_epochs, **recorder.last_logs}
    history = store.epoch_metrics(run_id)
    if len(history) and history["val_accuracy"].notna().any():
        results["best_val_accuracy"] = float(history["val_accuracy"].max())
    if len(data.y_test):
        test = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0, return_dict=True)
        results.update(test_loss=float(test["loss"]), test_accuracy=float(test["accuracy"]))
    store.set_results(run_id, results)
    if control.stop_requested:
        return Outcome(
            statuses.STOPPED, reason=f"Stopped by the user after {recorder.completed_epochs} epoch(s)."
        )
    if recorder.completed_epochs < settings.epochs:
        reason = f"Early stopping after epoch {recorder.completed_epochs}: {settings.early_stopping_monitor} stopped improving."
        return Outcome(statuses.COMPLETED, reason=reason)
    return Outcome(statuses.COMPLETED)


def warm_up() -> None:
    """Start TensorFlow's runtime and Keras's tracing with a throwaway model (for a warm worker)."""
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    images, labels = np.zeros((4, 8, 8, 1), np.float32), np.zeros(4, np.int64)
    model.fit(images, labels, epochs=1, verbose=0)
    model.predict(images, verbose=0)
