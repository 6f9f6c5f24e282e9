"""Figures of datasets: image grids and class balance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.plain_text import as_chart_text


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """A (height, width, 3) uint8 image from a float image in [0, 1] with 1 or 3 channels."""
    pixels = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return (pixels * 255).round().astype(np.uint8)


def image_grid(
    images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 8, size: int = 110
) -> go.Figure:
    """Images in a grid, each with its title; grey images are shown in grey."""
    count = len(images)
    columns = max(1, min(columns, count))
    rows = max(1, -(-count // columns))
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=list(titles),
        horizontal_spacing=0.01,
        vertical_spacing=0.06 if rows > 1 else 0.0,
    )
    for position, image in enumerate(images):
        figure.add_trace(
            go.Image(z=_as_rgb(image), hoverinfo="skip"),
            row=position // columns + 1,
            col=position % columns + 1,
        )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_annotations(font_size=11)
    figure.update_layout(height=rows * size + 30, margin={"l": 0, "r": 0, "t": 25, "b": 0})
    return figure


def image_rows(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], size: int = 110) -> go.Figure:
    """Rows of equally sized images drawn as one picture, each row titled on its left.

    One image trace however many images: a grid of subplots (`image_grid`) costs the browser an axis
    pair and a title per image.
    """
    height, width = np.shape(rows[0][0])[:2]
    gap = max(1, height // 8)
    columns = max(len(row) for row in rows)
    mosaic = np.full(
        (len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8
    )
    for row_index, row in enumerate(rows):
        for column_index, image in enumerate(row):
            top, left = row_index * (height + gap), column_index * (width + gap)
            mosaic[top : top + height, left : left + width] = _as_rgb(image)
    figure = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(
        tickvals=[row_index * (height + gap) + (height - 1) / 2 for row_index in range(len(rows))],
        ticktext=list(titles),
        ticks="",
        tickfont={"size": 13},
        showgrid=False,
        zeroline=False,
    )
    figure.update_layout(height=len(rows) * size + 10, margin={"l": 0, "r": 0, "t": 5, "b": 5})
    return figure


def samples_per_class(
    images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], per_class: int = 6, seed: int = 0
) -> go.Figure:
    """One row per class (at most 10 classes) of `per_class` random examples, the class named on its left."""
    generator = np.random.default_rng(seed)
    rows, titles = [], []
    for index, name in enumerate(class_names[:10]):
        members = np.flatnonzero(labels == index)
        if members.size:
            chosen = generator.choice(members, size=min(per_class, len(members)), replace=False)
            rows.append([images[member] for member in chosen])
            titles.append(as_chart_text(name))
    return image_rows(rows, titles)


def class_balance(summary: pd.DataFrame) -> go.Figure:
    """Stacked bars of images per class in the train, validation and test splits."""
    figure = go.Figure()
    classes = summary.index if "class" not in summary.columns else summary["class"]
    for split in ("train", "validation", "test"):
        if split in summary.columns:
            figure.add_trace(
                go.Bar(name=split, x=[as_chart_text(name) for name in classes], y=summary[split])
            )
    figure.update_layout(
        barmode="stack",
        height=300,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        yaxis_title="images",
        xaxis_title="class",
        legend={"orientation": "h"},
    )
    return figure
