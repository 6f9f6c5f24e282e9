"""Figures: built from stored arrays (float16, uint8) and tables, and serialisable for the browser."""

import numpy as np
import pandas as pd
import plotly.io

from cnnlab.figures import data, model, training
from cnnlab.model import presets, shapes


def serialises(figure) -> str:
    return plotly.io.to_json(figure)


def test_training_figures_take_stored_snapshot_types() -> None:
    generator = np.random.default_rng(0)
    kernel = generator.normal(size=(3, 3, 2, 40)).astype(np.float16)
    figure = training.kernels(kernel, layer="conv2d_1")
    assert figure.layout.title.text == "32 filters of conv2d_1, in reading order"  # capped
    tiles = figure.data[0].z
    assert np.nanmax(np.abs(tiles)) == 1.0 and np.isnan(tiles).any()
    serialises(figure)
    serialises(training.feature_maps(generator.random((6, 6, 20)).astype(np.float16)))
    matrix = np.array([[5, 1], [0, 4]], dtype=np.int64)
    normalised = training.confusion_matrix(matrix, ["a", "b"], normalise=True)
    assert np.allclose(normalised.data[0].z, [[5 / 6, 1 / 6], [0, 1]])
    serialises(normalised)


def test_prediction_panel_marks_right_and_wrong() -> None:
    images = np.zeros((2, 8, 8, 1), np.uint8)
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2]], np.float16)
    figure = training.prediction_panel(images, np.array([0, 1]), probabilities, ["cat", "dog"])
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles == ["✓ cat 90%", "✗ cat 80% (is dog)"]


def test_curves_show_train_and_validation() -> None:
    epochs = pd.DataFrame(
        {"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "learning_rate": [0.1, 0.1]}
    )
    batches = pd.DataFrame({"epoch": [1, 1, 2], "batch": [0, 1, 0], "loss": [1.2, 0.9, 0.6]})
    figure = training.curves(epochs, batches, "loss")
    assert [trace.name for trace in figure.data] == ["train loss (batches)", "train loss", "validation loss"]
    serialises(training.learning_rate(epochs))


def test_architecture_and_data_figures() -> None:
    analysis = shapes.analyse(presets.get("cifar10").spec)
    figure = model.architecture(analysis)
    assert len(figure.layout.shapes) == len(analysis.rows) + 1
    images = np.random.default_rng(1).random((20, 8, 8, 1)).astype(np.float32)
    labels = np.repeat(np.arange(2), 10)
    grid = data.samples_per_class(images, labels, ["zero", "one"], per_class=3)
    assert len(grid.data) == 6
    summary = pd.DataFrame({"train": [7, 7], "validation": [2, 2], "test": [1, 1]}, index=["zero", "one"])
    assert len(data.class_balance(summary).data) == 3


def test_mosaic_places_each_tile_scaled_on_its_own() -> None:
    planes = [np.full((2, 2), 5.0), np.array([[0.0, 2.0], [4.0, 4.0]])]
    canvas = training.mosaic(planes, columns=2, symmetric=False)
    assert canvas.shape == (2, 5)
    assert np.isnan(canvas[:, 2]).all()
    np.testing.assert_allclose(canvas[:, 3:], [[0.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(canvas[:, :2], 0.0)


def test_compact_numbers_for_the_model_table() -> None:
    from cnnlab.ui.tables import compact_number

    assert [compact_number(value) for value in (950, 12_345, 2_664_960, 15.5e9)] == [
        "950",
        "12.3 k",
        "2.66 M",
        "15.5 G",
    ]
