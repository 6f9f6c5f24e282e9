"""Telemetry: per-epoch measurements of a model, checked against Keras and scikit-learn.

A tiny convolutional model on 30 random 8x8 images; the oracles are `model.evaluate` for the
validation figures, `sklearn.metrics.confusion_matrix`, and the server's evaluation of the same images
(the shared scores themselves are checked in `test_classification.py`).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn import metrics

from cnnlab import specs
from cnnlab.run_request import RunRequest
from cnnlab.runs.views import health
from cnnlab.runs.worker import telemetry
from cnnlab.store.run_store import Store
from cnnlab.trained import classification, evaluation

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

RNG = np.random.default_rng(3)
X_VAL = RNG.random((30, 8, 8, 1), dtype=np.float32)
Y_VAL = np.arange(30) % 3
CLASSES = ("a", "b", "c")


def tiny_model(outputs: int = 3, activation: str = "softmax", regulariser: float = 0.0) -> keras.Model:
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                70,
                3,
                name="conv",
                kernel_regularizer=keras.regularizers.L2(regulariser) if regulariser else None,
            ),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(),
            keras.layers.Dense(outputs, activation=activation, name="dense"),
        ]
    )
    loss = "sparse_categorical_crossentropy" if outputs > 1 else "binary_crossentropy"
    model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
    return model


def test_the_panel_takes_classes_in_turn_and_stays_fixed() -> None:
    labels = np.array([2, 2, 0, 1, 0, 2, 1, 1])
    panel = telemetry.choose_panel(labels, size=5)
    # The first of classes 0, 1 and 2 (images 2, 3, 0), then the second of 0 and 1 (4, 6).
    assert panel.tolist() == [0, 2, 3, 4, 6]
    assert sorted(labels[panel].tolist()) == [0, 0, 1, 1, 2]
    assert telemetry.choose_panel(labels, size=50).tolist() == list(range(8))


@pytest.mark.parametrize(("outputs", "activation"), [(3, "softmax"), (1, "sigmoid")])
def test_validation_agrees_with_keras_evaluate(outputs: int, activation: str) -> None:
    model = tiny_model(outputs, activation, regulariser=0.01)
    labels = Y_VAL if outputs > 1 else Y_VAL % 2
    watcher = telemetry.Telemetry(model, X_VAL, labels, CLASSES if outputs > 1 else ("no", "yes"))
    figures, confusion = watcher.validate()
    keras_loss, keras_accuracy = model.evaluate(X_VAL, labels, verbose=0)
    assert figures["val_loss"] == pytest.approx(keras_loss, rel=1e-4)  # Penalties included.
    assert figures["val_accuracy"] == pytest.approx(keras_accuracy)
    predicted = classification.predicted_classes(model.predict(X_VAL, verbose=0))
    expected = metrics.confusion_matrix(labels, predicted, labels=range(max(outputs, 2)))
    np.testing.assert_array_equal(confusion["matrix"], expected)
    # The server's evaluation of the same images gives the same figures (one shared definition).
    names = CLASSES if outputs > 1 else ("no", "yes")
    server = evaluation.evaluate(model, X_VAL, labels, names)
    assert server.loss == pytest.approx(figures["val_loss"], rel=1e-6)
    assert server.accuracy == pytest.approx(figures["val_accuracy"])
    np.testing.assert_array_equal(server.confusion, confusion["matrix"])


def test_snapshots_are_capped_and_match_the_model() -> None:
    model = tiny_model()
    probes = RNG.random((6, 8, 8, 1), dtype=np.float32)
    watcher = telemetry.Telemetry(model, X_VAL, Y_VAL, CLASSES, probes)
    kernels = watcher.kernels()
    assert kernels["conv"].shape == (3, 3, 1, telemetry.MAX_FILTERS)
    np.testing.assert_array_equal(kernels["conv"], model.get_layer("conv").get_weights()[0][..., :64])
    images = telemetry.PANEL_SIZE + telemetry.MAX_PROBES
    maps = watcher.feature_maps()
    assert maps["conv"].shape == (images, 6, 6, telemetry.MAX_MAP_CHANNELS)
    assert maps["pool"].shape == (images, 3, 3, telemetry.MAX_MAP_CHANNELS)
    predictions = watcher.predictions()
    assert predictions["panel"].shape == (telemetry.PANEL_SIZE, 3) and predictions["probes"].shape == (4, 3)
    expected = model.predict(X_VAL[watcher.panel_indices], verbose=0)
    np.testing.assert_allclose(predictions["panel"], expected, rtol=1e-5, atol=1e-6)
    histograms = watcher.histograms()
    for layer in ("conv", "dense"):
        for variable in model.get_layer(layer).trainable_weights:
            key = f"{layer}/{variable.name}"
            assert histograms[key].sum() == np.prod(variable.shape)
            assert len(histograms[f"{key}.edges"]) == telemetry.HISTOGRAM_BINS + 1
    assert set(watcher.snapshots()) == {
        "kernels",
        "feature_maps",
        "predictions",
        "histograms",
        "layer_health",
    }


def test_the_panel_snapshot_holds_images_as_bytes_with_their_labels() -> None:
    watcher = telemetry.Telemetry(tiny_model(), X_VAL, Y_VAL, CLASSES)
    panel = watcher.panel()
    assert panel["images"].dtype == np.uint8 and len(panel["images"]) == telemetry.PANEL_SIZE
    np.testing.assert_array_equal(panel["labels"], Y_VAL[panel["indices"]])
    assert panel["class_names"].tolist() == list(CLASSES) and len(panel["probes"]) == 0


def test_probes_of_the_wrong_shape_are_ignored_and_no_validation_means_no_figures() -> None:
    wrong = RNG.random((2, 10, 10, 1), dtype=np.float32)
    watcher = telemetry.Telemetry(tiny_model(), X_VAL, Y_VAL, CLASSES, wrong)
    assert watcher.probes.shape == (0, 8, 8, 1)
    empty = telemetry.Telemetry(tiny_model(), X_VAL[:0], Y_VAL[:0], CLASSES)
    assert empty.validate() == ({}, {}) and empty.predictions() == {} and empty.feature_maps() == {}


# Layer health.


def relu_model() -> keras.Model:
    """A ReLU convolution and a ReLU dense layer, where a few units are made dead on purpose."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="relu", name="hidden"),
            keras.layers.Dense(3, activation="softmax", name="dense"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    for name, dead in (("conv", 2), ("hidden", 5)):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[..., :dead], bias[:dead] = 0.0, -1.0  # Always negative before the ReLU: never fires.
        bias[dead:] = 10.0  # Always positive: fires on every image.
        model.get_layer(name).set_weights([kernel, bias])
    return model


def test_dead_relu_shares_come_from_the_validation_pass() -> None:
    watcher = telemetry.Telemetry(relu_model(), X_VAL, Y_VAL, CLASSES)
    assert watcher.dead_shares == {}
    watcher.validate()
    assert watcher.dead_shares == {"conv": pytest.approx(2 / 8), "hidden": pytest.approx(5 / 10)}


def test_gradient_norms_agree_with_a_gradient_tape_on_the_fixed_batch() -> None:
    import tensorflow as tf

    model = tiny_model(regulariser=0.01)
    images, labels = X_VAL[:20], Y_VAL[:20]
    watcher = telemetry.Telemetry(model, X_VAL, Y_VAL, CLASSES, gradient_batch=(images, labels))
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy()(labels, model(images, training=False))
        loss += sum(model.losses)
    gradients = tape.gradient(loss, model.trainable_weights)
    expected = {
        layer.name: float(np.sqrt(sum(np.sum(np.square(gradient)) for gradient in grads)))
        for layer in model.layers
        if (
            grads := [
                g
                for w, g in zip(model.trainable_weights, gradients, strict=True)
                if any(w is v for v in layer.trainable_weights)
            ]
        )
    }
    norms = watcher.gradient_norms()
    assert set(norms) == {"conv", "dense"}
    for name, value in expected.items():
        assert norms[name] == pytest.approx(value, rel=1e-4)


def test_one_panel_pass_gives_maps_predictions_and_activations(tmp_path) -> None:
    model = relu_model()
    watcher = telemetry.Telemetry(model, X_VAL, Y_VAL, CLASSES)
    calls = []
    panel_model = watcher._panel_model
    watcher._panel_model = lambda inputs, training: (
        calls.append(len(inputs)) or panel_model(inputs, training=training)
    )
    watcher.validate()
    snapshots = watcher.snapshots()
    assert calls == [telemetry.PANEL_SIZE]  # Feature maps, predictions and histograms from one pass.
    expected = model.predict(X_VAL[watcher.panel_indices], verbose=0)
    np.testing.assert_allclose(snapshots["predictions"]["panel"], expected, rtol=1e-5, atol=1e-6)
    store = Store(tmp_path)
    spec = specs.ModelSpec.from_dict({"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}]})
    run_id = store.create_run(RunRequest(spec=spec)).id
    store.write_snapshot(run_id, 1, health.KIND, snapshots[health.KIND])
    table = health.layer_health(store, run_id)
    assert table["layer"].tolist() == ["conv", "hidden", "dense"]
    norms = watcher.gradient_norms()
    for row in table.itertuples():
        assert row.gradient_norm == pytest.approx(norms[row.layer], rel=0.01)  # Kept as float16 log10.
    shares = dict(zip(table["layer"], table["dead_share"], strict=True))
    assert shares["conv"] == pytest.approx(0.25, abs=1e-3) and np.isnan(shares["dense"])
    activations = health.activation_histograms(store, run_id, 1)
    assert set(activations) == {"conv", "hidden"}
    counts, edges = activations["hidden"]
    assert counts.sum() == telemetry.PANEL_SIZE * 10 and len(edges) == telemetry.HISTOGRAM_BINS + 1
