"""Exports of a run: model, TFLite, script, metrics, run card, bundle, where its TensorBoard logs are."""

from __future__ import annotations

import ast
import io
import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from cnnlab.errors import RunError
from cnnlab.model import build, presets, shapes
from cnnlab.run_request import RunRequest
from cnnlab.runs.views import compare
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.trained import exports


def recorded_run(store: Store, learning_rate: float = 0.001, spec: ModelSpec | None = None) -> str:
    """A run whose model (untrained weights) and two epochs of metrics are in the real store."""
    spec = spec or presets.get("digits_default").spec
    settings = TrainingSettings(epochs=2, learning_rate=learning_rate)
    run = store.create_run(
        RunRequest(spec=spec, data_settings=DataSettings(), training_settings=settings, name="tiny run")
    )
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    model = build.build_model(spec, settings)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    store.save_checkpoint(run.id, "best", 2, lambda path: model.save(path))
    for epoch in (1, 2):
        store.add_epoch_metrics(
            run.id,
            {
                "epoch": epoch,
                "loss": 1.0 / epoch,
                "accuracy": 0.4 * epoch,
                "val_loss": 1.5 / epoch,
                "val_accuracy": 0.3 * epoch,
                "learning_rate": learning_rate,
                "epoch_seconds": 0.5,
            },
        )
    store.set_status(run.id, Status.COMPLETED)
    return run.id


def test_model_download_loads_back_with_keras(store: Store, tmp_path: Path) -> None:
    run = store.get_run(recorded_run(store))
    path = tmp_path / "downloaded.keras"
    path.write_bytes(exports.model_bytes(store, run))
    model = keras.models.load_model(path)
    assert model.count_params() == shapes.analyse(presets.get("digits_default").spec).total_parameters


def test_a_run_without_a_model_says_so(store: Store) -> None:
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=DataSettings(),
            training_settings=TrainingSettings(),
        )
    )
    with pytest.raises(RunError, match="no saved model yet"):
        exports.model_bytes(store, run)


def test_tflite_model_predicts_like_keras(store: Store) -> None:
    import tensorflow as tf

    run = store.get_run(recorded_run(store))
    interpreter = tf.lite.Interpreter(model_content=exports.tflite_bytes(store, run))
    interpreter.allocate_tensors()
    image = np.random.default_rng(0).random((1, 8, 8, 1)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    model = keras.saving.load_model(store.checkpoint_path(run.id, "best"))
    np.testing.assert_allclose(lite, model.predict(image, verbose=0), atol=1e-5)


def test_quantized_tflite_is_smaller_and_close(store: Store) -> None:
    import tensorflow as tf

    run = store.get_run(recorded_run(store))
    full, quantized = exports.tflite_bytes(store, run), exports.tflite_bytes(store, run, quantize=True)
    assert len(quantized) < len(full) / 3
    outputs = []
    image = np.random.default_rng(1).random((1, 8, 8, 1)).astype(np.float32)
    for content in (full, quantized):
        interpreter = tf.lite.Interpreter(model_content=content)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    np.testing.assert_allclose(outputs[0], outputs[1], atol=0.05)


def test_bundle_holds_every_file_and_a_run_card(store: Store) -> None:
    run = store.get_run(recorded_run(store))
    with zipfile.ZipFile(io.BytesIO(exports.bundle(store, run, include_tflite=False))) as archive:
        names = {Path(name).name for name in archive.namelist()}
        assert names == {"model.keras", "train.py", "metrics.csv", "run_card.json"}
        card = json.loads(
            archive.read(next(name for name in archive.namelist() if name.endswith("run_card.json")))
        )
        script = archive.read(next(name for name in archive.namelist() if name.endswith("train.py"))).decode()
    assert card["parameters"]["total"] == shapes.analyse(presets.get("digits_default").spec).total_parameters
    assert card["best_validation"] == {"epoch": 2, "val_accuracy": 0.6}
    assert card["status"] == "completed"
    ast.parse(script)
    assert "load_digits" in script


def test_metrics_csv_has_one_line_per_epoch(store: Store) -> None:
    run = store.get_run(recorded_run(store))
    lines = exports.metrics_csv(store, run).strip().splitlines()
    assert lines[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy")
    assert len(lines) == 3


def test_the_tensorboard_folder_is_in_the_run_folder_and_empty_before_training(store: Store) -> None:
    run_id = recorded_run(store)
    assert exports.tensorboard_folder(store, run_id).parent == store.run_folder(run_id)
    # Metrics alone make no logs: the worker's Keras callback writes them during the fit.
    assert not exports.has_tensorboard_logs(store, run_id)


def test_compare_lists_what_differs(store: Store) -> None:
    first = store.get_run(recorded_run(store, learning_rate=0.001))
    other_spec = presets.get("digits_default").spec
    other_spec = other_spec.replace_layers(
        [other_spec.layers[0].with_params(filters=8), *other_spec.layers[1:]]
    )
    second = store.get_run(recorded_run(store, learning_rate=0.01, spec=other_spec))
    table = compare.differences([first, second])
    assert "training.learning_rate" in table.index
    assert "layer 01" in table.index and "model.parameters" in table.index
    assert "training.batch_size" not in table.index
    assert list(table.loc["training.learning_rate"]) == ["0.001", "0.01"]
    assert "training.batch_size" in compare.differences([first, second], only_different=False).index


def test_without_a_best_checkpoint_the_latest_model_is_exported(store: Store) -> None:
    run = store.get_run(recorded_run(store))
    best_bytes = exports.model_bytes(store, run)
    store.save_checkpoint(run.id, "latest", 2, lambda path: path.write_bytes(best_bytes))
    store.checkpoint_path(run.id, "best").unlink()
    assert exports.model_checkpoint(store, run).name == "latest"
    assert exports.model_bytes(store, run) == best_bytes


def test_the_run_card_follows_the_one_best_definition(store: Store) -> None:
    run = store.get_run(recorded_run(store))
    # A later epoch that ties the best validation accuracy does not replace it: the earliest wins.
    store.add_epoch_metrics(
        run.id, {"epoch": 3, "loss": 0.2, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.6}
    )
    assert exports.run_card(store, run)["best_validation"] == {"epoch": 2, "val_accuracy": 0.6}
    unvalidated = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=DataSettings(),
            training_settings=TrainingSettings(),
        )
    )
    store.add_epoch_metrics(unvalidated.id, {"epoch": 1, "loss": 1.0, "accuracy": 0.5})
    assert exports.run_card(store, unvalidated)["best_validation"] is None  # No validation split, none shown.
