"""Figures of a training run, built from stored arrays (float16, uint8) and tables: each test
checks what the figure shows (traces, their values, axis titles), and that it serialises."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.io

from cnnlab.figures import training


def serialised(figure: object) -> dict:
    """The figure as the browser receives it."""
    return json.loads(plotly.io.to_json(figure))


def test_kernels_draw_each_filter_scaled_on_its_own_and_capped() -> None:
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 40)).astype(np.float16)
    figure = training.kernels(kernel, layer="conv2d_1")
    assert figure.layout.title.text == "32 of 40 filters of conv2d_1, in reading order"  # Capped at 32.
    (heatmap,) = figure.data
    assert heatmap.type == "heatmap" and heatmap.zmin == -1 and heatmap.zmax == 1
    tiles = np.asarray(heatmap.z, dtype=np.float64)
    assert tiles.shape == (4 * 4 - 1, 8 * 4 - 1)  # 4 rows of 8 tiles, a NaN gap between them.
    expected = kernel.astype(np.float32).mean(axis=2)[:, :, 0]
    np.testing.assert_allclose(tiles[:3, :3], expected / np.abs(expected).max(), rtol=1e-6)
    assert np.isnan(tiles[:, 3]).all() and np.nanmax(np.abs(tiles)) == 1.0
    assert set(np.unique(heatmap.customdata)) == set(range(-1, 32))
    serialised(figure)


def test_kernels_of_one_input_channel() -> None:
    kernel = np.arange(2 * 2 * 3 * 2, dtype=np.float32).reshape(2, 2, 3, 2)
    figure = training.kernels(kernel, channel=1)
    tiles = np.asarray(figure.data[0].z, dtype=np.float64)
    np.testing.assert_allclose(tiles[:2, :2], kernel[:, :, 1, 0] / np.abs(kernel[:, :, 1, 0]).max())
    assert figure.layout.title.text == "2 filters, in reading order"


def test_feature_maps_show_each_channel_in_zero_to_one() -> None:
    maps = np.random.default_rng(1).random((6, 6, 20)).astype(np.float16)
    figure = training.feature_maps(maps, layer="conv")
    assert figure.layout.title.text == "16 of 20 channels of conv"
    tiles = np.asarray(figure.data[0].z, dtype=np.float64)
    assert tiles.shape == (2 * 7 - 1, 8 * 7 - 1) and np.nanmin(tiles) == 0.0 and np.nanmax(tiles) == 1.0
    channel = maps[:, :, 1].astype(np.float32)
    np.testing.assert_allclose(tiles[:6, 7:13], (channel - channel.min()) / (channel.max() - channel.min()))
    serialised(figure)


def test_confusion_matrix_counts_and_shares() -> None:
    matrix = np.array([[5, 1], [0, 4]], dtype=np.int64)
    counts = training.confusion_matrix(matrix, ["a", "b"])
    (heatmap,) = counts.data
    assert heatmap.type == "heatmap" and list(heatmap.x) == ["a", "b"] and list(heatmap.y) == ["a", "b"]
    np.testing.assert_array_equal(heatmap.z, matrix)
    assert [list(row) for row in heatmap.text] == [["5", "1"], ["0", "4"]]
    assert counts.layout.xaxis.title.text == "predicted" and counts.layout.yaxis.title.text == "true"
    shares = training.confusion_matrix(matrix, ["a", "b"], normalise=True)
    np.testing.assert_allclose(shares.data[0].z, [[5 / 6, 1 / 6], [0, 1]])
    assert [list(row) for row in shares.data[0].text] == [["0.83", "0.17"], ["0.00", "1.00"]]
    serialised(shares)


def test_prediction_panel_marks_right_and_wrong() -> None:
    images = np.zeros((2, 8, 8, 1), np.uint8)
    images[1] = 255
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2]], np.float16)
    figure = training.prediction_panel(images, np.array([0, 1]), probabilities, ["cat", "dog"])
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles == ["✓ cat 90%", "✗ cat 80% (is dog)"]
    assert [trace.type for trace in figure.data] == ["image", "image"]
    assert np.asarray(figure.data[0].z).max() == 0 and np.asarray(figure.data[1].z).min() == 255


def test_prediction_panel_reads_one_sigmoid_unit_as_class_one() -> None:
    probabilities = np.array([[0.3], [0.7]], np.float32)
    figure = training.prediction_panel(
        np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 0]), probabilities, ["no", "yes"]
    )
    assert [annotation.text for annotation in figure.layout.annotations] == ["✓ no 70%", "✗ yes 70% (is no)"]


def test_curves_show_batches_train_and_validation_on_the_epoch_axis() -> None:
    epochs = pd.DataFrame(
        {"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "learning_rate": [0.1, 0.01]}
    )
    batches = pd.DataFrame({"epoch": [1, 1, 2], "batch": [0, 1, 0], "loss": [1.2, 0.9, 0.6]})
    figure = training.curves(epochs, batches, "loss")
    assert [trace.name for trace in figure.data] == ["train loss (batches)", "train loss", "validation loss"]
    batch_trace, train, validation = figure.data
    np.testing.assert_allclose(batch_trace.x, [0.5, 1.0, 2.0])  # Each batch at its share of the epoch.
    assert list(batch_trace.y) == [1.2, 0.9, 0.6]
    assert list(train.x) == [1, 2] and list(train.y) == [1.0, 0.5] and list(validation.y) == [1.1, 0.7]
    assert figure.layout.title.text == "Loss" and figure.layout.xaxis.title.text == "epoch"
    rate = training.learning_rate(epochs)
    assert list(rate.data[0].y) == [0.1, 0.01] and rate.layout.yaxis.type == "log"
    serialised(figure)


def test_curves_without_validation_or_batches() -> None:
    epochs = pd.DataFrame({"epoch": [1], "accuracy": [0.5]})
    figure = training.curves(epochs, pd.DataFrame(), "accuracy")
    assert [trace.name for trace in figure.data] == ["train accuracy"]
    assert len(training.curves(pd.DataFrame(), pd.DataFrame(), "loss").data) == 0


def test_overlay_draws_validation_solid_and_training_dotted_per_run() -> None:
    first = pd.DataFrame({"epoch": [1, 2], "accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.55]})
    second = pd.DataFrame({"epoch": [1], "accuracy": [0.7]})
    figure = training.overlay([("a", first), ("b", second), ("empty", pd.DataFrame())], "accuracy")
    assert [trace.name for trace in figure.data] == ["a (validation)", "a (train)", "b (train)"]
    assert list(figure.data[0].y) == [0.4, 0.55] and figure.data[1].line.dash == "dot"


def test_mosaic_places_each_tile_scaled_on_its_own() -> None:
    planes = [np.full((2, 2), 5.0), np.array([[0.0, 2.0], [4.0, 4.0]])]
    canvas = training.mosaic(planes, columns=2, symmetric=False)
    assert canvas.shape == (2, 5)
    assert np.isnan(canvas[:, 2]).all()
    np.testing.assert_allclose(canvas[:, 3:], [[0.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(canvas[:, :2], 0.0)


def test_diagnoses_are_marked_on_the_curves_with_their_cause_and_fix() -> None:
    from cnnlab.runs.views.diagnosis import Diagnosis

    epochs = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.6], "val_loss": [1.1, 0.7, 0.9]})
    found = Diagnosis("overfitting", 3, "Validation loss rose.", "Add dropout.")
    figure = training.curves(epochs, pd.DataFrame(), "loss", [found])
    markers = [trace for trace in figure.data if trace.name == "diagnoses"]
    assert len(markers) == 1 and list(markers[0].x) == [3] and list(markers[0].y) == [0.6]
    assert "Validation loss rose." in markers[0].hovertext[0] and "Add dropout." in markers[0].hovertext[0]
    assert [shape.x0 for shape in figure.layout.shapes] == [3]
    assert [trace.name for trace in training.curves(epochs, pd.DataFrame(), "loss").data] == [
        "train loss",
        "validation loss",
    ]
    serialised(figure)


def test_the_learning_rate_finder_plots_the_loss_on_a_log_axis_with_the_suggestion() -> None:
    from cnnlab.runs.queue.learning_rate_range import FinderResult

    rates = tuple(float(rate) for rate in np.logspace(-7, 0, 50))
    losses = tuple(float(loss) for loss in np.linspace(2.3, 1.0, 50))
    result = FinderResult(rates, losses, losses, 1e-3, 1e-2, 3e-3, True, 1.0)
    figure = training.learning_rate_finder(result)
    assert figure.layout.xaxis.type == "log" and [trace.name for trace in figure.data] == [
        "loss of each batch",
        "smoothed loss",
    ]
    assert figure.layout.shapes[0].x0 == 1e-3 and "suggested 0.001" in figure.layout.annotations[0].text
    serialised(figure)
    nothing = FinderResult(rates, losses, losses, None, 1e-2, 3e-3, True, 1.0, "the loss never fell")
    assert not training.learning_rate_finder(nothing).layout.shapes  # No line where nothing is suggested.


def test_the_learning_rate_axis_writes_plain_numbers_not_si_prefixes() -> None:
    epochs = pd.DataFrame({"epoch": [1, 2, 3], "learning_rate": [1e-3, 1e-4, 1e-5]})
    axis = serialised(training.learning_rate(epochs))["layout"]["yaxis"]
    # Plotly's default writes 0.0001 as "100µ" (or "100u"): d3's "~g" writes "0.0001", 1e-7 as "1e-7".
    assert (axis["type"], axis["tickformat"], axis["exponentformat"]) == ("log", "~g", "e")
