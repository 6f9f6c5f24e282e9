"""Training: every setting reaches Keras, telemetry per epoch, stop, pause, continue, fork,
divergence, and the real job through a worker process, the scheduler and the CLI.

Runs train the default digits preset on the built-in 8x8 digits (a second or two per run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from waiting import DEADLINE_SECONDS, wait_until

from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.errors import RunError
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.runs.worker import main as worker
from cnnlab.runs.worker import telemetry, training
from cnnlab.store import best
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import checkpoints, exports, saved_scores

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

SPEC = presets.get("digits_default").spec
ROOT = Path(__file__).resolve().parents[1]


def _train(store: Store, settings: specs.TrainingSettings, *, data: specs.DataSettings | None = None) -> str:
    """Create a run and train it here, in this process, as the worker would."""
    run = store.create_run(
        RunRequest(spec=SPEC, data_settings=data or specs.DataSettings(), training_settings=settings)
    )
    store.set_status(run.id, Status.STARTING)
    worker.run_job(run.id, store, training.run)
    return run.id


def _train_in_thread(store: Store, settings: specs.TrainingSettings) -> tuple[str, threading.Thread]:
    run = store.create_run(
        RunRequest(spec=SPEC, data_settings=specs.DataSettings(), training_settings=settings)
    )
    store.set_status(run.id, Status.STARTING)
    thread = threading.Thread(target=worker.run_job, args=(run.id, store, training.run))
    thread.start()
    return run.id, thread


def _tensorboard_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """The scalars of one TensorBoard log folder as TensorBoard reads them: tag to step to value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    reader = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    reader.Reload()
    return {
        tag: {event.step: float(make_ndarray(event.tensor_proto)) for event in reader.Tensors(tag)}
        for tag in reader.Tags()["tensors"]
    }


def _hold_the_only_slot(store: Store) -> str:
    """Occupy the single slot, so a scheduler queues what it is given and this test can train it here."""
    blocker = store.create_run(
        RunRequest(spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings())
    )
    store.set_status(blocker.id, Status.STARTING)
    return blocker.id


def _train_queued_here(store: Store, run_id: str, blocker: str) -> None:
    store.set_status(blocker, Status.STOPPED)
    store.set_status(run_id, Status.STARTING)
    worker.run_job(run_id, store, training.run)


def _join(thread: threading.Thread) -> None:
    thread.join(timeout=DEADLINE_SECONDS)
    assert not thread.is_alive(), f"the training job did not end within {DEADLINE_SECONDS:g} s"


def _pause(store: Store, run_id: str) -> int:
    """Ask for a pause, wait until the job is paused, and return how many batch rows it had recorded."""
    store.request_control(run_id, "pause")
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the run to be paused")
    return len(store.batch_metrics(run_id))


# Every setting reaches Keras.


@pytest.mark.parametrize(
    ("settings", "expected_class", "expected"),
    [
        (
            specs.TrainingSettings(optimizer="sgd", momentum=0.8, nesterov=True),
            "SGD",
            {"momentum": 0.8, "nesterov": True},
        ),
        (specs.TrainingSettings(optimizer="adam", learning_rate=0.003), "Adam", {}),
        (specs.TrainingSettings(optimizer="adamw", weight_decay=0.02), "AdamW", {"weight_decay": 0.02}),
        (specs.TrainingSettings(optimizer="rmsprop", learning_rate=0.01), "RMSprop", {}),
    ],
)
def test_the_optimizer_and_learning_rate_reach_keras(settings, expected_class, expected) -> None:
    model = training.new_model(SPEC, settings)
    optimizer = model.optimizer
    assert type(optimizer).__name__ == expected_class
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(settings.learning_rate)
    for name, value in expected.items():
        assert getattr(optimizer, name) == pytest.approx(value)


def test_the_loss_follows_the_output_layer() -> None:
    model = training.new_model(SPEC, specs.TrainingSettings())
    assert model.loss == "sparse_categorical_crossentropy"
    binary = presets.adapt(SPEC, (8, 8, 1), 2).replace_layers(
        [*SPEC.layers[:-1], specs.LayerSpec("Dense", {"units": 1, "activation": "sigmoid"})]
    )
    assert training.new_model(binary, specs.TrainingSettings()).loss == "binary_crossentropy"


@pytest.mark.parametrize(
    ("schedule", "epoch", "expected"),
    [
        ("step", 4, 0.1 * 0.5**2),
        ("exponential", 3, 0.1 * 0.5**3),
        ("cosine", 5, 0.1 * 0.5 * (1 + np.cos(np.pi / 2))),
    ],
)
def test_learning_rate_schedules_become_keras_callbacks(schedule: str, epoch: int, expected: float) -> None:
    settings = specs.TrainingSettings(
        learning_rate=0.1,
        schedule=schedule,
        schedule_step_epochs=2,
        schedule_decay_rate=0.5,
        epochs=10,
        minimum_learning_rate=0.0 if schedule != "cosine" else 1e-9,
    )
    (callback,) = training.make_callbacks(settings)
    assert isinstance(callback, keras.callbacks.LearningRateScheduler)
    assert callback.schedule(epoch, 0.1) == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_plateau_and_early_stopping_become_keras_callbacks() -> None:
    settings = specs.TrainingSettings(
        schedule="plateau",
        plateau_patience=4,
        plateau_factor=0.25,
        minimum_learning_rate=1e-5,
        early_stopping=True,
        early_stopping_monitor="val_accuracy",
        early_stopping_patience=2,
        restore_best_weights=False,
    )
    plateau, stopping = training.make_callbacks(settings)
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau)
    assert (plateau.factor, plateau.patience, plateau.min_lr) == (0.25, 4, 1e-5)
    assert isinstance(stopping, keras.callbacks.EarlyStopping)
    assert (stopping.monitor, stopping.patience, stopping.restore_best_weights) == ("val_accuracy", 2, False)
    assert training.make_callbacks(specs.TrainingSettings()) == []


def test_l2_and_augmentation_reach_the_model() -> None:
    settings = specs.TrainingSettings(
        l2=0.01, augmentation=specs.AugmentationSettings(rotation=0.1, zoom=0.1)
    )
    model = training.new_model(SPEC, settings)
    kernels = [
        layer for layer in model.layers if hasattr(layer, "kernel_regularizer") and layer.kernel_regularizer
    ]
    assert len(kernels) == 4
    assert all(layer.kernel_regularizer.l2 == pytest.approx(0.01) for layer in kernels)
    names = [type(layer).__name__ for layer in model.layers]
    assert names[:2] == ["RandomRotation", "RandomZoom"]
    assert not any(
        layer.kernel_regularizer
        for layer in training.new_model(SPEC, specs.TrainingSettings()).layers
        if hasattr(layer, "kernel_regularizer")
    )


# Whole runs, in this process.


def test_a_run_records_metrics_telemetry_and_checkpoints(store: Store) -> None:
    run_id = _train(store, specs.TrainingSettings(epochs=2, batch_size=64))
    run = store.get_run(run_id)
    assert run.status == Status.COMPLETED, run.traceback
    data = datasets.load(specs.DataSettings())
    epochs = store.epoch_metrics(run_id)
    assert list(epochs["epoch"]) == [1, 2]
    assert (
        epochs[["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds"]]
        .notna()
        .all()
        .all()
    )
    batches = store.batch_metrics(run_id)
    steps = int(np.ceil(len(data.y_train) / 64))
    assert batches["step"].max() == 2 * steps  # The batch size reached Keras.
    assert batches["learning_rate"].iloc[0] == pytest.approx(0.001)
    # The recorded validation figures agree with Keras's own evaluation of the saved model.
    model = keras.models.load_model(store.checkpoint_path(run_id, "latest"))
    keras_loss, keras_accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
    assert epochs["val_loss"].iloc[-1] == pytest.approx(keras_loss, rel=1e-4)
    assert epochs["val_accuracy"].iloc[-1] == pytest.approx(keras_accuracy)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2 * steps
    # Telemetry: per epoch, bounded in size and type.
    for kind in ("kernels", "feature_maps", "predictions", "histograms"):
        assert store.snapshot_epochs(run_id, kind) == [0, 1, 2]
    assert store.snapshot_epochs(run_id, "confusion") == [1, 2]
    kernels = store.read_snapshot(run_id, 2, "kernels")
    assert set(kernels) == {"conv2d_1", "conv2d_2"} and kernels["conv2d_1"].shape == (3, 3, 1, 32)
    assert kernels["conv2d_2"].shape == (3, 3, telemetry.MAX_INPUT_CHANNELS, 64)
    assert all(array.dtype == np.float16 for array in kernels.values())
    maps = store.read_snapshot(run_id, 1, "feature_maps")
    assert set(maps) == {"conv2d_1", "conv2d_2", "max_pooling2d_1"}
    assert maps["conv2d_1"].shape == (telemetry.PANEL_SIZE, 8, 8, telemetry.MAX_MAP_CHANNELS)
    confusion = store.read_snapshot(run_id, 2, "confusion")["matrix"]
    assert confusion.sum() == len(data.y_val) and np.trace(confusion) / confusion.sum() == pytest.approx(
        epochs["val_accuracy"].iloc[-1]
    )
    predictions = store.read_snapshot(run_id, 2, "predictions")["panel"]
    assert predictions.shape == (telemetry.PANEL_SIZE, 10)
    np.testing.assert_allclose(predictions.astype(np.float32).sum(axis=1), 1, atol=1e-2)
    panel = store.read_snapshot(run_id, 0, "panel")
    assert panel["images"].dtype == np.uint8 and len(set(panel["labels"].tolist())) == 10
    assert "conv2d_1/kernel" in store.read_snapshot(run_id, 1, "histograms")
    # "Best" is the one definition of `cnnlab.store.best`; the results and the checkpoint agree on it.
    best_epoch = best.best_epoch(epochs)
    assert store.checkpoints(run_id) == {"epoch_0001": 1, "epoch_0002": 2, "latest": 2, "best": best_epoch}
    assert run.results["best_epoch"] == best_epoch
    assert run.results["best_val_accuracy"] == pytest.approx(
        epochs.loc[epochs["epoch"] == best_epoch, "val_accuracy"].item()
    )
    best_model = keras.models.load_model(store.checkpoint_path(run_id, "best"))
    assert best_model.evaluate(data.x_val, data.y_val, verbose=0)[1] == pytest.approx(
        run.results["best_val_accuracy"]
    )
    assert run.results["test_accuracy"] > 0.5 and run.results["epochs"] == 2
    assert run.dataset_summary[0]["class"] == "0"
    # Keras's TensorBoard callback wrote the epoch scalars during the fit, numbered as the store's epochs.
    logs = exports.tensorboard_folder(store, run_id)
    train, validation = _tensorboard_scalars(logs / "train"), _tensorboard_scalars(logs / "validation")
    for name in ("loss", "accuracy", "learning_rate"):
        assert train[f"epoch_{name}"] == pytest.approx(dict(zip([1, 2], epochs[name], strict=True)), rel=1e-6)
    for name in ("loss", "accuracy"):
        expected = dict(zip([1, 2], epochs[f"val_{name}"], strict=True))
        assert validation[f"epoch_{name}"] == pytest.approx(expected, rel=1e-6)
    assert exports.has_tensorboard_logs(store, run_id)


def test_the_same_seed_gives_the_same_run(store: Store) -> None:
    data = specs.DataSettings(subset=400)
    first = _train(store, specs.TrainingSettings(epochs=1, seed=3), data=data)
    second = _train(store, specs.TrainingSettings(epochs=1, seed=3), data=data)
    other = _train(store, specs.TrainingSettings(epochs=1, seed=4), data=data)
    losses = [list(store.batch_metrics(run_id)["loss"]) for run_id in (first, second, other)]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


def test_early_stopping_ends_the_run_early(store: Store) -> None:
    settings = specs.TrainingSettings(
        epochs=30,
        early_stopping=True,
        early_stopping_monitor="val_accuracy",
        early_stopping_patience=0,
        learning_rate=0.01,
    )
    run = store.get_run(_train(store, settings, data=specs.DataSettings(subset=400)))
    assert run.status == Status.COMPLETED
    assert run.last_epoch < 30 and run.reason.startswith("Early stopping after epoch")


def test_a_huge_learning_rate_diverges_with_a_hint(store: Store) -> None:
    run = store.get_run(_train(store, specs.TrainingSettings(epochs=3, optimizer="sgd", learning_rate=10.0)))
    assert run.status == Status.DIVERGED
    assert "The loss became" in run.reason and "Lower the learning rate" in run.hint
    assert store.checkpoints(run.id).get("latest") is None  # Diverged weights are not kept.


def test_stop_pause_resume_and_continue(store: Store) -> None:
    run_id, thread = _train_in_thread(store, specs.TrainingSettings(epochs=40, batch_size=16))
    wait_until(lambda: store.get_run(run_id).last_epoch >= 1, "the first epoch")
    paused_rows = _pause(store, run_id)
    store.request_control(run_id, "resume")
    wait_until(lambda: len(store.batch_metrics(run_id)) > paused_rows + 1, "batches after the resume")
    # Pause again and stop while paused: however long the pause, at most one more batch is recorded.
    paused_rows = _pause(store, run_id)
    store.request_control(run_id, "stop")
    _join(thread)
    assert len(store.batch_metrics(run_id)) <= paused_rows + 1
    stopped = store.get_run(run_id)
    assert stopped.status == Status.STOPPED and "Stopped by the user" in stopped.reason
    # Its test figures and the Evaluate page's scores came once the stop was recorded, all the same.
    assert 0 <= stopped.result("test_accuracy") <= 1 and stopped.result("test_loss") > 0
    for checkpoint in checkpoints.models(store, run_id):
        assert saved_scores.path(
            store.home, checkpoint, saved_scores.SAVED_SPLIT, stopped.data_settings
        ).exists()
    messages = list(store.events(run_id)["message"])
    assert messages.count("running -> paused") == 2 and "paused -> running" in messages
    # Each epoch says how long it was paused (the time left leaves it out), never longer than it ran.
    epochs = store.epoch_metrics(run_id)
    assert (epochs["paused_seconds"] >= 0).all() and (
        epochs["paused_seconds"] <= epochs["epoch_seconds"]
    ).all()
    done = store.checkpoints(run_id)["latest"]
    assert done == stopped.last_epoch >= 1
    steps_before = store.batch_metrics(run_id)["step"].max()

    # Continue for two more epochs from the latest checkpoint, optimizer state included.
    scheduler = Scheduler(store, LocalProcessExecutor(store.home, warm=False), max_workers=1)
    blocker = _hold_the_only_slot(store)
    assert scheduler.continue_run(run_id, 2).status == Status.QUEUED
    assert store.get_run(run_id).training().epochs == done + 2
    _train_queued_here(store, run_id, blocker)
    finished = store.get_run(run_id)
    assert finished.status == Status.COMPLETED, finished.traceback
    assert list(store.epoch_metrics(run_id)["epoch"]) == list(range(1, done + 3))
    model = keras.models.load_model(store.checkpoint_path(run_id, "latest"))
    steps_per_epoch = int(np.ceil(len(datasets.load(specs.DataSettings()).y_train) / 16))
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) > steps_before
    assert store.batch_metrics(run_id)["step"].max() == (done + 2) * steps_per_epoch
    assert "continuing from the checkpoint of epoch" in " ".join(store.events(run_id)["message"])
    # TensorBoard has each whole epoch once, those of both fits; the epoch cut short by the stop is not there.
    logged = _tensorboard_scalars(exports.tensorboard_folder(store, run_id) / "train")["epoch_loss"]
    assert sorted(logged) == list(range(1, done + 3))
    assert logged[done + 2] == pytest.approx(store.epoch_metrics(run_id)["loss"].iloc[-1], rel=1e-6)
    never_ran = store.create_run(
        RunRequest(spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings())
    )
    with pytest.raises(RunError, match="only a completed, stopped, pruned or interrupted run"):
        scheduler.continue_run(never_ran.id, 1)


def test_fork_starts_from_the_parent_weights_with_new_settings(store: Store) -> None:
    parent_id = _train(store, specs.TrainingSettings(epochs=3))
    forker = Scheduler(store, LocalProcessExecutor(store.home, warm=False), max_workers=1)
    blocker = _hold_the_only_slot(store)
    fork = forker.fork(
        parent_id, 2, specs.TrainingSettings(epochs=4, learning_rate=0.0005, optimizer="rmsprop")
    )
    assert (fork.status, fork.parent_id, fork.parent_epoch) == (Status.QUEUED, parent_id, 2)
    assert list(store.epoch_metrics(fork.id)["epoch"]) == [1, 2]
    _train_queued_here(store, fork.id, blocker)
    forked = store.get_run(fork.id)
    assert forked.status == Status.COMPLETED, forked.traceback
    assert list(store.epoch_metrics(fork.id)["epoch"]) == [1, 2, 3, 4]
    parent_epochs = store.epoch_metrics(parent_id)
    first_fork_batch = store.batch_metrics(fork.id)["loss"].iloc[0]
    assert first_fork_batch < parent_epochs["loss"].iloc[0] / 2  # It did not start from scratch.
    assert (
        keras.models.load_model(store.checkpoint_path(fork.id, "latest")).optimizer.__class__.__name__
        == "RMSprop"
    )
    with pytest.raises(RunError, match="no weights saved for epoch 9"):
        forker.fork(parent_id, 9)


# The real job in real processes.


def test_a_real_worker_trains_and_a_sigkill_keeps_what_it_recorded(store: Store) -> None:
    target = Scheduler(
        store, LocalProcessExecutor(store.home, threads=1, warm=False), poll_seconds=0.1
    ).start()
    try:
        run = target.submit(
            RunRequest(
                spec=SPEC,
                data_settings=specs.DataSettings(),
                training_settings=specs.TrainingSettings(epochs=200),
            )
        )
        wait_until(lambda: store.get_run(run.id).last_epoch >= 1, "the first epoch")
        recorded = len(store.batch_metrics(run.id))
        os.kill(store.get_run(run.id).worker_pid, signal.SIGKILL)
        wait_until(lambda: store.get_run(run.id).is_ended, "the scheduler to notice the killed worker")
        failed = store.get_run(run.id)
        assert failed.status == Status.INTERRUPTED and failed.reason.startswith("The worker process died")
        assert len(store.batch_metrics(run.id)) >= recorded
        assert keras.models.load_model(store.checkpoint_path(run.id, "latest")) is not None
        assert "took the run" in " ".join(store.events(run.id)["message"])
        # The worker said which device it trains on as it started (cnnlab.runs.worker.devices).
        assert "training on CPU (1 thread)" in store.events(run.id)["message"].tolist()
        assert failed.results is not None and failed.results["device"] == "CPU (1 thread)"
    finally:
        target.shutdown()


@pytest.mark.nightly  # 40 epochs; benchmarks/digits_accuracy.py reports the same accuracy.
def test_the_cli_trains_the_default_digits_preset_to_97_percent(
    cli_default_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    # `python -m cnnlab train digits_default --dataset digits`, run once for the suite (tests/conftest.py).
    home, completed = cli_default_run
    environment = {**os.environ, "CNNLAB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    # The preset's own settings: 40 epochs with augmentation (benchmarks/digits_accuracy.py: median 98.9%).
    assert summary["status"] == "completed" and summary["epochs"] == 40
    assert summary["test_accuracy"] >= 0.97
    assert set(summary) >= {
        "run_id",
        "train_loss",
        "train_accuracy",
        "validation_loss",
        "validation_accuracy",
        "test_loss",
    }
    assert "epoch 40/40" in completed.stderr
    assert not summary.get("diagnoses"), summary["diagnoses"]  # A healthy default run is not diagnosed.
    listing = subprocess.run(
        [sys.executable, "-m", "cnnlab", "runs"], env=environment, capture_output=True, text=True
    )
    assert summary["run_id"] in listing.stdout and "completed" in listing.stdout
    stop = subprocess.run(
        [sys.executable, "-m", "cnnlab", "stop", summary["run_id"]],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert "had already ended" in stop.stdout
