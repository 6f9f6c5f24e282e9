"""Compile, fit and evaluate a spec on a dataset, recording everything in the store.

`run(run_id, store, control)` is the job the worker process runs. It loads the run's data,
builds and compiles the model (or reloads it: a continued run from its latest checkpoint with
the optimizer state, a fork from its parent's weights at the chosen epoch), fits it with the
recording callbacks of `cnnlab.runs.worker.callbacks`, `cnnlab.runs.worker.artifact_callbacks` and
`cnnlab.runs.worker.tensorboard_logs` (batch and epoch metrics, telemetry snapshots, checkpoints,
live TensorBoard logs, stop and pause between batches, divergence) and the diagnoses of
`cnnlab.runs.worker.diagnosis_callbacks`, in the order `recording_callbacks` sets out,
then evaluates on the test split and saves each checkpoint's test scores for the Evaluate page
(`cnnlab.trained.saved_scores`). A NaN or infinite loss, or a loss that rises far above its start
and stays there, ends the run as diverged with a reason naming the learning rate; the worker
turns an exception into a failed run.

Everything a setting does reaches Keras through `make_optimizer`, `make_callbacks` and
`compile_model`, which take the same descriptions (`keras_config`) the exported code is written from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np

from cnnlab.data import datasets
from cnnlab.data.info import SplitData
from cnnlab.errors import CnnLabError
from cnnlab.model import build, keras_config, shapes
from cnnlab.runs.queue.job import Control, Outcome
from cnnlab.runs.views import diagnosis
from cnnlab.runs.worker import callbacks, devices, first_step, telemetry, tensorboard_logs
from cnnlab.runs.worker.artifact_callbacks import Checkpoints, TelemetrySnapshots, load_layer_weights
from cnnlab.runs.worker.background_writer import BackgroundWriter
from cnnlab.runs.worker.diagnosis_callbacks import Diagnose
from cnnlab.specs import ModelSpec, TrainingSettings
from cnnlab.store import best
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import evaluation, saved_scores


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


@dataclass(frozen=True)
class Recording:
    """The recording callbacks of one fit, in order, and the ones `run` reads afterwards."""

    progress: callbacks.FitProgress
    checkpoints: Checkpoints
    epoch_metrics: callbacks.EpochMetrics
    writer: BackgroundWriter
    ordered: list[keras.callbacks.Callback]
    doctor: Diagnose | None = None


def recording_callbacks(
    store: Store,
    run_id: str,
    control: Control,
    watcher: telemetry.Telemetry,
    *,
    initial_epoch: int = 0,
    best_so_far: tuple[int, float | None] | None = None,
    facts: diagnosis.RunFacts | None = None,
) -> Recording:
    """The callbacks that record a fit and obey control, in the one order that works.

    Keras calls callbacks in list order and hands them the same `logs` dict, so each one sees
    what the ones before it did:

    1. `FitProgress` counts epochs and batches first; the rest ask it whether an epoch ran whole.
    2. `StopOnDivergence` marks a NaN or infinite loss before anything records that batch.
    3. `BatchMetrics` writes the batch (rate-limited) before a pause can block in `ControlRequests`.
    4. `TelemetrySnapshots` runs validation and puts `val_loss` and `val_accuracy` into the logs.
    5. `Checkpoints` judges the best epoch from those logs (`cnnlab.store.best`).
    6. `EpochMetrics` writes the epoch's row, after its snapshots on the same writer thread.
    7. `WholeEpochTensorBoard` (Keras's `TensorBoard`) logs the same figures for TensorBoard, live.
    8. `Diagnose` (when `facts` are given) judges the epoch from the same logs and the dead ReLU
       shares of step 4, logs what it finds, and stops the fit on a divergence.
    9. `ControlRequests` last, so a pause at an epoch's end waits with that epoch recorded.

    The settings' own Keras callbacks (`make_callbacks`: learning-rate schedule,
    `ReduceLROnPlateau`, `EarlyStopping`) go after these, so they read the validation figures of
    step 4, and the learning rate recorded for an epoch is the one it trained with.
    """
    progress = callbacks.FitProgress(initial_epoch)
    writer = BackgroundWriter()
    checkpoints = Checkpoints(store, run_id, progress, best_so_far)
    epoch_metrics = callbacks.EpochMetrics(store, run_id, progress, writer, lambda: control.paused_seconds)
    doctor = None if facts is None else Diagnose(store, run_id, progress, facts, lambda: watcher.dead_shares)
    ordered: list[keras.callbacks.Callback] = [
        progress,
        callbacks.StopOnDivergence(progress),
        callbacks.BatchMetrics(store, run_id, progress),
        TelemetrySnapshots(store, run_id, watcher, progress, writer),
        checkpoints,
        epoch_metrics,
        tensorboard_logs.WholeEpochTensorBoard(tensorboard_logs.log_folder(store, run_id), progress),
        *([] if doctor is None else [doctor]),
        callbacks.ControlRequests(control),
    ]
    return Recording(progress, checkpoints, epoch_metrics, writer, ordered, doctor)


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


def _best_so_far(store: Store, run_id: str) -> tuple[int, float | None] | None:
    """The epoch of the run's `best` checkpoint and that epoch's monitored value (a continued run)."""
    epoch = store.checkpoints(run_id).get("best")
    if epoch is None:
        return None
    history = store.epoch_metrics(run_id)
    rows = history[history["epoch"] == epoch]
    if rows.empty:
        return epoch, None
    return epoch, best.monitored_value({str(name): value for name, value in rows.iloc[0].items()})


def _facts(data: SplitData, early_stopping: bool) -> diagnosis.RunFacts:
    """The classes, chance accuracy (always guessing the most frequent training class) and whether
    early stopping watches the run."""
    counts = np.bincount(np.asarray(data.y_train, dtype=np.int64).ravel(), minlength=data.num_classes)
    chance = float(counts.max() / counts.sum()) if counts.sum() else 1.0 / max(data.num_classes, 2)
    return diagnosis.RunFacts(
        num_classes=data.num_classes, chance_accuracy=chance, early_stopping=early_stopping
    )


def _divergence(found: diagnosis.Diagnosis) -> Outcome:
    """The run's end for a divergence: its cause (naming the learning rate) as reason, its fix as hint."""
    return Outcome(Status.DIVERGED, reason=found.cause, hint=found.fix)


def _results(recording: Recording) -> dict[str, Any]:
    """The run's figures from the fit: epochs, last metrics, the best epoch with its value, and the
    device it trained on (text: readers of numbers use `RunRecord.result`, which skips it)."""
    results: dict[str, Any] = {
        "device": devices.describe_device(),
        "epochs": recording.progress.completed_epochs,
        **recording.epoch_metrics.last_metrics,
    }
    checkpoints = recording.checkpoints
    if checkpoints.best_epoch is not None:
        results["best_epoch"] = checkpoints.best_epoch
        if checkpoints.best_value is not None:
            # Without a validation split the best epoch is judged by training accuracy: say so.
            validated = isinstance(results.get(best.MONITOR), float) and math.isfinite(results[best.MONITOR])
            results["best_val_accuracy" if validated else "best_accuracy"] = checkpoints.best_value
    return results


def _stopped(store: Store, run_id: str, control: Control, epochs: int | None) -> Outcome:
    """How a run asked to stop after `epochs` epochs (None: before training) ended: `pruned` with its
    sweep's reason, or `stopped` by the user."""
    if control.prune_requested:
        return Outcome(
            Status.PRUNED, reason=store.prune_reason(run_id) or f"Pruned after {epochs or 0} epoch(s)."
        )
    if epochs is None:
        return Outcome(Status.STOPPED, reason="Stopped before training started.")
    return Outcome(Status.STOPPED, reason=f"Stopped by the user after {epochs} epoch(s).")


def _test_figures(
    store: Store,
    run_id: str,
    data: SplitData,
    model: keras.Model,
    settings: TrainingSettings,
    results: dict[str, Any],
    still: Status | None = None,
) -> None:
    """Record `results` with the test split's loss and accuracy, and save each checkpoint's test
    scores for the Evaluate page. With `still`, only while the run is still in that status (a run
    continued meanwhile records its own)."""
    if len(data.y_test):
        # One pass gives the test figures (as Keras's `evaluate` computes them) and the scores the
        # Evaluate page opens with. The model in memory is the "latest" checkpoint unless early
        # stopping restored other weights.
        scores = evaluation.predict_scores(model, data.x_test)
        test = evaluation.from_scores(data.x_test, data.y_test, scores, data.class_names)
        results = {**results, "test_loss": test.loss, "test_accuracy": test.accuracy}
        if still is not None and store.get_run(run_id).status != still:
            return
        restored = settings.early_stopping and settings.restore_best_weights
        try:
            saved_scores.save_after_training(store, run_id, data, None if restored else scores)
        except (OSError, CnnLabError) as error:
            store.log_event(run_id, f"The test scores for Evaluate were not saved: {error}", "warning")
    if still is None or store.get_run(run_id).status == still:
        store.set_results(run_id, results)


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
        return _stopped(store, run_id, control, None)
    if done >= settings.epochs:
        settings = replace(settings, epochs=done + 1)
    watcher = telemetry.Telemetry(
        model,
        data.x_val,
        data.y_val,
        data.class_names,
        _probes(store, run_id),
        gradient_batch=(data.x_train, data.y_train),
    )
    # A continued run keeps its best checkpoint unless a new epoch beats it.
    recording = recording_callbacks(
        store,
        run_id,
        control,
        watcher,
        initial_epoch=done,
        best_so_far=_best_so_far(store, run_id),
        facts=_facts(data, settings.early_stopping),
    )
    store.set_status(run_id, Status.RUNNING)
    # Built inside the first traced step instead, this state makes TensorFlow trace it twice.
    first_step.build_for_fit(model, data.x_train, data.y_train, int(settings.batch_size))
    try:
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=int(settings.batch_size),
            epochs=int(settings.epochs),
            initial_epoch=done,
            callbacks=[*recording.ordered, *make_callbacks(settings)],
            verbose=0,
        )
    finally:
        recording.writer.close()
    progress = recording.progress
    doctor = recording.doctor
    if doctor is not None and doctor.divergence is not None:
        store.set_results(run_id, _results(recording))
        return _divergence(doctor.divergence)
    if progress.divergence is not None:
        where = progress.divergence
        learning_rate = callbacks.learning_rate(model)
        return _divergence(diagnosis.not_finite(where.loss, where.epoch, where.batch, learning_rate))
    if progress.stopped_mid_epoch:
        # The weights after the last finished batch, for a continue (which redoes that epoch).
        store.save_checkpoint(run_id, "latest", progress.completed_epochs, model.save)
    results = _results(recording)
    if control.stop_requested and not control.prune_requested:
        # The user waits for a Stop: the run says it stopped as soon as its weights are saved, and
        # the test split's figures (a prediction traced, the best checkpoint loaded and predicted)
        # follow in this worker once the status is recorded.
        store.set_results(run_id, results)
        stopped = _stopped(store, run_id, control, progress.completed_epochs)
        return replace(
            stopped,
            finish=lambda: _test_figures(store, run_id, data, model, settings, results, Status.STOPPED),
        )
    _test_figures(store, run_id, data, model, settings, results)
    if control.stop_requested:
        return _stopped(store, run_id, control, progress.completed_epochs)
    if progress.completed_epochs < settings.epochs:
        reason = (
            f"Early stopping after epoch {progress.completed_epochs}: "
            f"{settings.early_stopping_monitor} stopped improving."
        )
        return Outcome(Status.COMPLETED, reason=reason)
    return Outcome(Status.COMPLETED)


def warm_up() -> None:
    """Start TensorFlow's runtime and run a first run's path once on a throwaway model (for a warm
    worker; see `cnnlab.runs.worker.first_step.warm_up`)."""
    first_step.warm_up(compile_model)
