"""Figures of a training run: curves, learning rate, kernels, feature maps, confusion, predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.figures.data import image_grid

TRAIN_COLOUR, VALIDATION_COLOUR = "#1f77b4", "#ff7f0e"


def curves(epochs: pd.DataFrame, batches: pd.DataFrame, metric: str) -> go.Figure:
    """`metric` ("loss" or "accuracy") per epoch for training and validation, with the batch values faint."""
    figure = go.Figure()
    if not batches.empty and metric in batches:
        steps = (
            batches["epoch"]
            - 1
            + (batches["batch"] + 1) / batches.groupby("epoch")["batch"].transform("max").add(1)
        )
        figure.add_trace(go.Scatter(x=steps, y=batches[metric], name=f"train {metric} (batches)", mode="lines",
                                    line={"color": TRAIN_COLOUR, "width": 1}, opacity=0.35))  # fmt: skip
    if not epochs.empty:
        figure.add_trace(go.Scatter(x=epochs["epoch"], y=epochs[metric], name=f"train {metric}", mode="lines+markers",
                                    line={"color": TRAIN_COLOUR}))  # fmt: skip
        if f"val_{metric}" in epochs:
            figure.add_trace(go.Scatter(x=epochs["epoch"], y=epochs[f"val_{metric}"], name=f"validation {metric}",
                                        mode="lines+markers", line={"color": VALIDATION_COLOUR}))  # fmt: skip
    figure.update_layout(height=300, margin={"l": 0, "r": 0, "t": 30, "b": 0}, title=metric.capitalize(),
                         xaxis_title="epoch", legend={"orientation": "h", "y": -0.25})  # fmt: skip
    return figure


def learning_rate(epochs: pd.DataFrame) -> go.Figure:
    """The learning rate per epoch (log scale)."""
    figure = go.Figure(
        go.Scatter(x=epochs.get("epoch", []), y=epochs.get("learning_rate", []), mode="lines+markers")
    )
    figure.update_layout(height=250, margin={"l": 0, "r": 0, "t": 30, "b": 0}, title="Learning rate",
                         xaxis_title="epoch", yaxis_type="log")  # fmt: skip
    return figure


def _heatmap_grid(planes: Sequence[np.ndarray], titles: Sequence[str], columns: int, colorscale: str,
                  symmetric: bool, cell: int) -> go.Figure:  # fmt: skip
    rows = max(1, -(-len(planes) // columns))
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=list(titles), horizontal_spacing=0.01,
                           vertical_spacing=0.04 if rows > 1 else 0.0)  # fmt: skip
    for position, plane in enumerate(planes):
        limit = float(np.abs(plane).max()) or 1.0
        bounds = {"zmin": -limit, "zmax": limit} if symmetric else {}
        figure.add_trace(go.Heatmap(z=plane[::-1], colorscale=colorscale, showscale=False, **bounds,
                                    hovertemplate="%{z:.3f}<extra></extra>"),
                         row=position // columns + 1, col=position % columns + 1)  # fmt: skip
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    figure.update_annotations(font_size=10)
    figure.update_layout(height=rows * cell + 40, margin={"l": 0, "r": 0, "t": 25, "b": 0})
    return figure


def kernels(kernel: np.ndarray, channel: int | None = None, limit: int = 32) -> go.Figure:
    """Each filter of a conv kernel (height, width, inputs, filters) as a blue-white-red heatmap.

    With `channel`, the weights on that input channel; otherwise the mean over input channels.
    """
    planes = kernel[:, :, channel, :] if channel is not None else kernel.mean(axis=2)
    count = min(planes.shape[-1], limit)
    return _heatmap_grid([planes[:, :, index] for index in range(count)], [f"filter {index}" for index in range(count)],
                         columns=8, colorscale="RdBu_r", symmetric=True, cell=95)  # fmt: skip


def feature_maps(maps: np.ndarray, limit: int = 16) -> go.Figure:
    """Each channel of one image's feature map (height, width, channels) as a heatmap."""
    count = min(maps.shape[-1], limit)
    return _heatmap_grid([maps[:, :, index] for index in range(count)], [f"channel {index}" for index in range(count)],
                         columns=8, colorscale="Viridis", symmetric=False, cell=110)  # fmt: skip


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], normalise: bool = False) -> go.Figure:
    """Rows are true classes, columns predictions; counts or row-normalised shares, written in each cell."""
    values = matrix.astype(float)
    if normalise:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    text = [[f"{value:.2f}" if normalise else f"{int(value)}" for value in row] for row in values]
    names = [str(name) for name in class_names]
    figure = go.Figure(go.Heatmap(z=values, x=names, y=names, colorscale="Blues", text=text, texttemplate="%{text}",
                                  hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>"))  # fmt: skip
    figure.update_layout(height=max(300, 32 * len(names) + 120), margin={"l": 0, "r": 0, "t": 30, "b": 0},
                         xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                         title="Confusion matrix")  # fmt: skip
    return figure


def prediction_panel(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                     class_names: Sequence[str]) -> go.Figure:  # fmt: skip
    """The panel images, each titled with its prediction, its confidence, and ✓ or ✗."""
    if probabilities.shape[-1] == 1:
        predicted = (probabilities[:, 0] > 0.5).astype(int)
        confidence = np.where(predicted == 1, probabilities[:, 0], 1 - probabilities[:, 0])
    else:
        predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    titles = [
        f"{'✓' if guess == truth else '✗'} {class_names[guess]} {share:.0%}"
        + ("" if guess == truth else f" (is {class_names[truth]})")
        for guess, truth, share in zip(predicted, labels, confidence, strict=True)
    ]
    return image_grid([image.astype(np.float32) / 255.0 for image in images], titles, columns=6, size=120)
