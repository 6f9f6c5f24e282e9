"""Checkpoints: finding "best", "latest" and epoch N in a real store, loading with Keras, and the best epoch."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.store import best, retention
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import checkpoints
from cnnlab.trained.checkpoints import CheckpointError

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow


def tiny_model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def new_run(store: Store) -> str:
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(),
            name="checkpointed",
        )
    )
    return run.id


def add_epochs(store: Store, run_id: str, rows: list[dict[str, float]]) -> None:
    for epoch, row in enumerate(rows, start=1):
        store.add_epoch_metrics(run_id, {"epoch": epoch, "loss": 1.0, **row})


@pytest.fixture
def saved(store: Store) -> tuple[str, keras.Model, keras.Model]:
    """A run with epoch 1's weights, its best model at epoch 1 and its latest model at epoch 2."""
    run_id = new_run(store)
    first, second = tiny_model(0), tiny_model(1)
    arrays = {
        f"{layer.name}/{index}": weight
        for layer in first.layers
        for index, weight in enumerate(layer.get_weights())
    }
    store.save_checkpoint(run_id, 1, 1, lambda path: np.savez(path, **arrays))
    store.save_checkpoint(run_id, "best", 1, first.save)
    store.save_checkpoint(run_id, "latest", 2, second.save)
    return run_id, first, second


def test_find_names_each_checkpoint_file(store: Store, saved: tuple[str, keras.Model, keras.Model]) -> None:
    run_id = saved[0]
    best_checkpoint = checkpoints.find(store, run_id)
    assert (best_checkpoint.name, best_checkpoint.epoch, best_checkpoint.is_model) == ("best", 1, True)
    assert best_checkpoint.path == store.checkpoint_path(run_id, "best") and best_checkpoint.path.is_file()
    assert checkpoints.find(store, run_id, "latest").epoch == 2
    for request in (1, "epoch_0001"):
        epoch = checkpoints.find(store, run_id, request)
        assert (epoch.name, epoch.epoch, epoch.is_model) == ("epoch_0001", 1, False)
        assert epoch.path == store.checkpoint_path(run_id, 1)
    assert [checkpoint.name for checkpoint in checkpoints.models(store, run_id)] == ["best", "latest"]
    assert checkpoints.available(store, run_id) == {"epoch_0001": 1, "best": 1, "latest": 2}


def test_a_missing_checkpoint_says_what_was_asked_and_what_exists(
    store: Store, saved: tuple[str, keras.Model, keras.Model]
) -> None:
    run_id = saved[0]
    with pytest.raises(
        CheckpointError, match=r"no 'epoch 5' checkpoint: it has .*best \(epoch 1\).*latest \(epoch 2\)"
    ):
        checkpoints.find(store, run_id, 5)
    empty = new_run(store)
    with pytest.raises(CheckpointError, match="no 'best' checkpoint: it has none yet") as caught:
        checkpoints.find(store, empty, "best")
    assert isinstance(caught.value, RunError)  # Pages and the CLI catch it as a run error.
    for wrong in ("worst", -1, True):
        with pytest.raises(CheckpointError, match=rf"'best', 'latest' or an epoch number.*got {wrong!r}"):
            checkpoints.find(store, run_id, wrong)


def test_a_recorded_checkpoint_whose_file_is_gone_is_not_found(
    store: Store, saved: tuple[str, keras.Model, keras.Model]
) -> None:
    run_id = saved[0]
    store.checkpoint_path(run_id, "best").unlink()
    assert [checkpoint.name for checkpoint in checkpoints.models(store, run_id)] == ["latest"]
    with pytest.raises(CheckpointError, match=r"no 'best' checkpoint: it has .*latest \(epoch 2\)"):
        checkpoints.find(store, run_id, "best")


def test_load_gives_the_saved_model(store: Store, saved: tuple[str, keras.Model, keras.Model]) -> None:
    run_id, first, second = saved
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    for which, original in (("best", first), ("latest", second)):
        loaded = checkpoints.load(checkpoints.find(store, run_id, which))
        np.testing.assert_allclose(
            loaded.predict(images, verbose=0), original.predict(images, verbose=0), atol=1e-6
        )
    checkpoint = checkpoints.find(store, run_id, "latest")
    before = checkpoint.modified
    store.save_checkpoint(run_id, "latest", 3, first.save)
    assert checkpoints.find(store, run_id, "latest").modified != before  # What the UI's cache is keyed by.


def test_load_refuses_weights_and_damaged_files(
    store: Store, saved: tuple[str, keras.Model, keras.Model]
) -> None:
    run_id = saved[0]
    with pytest.raises(CheckpointError, match=r"holds layer weights only.*fork the run from epoch 1"):
        checkpoints.load(checkpoints.find(store, run_id, 1))
    store.checkpoint_path(run_id, "latest").write_bytes(b"not a zip file")
    with pytest.raises(
        CheckpointError, match=r"'latest' of run .* cannot be loaded.*train the run again"
    ) as refused:
        checkpoints.load(checkpoints.find(store, run_id, "latest"))
    assert "latest.keras" in str(refused.value) and str(store.home) not in str(refused.value)  # No folder.


def test_best_epoch_follows_the_one_definition(store: Store) -> None:
    run_id = new_run(store)
    assert checkpoints.best_epoch(store, run_id) is None
    add_epochs(
        store,
        run_id,
        [
            {"accuracy": 0.5, "val_accuracy": 0.6},
            {"accuracy": 0.7, "val_accuracy": 0.8},
            {"accuracy": 0.9, "val_accuracy": 0.8},  # A tie goes to the earlier epoch.
            {"accuracy": 0.95, "val_accuracy": 0.7},
        ],
    )
    metrics = store.epoch_metrics(run_id)
    found = checkpoints.best_epoch(store, run_id)
    assert found == checkpoints.EpochScore(2, "val_accuracy", 0.8)
    assert (
        found.epoch
        == best.best_epoch(metrics)
        == int(metrics.sort_values("val_accuracy", ascending=False, kind="stable")["epoch"].iloc[0])
    )
    assert found.describe() == "epoch 2, val. accuracy 80.0%"
    assert checkpoints.epoch_score(store, run_id, 4).describe() == "epoch 4, val. accuracy 70.0%"


def test_without_a_validation_split_best_is_the_training_accuracy(store: Store) -> None:
    run_id = new_run(store)
    add_epochs(store, run_id, [{"accuracy": 0.6}, {"accuracy": 0.9}, {"accuracy": 0.8}])
    assert pd.isna(store.epoch_metrics(run_id)["val_accuracy"]).all()
    found = checkpoints.best_epoch(store, run_id)
    assert found == checkpoints.EpochScore(2, "accuracy", 0.9)
    assert found.describe() == "epoch 2, accuracy 90.0%"
    assert checkpoints.epoch_score(store, run_id, 7).describe() == "epoch 7"  # No metrics for that epoch.


def test_describe_labels_a_checkpoint_with_its_epochs_score(
    store: Store, saved: tuple[str, keras.Model, keras.Model]
) -> None:
    run_id = saved[0]
    add_epochs(
        store, run_id, [{"accuracy": 0.5, "val_accuracy": 0.75}, {"accuracy": 0.6, "val_accuracy": 0.5}]
    )
    labels = [checkpoints.describe(store, checkpoint) for checkpoint in checkpoints.models(store, run_id)]
    assert labels == ["best (epoch 1, val. accuracy 75.0%)", "latest (epoch 2, val. accuracy 50.0%)"]


def test_the_best_checkpoint_scores_what_the_run_says(peaked_home: tuple[Path, str]) -> None:
    """A real run whose validation accuracy peaks before its last epoch: the `best` checkpoint is that
    epoch's model, and evaluated on the validation split it scores what the pickers and run card show."""
    from cnnlab.data import datasets
    from cnnlab.trained import evaluation, exports

    store, run_id = Store(peaked_home[0]), peaked_home[1]
    run = store.get_run(run_id)
    found = checkpoints.best_epoch(store, run_id)
    assert found is not None and found.monitor == "val_accuracy"
    assert found.epoch < run.last_epoch, "the fixture's validation accuracy should peak before its last epoch"
    checkpoint = checkpoints.find(store, run_id, "best")
    assert checkpoint.epoch == found.epoch == run.result("best_epoch")
    assert run.result("best_val_accuracy") == pytest.approx(found.value)
    assert exports.run_card(store, run)["best_validation"] == {
        "epoch": found.epoch,
        "val_accuracy": found.value,
    }
    data = datasets.load(run.data())
    images, labels = evaluation.split_arrays(data, "validation")
    measured = evaluation.evaluate(checkpoints.load(checkpoint), images, labels, data.class_names)
    assert measured.accuracy == pytest.approx(found.value, abs=1e-6)
    assert checkpoints.describe(store, checkpoint) == f"best ({found.describe()})"
    latest = checkpoints.find(store, run_id, "latest")
    assert (
        latest.epoch == run.last_epoch
        and checkpoints.epoch_score(store, run_id, latest.epoch).value != found.value
    )


def test_an_ended_runs_results_label_its_checkpoints_as_its_table_does(
    peaked_home: tuple[Path, str], trained_home: tuple[Path, str]
) -> None:
    """The pickers read an ended run's scores from its results, not its metrics table: for a run whose
    best epoch is not its last and for a one-epoch run, both say the same; a live run reads the table."""
    import dataclasses

    from cnnlab.store.statuses import Status

    for home, run_id in (peaked_home, trained_home):
        store = Store(home)
        run = store.get_run(run_id)
        recorded = checkpoints.recorded_best(run)
        assert recorded is not None and recorded == checkpoints.best_epoch(store, run_id)
        for checkpoint in checkpoints.models(store, run_id):
            assert checkpoints.recorded_score(run, checkpoint.epoch) == checkpoints.epoch_score(
                store, run_id, checkpoint.epoch
            )
            assert checkpoints.describe(store, checkpoint, run) == checkpoints.describe(store, checkpoint)
        running = dataclasses.replace(run, status=Status.RUNNING)
        assert checkpoints.recorded_best(running) is None
        more = dataclasses.replace(run, last_epoch=run.last_epoch + 1)  # An epoch recorded since.
        assert checkpoints.recorded_best(more) is None


# Which epochs keep their layer weights (`cnnlab.store.retention`).

CHECKPOINT_BUDGET_BYTES = 10 * 1000 * 1000  # a 100-epoch run of the 151k-parameter digits CNN


def test_the_milestones_the_best_the_latest_and_forked_epochs_keep_their_weights() -> None:
    assert [epoch for epoch in range(1, 101) if retention.is_milestone(epoch)] == [1, 2, 4, 8, 16, 32, 64]
    assert retention.epochs_to_drop([1, 2, 3], latest=3, best=None) == []
    assert retention.epochs_to_drop([1, 2, 3, 4, 5], latest=5, best=3, forked=[]) == []
    assert retention.epochs_to_drop(range(1, 8), latest=7, best=3, forked=[6]) == [5]
    # Whatever the best epoch, a 100-epoch run keeps at most 9 epochs' weights.
    for best_epoch in (1, 34, 64, 99, 100):
        kept = set(range(1, 101)) - set(retention.epochs_to_drop(range(1, 101), 100, best_epoch))
        assert len(kept) <= 9 and {1, 64, best_epoch, 100} <= kept


def test_checkpoints_of_the_digits_cnn_fit_the_budget_and_fork_and_continue_still_work(store: Store) -> None:
    """Ten epochs of the 151,306-parameter digits CNN through the real `Checkpoints` callback: the files
    kept are the rule's, a fork from a kept epoch works and from a dropped one says which exist, and
    the files' sizes put a 100-epoch run under the budget."""
    from cnnlab.runs.queue.executor import LocalProcessExecutor
    from cnnlab.runs.queue.scheduler import Scheduler
    from cnnlab.runs.worker import first_step, training
    from cnnlab.runs.worker.artifact_callbacks import Checkpoints, load_layer_weights
    from cnnlab.runs.worker.callbacks import FitProgress

    spec, settings = presets.get("digits_default").spec, specs.TrainingSettings(epochs=10)
    run_id = new_run(store)
    model = training.new_model(spec, settings)
    first_step.build_for_fit(model, np.zeros((4, 8, 8, 1), np.float32), np.zeros(4, np.int64), 4)
    assert model.count_params() == 151_306
    callback = Checkpoints(store, run_id, FitProgress())
    callback.set_model(model)
    scheduler = Scheduler(store, LocalProcessExecutor(store.home, warm=False), max_workers=1)
    accuracies = [0.5, 0.6, 0.8, 0.7, 0.7, 0.75, 0.7, 0.7, 0.7, 0.7]  # Epoch 3 stays the best.
    for epoch, accuracy in enumerate(accuracies):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy})
        if epoch + 1 == 5:  # Forked while epoch 5 is the latest: its weights stay.
            store.set_status(run_id, Status.STOPPED)
            scheduler.fork(run_id, 5, specs.TrainingSettings(epochs=8))
    saved = store.checkpoints(run_id)
    assert sorted(epoch for name, epoch in saved.items() if name.startswith("epoch_")) == [
        1,
        2,
        3,
        4,
        5,
        8,
        10,
    ]
    folder = store.run_folder(run_id) / "checkpoints"
    assert sorted(path.name for path in folder.glob("epoch_*")) == [
        f"epoch_{epoch:04d}.weights.npz" for epoch in (1, 2, 3, 4, 5, 8, 10)
    ]
    with pytest.raises(
        RunError, match=r"no weights saved for epoch 7; it has epochs \[1, 2, 3, 4, 5, 8, 10\]"
    ):
        scheduler.fork(run_id, 7)
    # A fork loads a kept epoch's layer weights by name.
    assert load_layer_weights(training.new_model(spec, settings), store.checkpoint_path(run_id, 8)) > 0
    # Continue needs the latest model with its optimizer state; Evaluate the best.
    latest = keras.models.load_model(store.checkpoint_path(run_id, "latest"))
    assert int(keras.ops.convert_to_numpy(latest.optimizer.iterations)) == int(
        keras.ops.convert_to_numpy(model.optimizer.iterations)
    )
    assert saved["best"] == 3 and saved["latest"] == 10
    # 100 epochs keep at most 9 epochs' weights and the two models: within the budget.
    models = sum(store.checkpoint_path(run_id, which).stat().st_size for which in ("best", "latest"))
    one_epoch = store.checkpoint_path(run_id, 10).stat().st_size
    assert models + 9 * one_epoch <= CHECKPOINT_BUDGET_BYTES, (models, one_epoch)
