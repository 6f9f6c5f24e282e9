"""Figures of a training run: curves with diagnosis markers, learning rate, the learning-rate
finder, kernels, feature maps, confusion, predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cnnlab.figures import axes, downsampling
from cnnlab.figures.data import image_grid
from cnnlab.plain_text import as_chart_text
from cnnlab.trained import evaluation

if TYPE_CHECKING:
    from cnnlab.runs.queue.learning_rate_range import FinderResult
    from cnnlab.runs.views.diagnosis import Diagnosis

TRAIN_COLOUR, VALIDATION_COLOUR = "#1f77b4", "#ff7f0e"
DIAGNOSIS_COLOURS = {
    "diverged": "#d62728",
    "not learning": "#9467bd",
    "overfitting": "#e377c2",
    "plateau": "#7f7f7f",
}
LEARNING_RATE_FINDER_EXPLANATION = (
    "The learning rate grew from tiny to huge over 100 batches or more on a copy of the model: where the "
    "loss falls fastest the model learns, where it shoots up the steps are too big. The dashed line is "
    "the suggestion: on the falling slope, a tenth of the learning rate at which the loss reached its "
    "lowest level."
)


def curves(
    epochs: pd.DataFrame, batches: pd.DataFrame, metric: str, diagnoses: Sequence[Diagnosis] = ()
) -> go.Figure:
    """`metric` ("loss" or "accuracy") per epoch for training and validation, with the batch values faint.

    Each of `diagnoses` (`cnnlab.runs.views.diagnosis.read(store, run_id)`) is a dotted line at its epoch,
    labelled with its kind, and a marker whose hover text is its cause and fix.
    """
    figure = go.Figure()
    if not batches.empty and metric in batches:
        steps = (
            batches["epoch"]
            - 1
            + (batches["batch"] + 1) / batches.groupby("epoch")["batch"].transform("max").add(1)
        )
        kept = downsampling.keep_indices(len(batches))  # at most a thousand points, the newest kept
        figure.add_trace(
            go.Scatter(
                x=steps.iloc[kept],
                y=batches[metric].iloc[kept],
                name=f"train {metric} (batches)",
                mode="lines",
                line={"color": TRAIN_COLOUR, "width": 1},
                opacity=0.35,
            )
        )
    if not epochs.empty:
        figure.add_trace(
            go.Scatter(
                x=epochs["epoch"],
                y=epochs[metric],
                name=f"train {metric}",
                mode="lines+markers",
                line={"color": TRAIN_COLOUR},
            )
        )
        if f"val_{metric}" in epochs:
            figure.add_trace(
                go.Scatter(
                    x=epochs["epoch"],
                    y=epochs[f"val_{metric}"],
                    name=f"validation {metric}",
                    mode="lines+markers",
                    line={"color": VALIDATION_COLOUR},
                )
            )
    _mark_diagnoses(figure, epochs, metric, diagnoses)
    figure.update_layout(
        height=300,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title=metric.capitalize(),
        xaxis_title="epoch",
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def live_curves(metric: str) -> go.Figure:
    """`curves` with its three traces (train batches, train, validation) empty, for a chart in the
    browser that appends points as they arrive (`cnnlab.ui.stream.live_chart`)."""
    epochs = pd.DataFrame({"epoch": [1], metric: [0.0], f"val_{metric}": [0.0]})
    batches = pd.DataFrame({"epoch": [1], "batch": [0], metric: [0.0]})
    return curves(epochs, batches, metric).update_traces(x=[], y=[])


def live_learning_rate() -> go.Figure:
    """`learning_rate` with its trace empty, for a chart in the browser that adds epochs as they end."""
    return learning_rate(pd.DataFrame())


def _mark_diagnoses(
    figure: go.Figure, epochs: pd.DataFrame, metric: str, diagnoses: Sequence[Diagnosis]
) -> None:
    """A dotted line per diagnosis and one marker trace whose hover text tells the cause and the fix."""
    if not diagnoses:
        return
    values = dict(zip(epochs.get("epoch", []), epochs.get(metric, []), strict=True))
    for found in diagnoses:
        colour = DIAGNOSIS_COLOURS.get(found.kind, "#7f7f7f")
        figure.add_vline(
            x=found.epoch,
            line={"dash": "dot", "color": colour},
            annotation_text=found.title,
            annotation_font_color=colour,
        )
    figure.add_trace(
        go.Scatter(
            x=[found.epoch for found in diagnoses],
            y=[values.get(found.epoch, np.nan) for found in diagnoses],
            name="diagnoses",
            mode="markers",
            marker={
                "symbol": "x",
                "size": 12,
                "color": [DIAGNOSIS_COLOURS.get(f.kind, "#7f7f7f") for f in diagnoses],
            },
            hovertext=[f"{found.title}: {found.cause}<br>Fix: {found.fix}" for found in diagnoses],
            hoverinfo="text",
        )
    )


def learning_rate_finder(result: FinderResult) -> go.Figure:
    """The range test: raw loss (faint) and smoothed loss against the learning rate on a log axis,
    with the suggestion marked when there is one (`LEARNING_RATE_FINDER_EXPLANATION` says how to read it)."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=result.learning_rates,
            y=result.losses,
            name="loss of each batch",
            mode="lines",
            line={"color": TRAIN_COLOUR, "width": 1},
            opacity=0.3,
        )
    )
    figure.add_trace(
        go.Scatter(
            x=result.learning_rates,
            y=result.smoothed_losses,
            name="smoothed loss",
            mode="lines",
            line={"color": TRAIN_COLOUR},
        )
    )
    if result.suggestion is not None:
        figure.add_vline(
            x=result.suggestion,
            line={"dash": "dash", "color": VALIDATION_COLOUR},
            annotation_text=f"suggested {result.suggestion:.2g}",
        )
    # From just below the lowest loss to a little above the start: the explosion runs off the top.
    lowest, highest = min(result.smoothed_losses), result.smoothed_losses[0]
    figure.update_layout(
        height=320,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title="Learning-rate finder",
        xaxis={**axes.LOG_AXIS, "title": "learning rate"},
        yaxis={"title": "loss", "range": [lowest * 0.9, max(highest, lowest) * 1.3]},
        legend={"orientation": "h", "y": -0.3},
    )
    return figure


def learning_rate(epochs: pd.DataFrame) -> go.Figure:
    """The learning rate per epoch (log scale)."""
    figure = go.Figure(
        go.Scatter(x=epochs.get("epoch", []), y=epochs.get("learning_rate", []), mode="lines+markers")
    )
    figure.update_layout(
        height=250,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title="Learning rate",
        xaxis_title="epoch",
        yaxis=axes.LOG_AXIS,
    )
    return figure


def mosaic(planes: Sequence[np.ndarray], columns: int, symmetric: bool) -> np.ndarray:
    """Tiles of equal size in one array, NaN between them; each tile scaled on its own.

    Symmetric tiles are scaled to [-1, 1] (zero stays zero), others to [0, 1]. One heatmap of a
    mosaic draws far faster in the browser than one subplot per tile.
    """
    height, width = planes[0].shape
    rows = max(1, -(-len(planes) // columns))
    canvas = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan, dtype=np.float32)
    for position, plane in enumerate(planes):
        tile = np.asarray(plane, dtype=np.float32)  # Snapshots are float16, which JSON cannot carry.
        if symmetric:
            tile = tile / (float(np.abs(tile).max()) or 1.0)
        else:
            low, high = float(tile.min()), float(tile.max())
            tile = (tile - low) / ((high - low) or 1.0)
        top, left = (position // columns) * (height + 1), (position % columns) * (width + 1)
        canvas[top : top + height, left : left + width] = tile
    return canvas


def _mosaic_figure(planes: Sequence[np.ndarray], title: str, symmetric: bool, columns: int = 8) -> go.Figure:
    columns = max(1, min(columns, len(planes)))
    canvas = mosaic(planes, columns, symmetric)
    height, width = planes[0].shape
    tile_index = np.full(canvas.shape, -1, dtype=np.int32)
    for position in range(len(planes)):
        top, left = (position // columns) * (height + 1), (position % columns) * (width + 1)
        tile_index[top : top + height, left : left + width] = position
    figure = go.Figure(
        go.Heatmap(
            z=canvas,
            customdata=tile_index,
            colorscale="RdBu_r" if symmetric else "Viridis",
            zmin=-1 if symmetric else 0,
            zmax=1,
            showscale=False,
            hovertemplate="#%{customdata}: %{z:.2f}<extra></extra>",
        )
    )
    rows = canvas.shape[0] / canvas.shape[1] * columns
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    figure.update_layout(
        title=title,
        height=int(90 * rows / columns * columns + 60) if rows else 200,
        margin={"l": 0, "r": 0, "t": 35, "b": 0},
    )
    return figure


def _shown_of(count: int, total: int, what: str) -> str:
    """A figure's count: "16 of 32 channels" when it shows only the first `count` of `total`, else "32 channels"."""
    return f"{count} of {total} {what}" if count < total else f"{count} {what}"


def kernels(kernel: np.ndarray, channel: int | None = None, limit: int = 32, layer: str = "") -> go.Figure:
    """Each filter of a conv kernel (height, width, inputs, filters), blue negative, red positive.

    With `channel`, the weights on that input channel; otherwise the mean over input channels.
    """
    planes = np.asarray(kernel, dtype=np.float32)
    planes = planes[:, :, channel, :] if channel is not None else planes.mean(axis=2)
    count = min(planes.shape[-1], limit)
    shown = _shown_of(count, planes.shape[-1], "filters")
    title = f"{shown} of {layer}, in reading order" if layer else f"{shown}, in reading order"
    return _mosaic_figure([planes[:, :, index] for index in range(count)], title, symmetric=True)


def feature_maps(maps: np.ndarray, limit: int = 16, layer: str = "") -> go.Figure:
    """Each channel of one image's feature map (height, width, channels), each scaled to its own range."""
    count = min(maps.shape[-1], limit)
    shown = _shown_of(count, maps.shape[-1], "channels")
    title = f"{shown} of {layer}" if layer else shown
    return _mosaic_figure([maps[:, :, index] for index in range(count)], title, symmetric=False)


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], normalise: bool = False) -> go.Figure:
    """Rows are true classes, columns predictions; counts or row-normalised shares, written in each cell."""
    values = evaluation.row_shares(matrix) if normalise else np.asarray(matrix, dtype=np.float64)
    text = [[f"{value:.2f}" if normalise else f"{int(value)}" for value in row] for row in values]
    names = [as_chart_text(name) for name in class_names]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=names,
            y=names,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )
    figure.update_layout(
        height=max(300, 32 * len(names) + 120),
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
        xaxis_type="category",
        yaxis_type="category",
        title="Confusion matrix",
    )
    return figure


def prediction_panel(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> go.Figure:
    """The panel images, each titled with its prediction, its confidence, and ✓ or ✗."""
    if probabilities.shape[-1] == 1:
        predicted = (probabilities[:, 0] > 0.5).astype(int)
        confidence = np.where(predicted == 1, probabilities[:, 0], 1 - probabilities[:, 0])
    else:
        predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    names = [as_chart_text(name) for name in class_names]
    titles = [
        f"{'✓' if guess == truth else '✗'} {names[guess]} {share:.0%}"
        + ("" if guess == truth else f" (is {names[truth]})")
        for guess, truth, share in zip(predicted, labels, confidence, strict=True)
    ]
    return image_grid([image.astype(np.float32) / 255.0 for image in images], titles, columns=6, size=120)


def overlay(tables: Sequence[tuple[str, pd.DataFrame]], metric: str) -> go.Figure:
    """One metric per epoch for several runs: solid lines for validation, dotted for training."""
    figure = go.Figure()
    for name, table in tables:
        if table.empty:
            continue
        if f"val_{metric}" in table:
            figure.add_trace(
                go.Scatter(
                    x=table["epoch"],
                    y=table[f"val_{metric}"],
                    name=f"{name} (validation)",
                    mode="lines+markers",
                )
            )
        figure.add_trace(
            go.Scatter(
                x=table["epoch"], y=table[metric], name=f"{name} (train)", mode="lines", line={"dash": "dot"}
            )
        )
    figure.update_layout(
        height=350,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        title=metric.capitalize(),
        xaxis_title="epoch",
        legend={"orientation": "h", "y": -0.25},
    )
    return figure
