"""Figures of what a model sees and where it looks: heat-map overlays, top-k bars, preprocessing steps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from cnnlab.data import prepare
from cnnlab.figures.data import image_grid

HEAT_COLOURSCALE = "Turbo"
DISPLAY_SIDE = 224  # larger images are shrunk to this many pixels a side before they are sent


def _lookup_table(colourscale: str = HEAT_COLOURSCALE) -> np.ndarray:
    """256 RGB colours in [0, 1] along a plotly colour scale."""
    colours = sample_colorscale(colourscale, list(np.linspace(0.0, 1.0, 256)), colortype="tuple")
    return np.array(colours, dtype=np.float32).reshape(256, 3).clip(0.0, 1.0)


_TABLE = _lookup_table()


def _rgb(image: np.ndarray) -> np.ndarray:
    pixels = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3]


def for_display(image: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """An RGB image shrunk so its longer side is at most `side` pixels (plotly enlarges small ones itself)."""
    pixels = _rgb(image)
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= side:
        return pixels
    scale = side / longest
    return prepare.resize_array(pixels, max(1, round(height * scale)), max(1, round(width * scale)))


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.65) -> np.ndarray:
    """A heat map in [0, 1] coloured and blended over a grey version of the image: (height, width, 3) in [0, 1]."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    base = _rgb(image)
    if heat.shape != base.shape[:2]:
        heat = prepare.resize_array(heat[:, :, np.newaxis], *base.shape[:2])[:, :, 0]
    grey = base.mean(axis=2, keepdims=True).repeat(3, axis=2)
    colours = _TABLE[np.round(heat * 255).astype(np.int64)]
    weight = opacity * np.sqrt(heat[:, :, np.newaxis])  # Cold areas show the image itself, in grey.
    blended: np.ndarray = np.clip((1.0 - weight) * grey + weight * colours, 0.0, 1.0)
    return blended


def overlay_grid(
    images: Sequence[np.ndarray],
    heats: Sequence[np.ndarray],
    titles: Sequence[str],
    columns: int = 6,
    size: int = 130,
    opacity: float = 0.65,
) -> go.Figure:
    """Each image with its heat map blended over it, in a grid with titles."""
    blended = [
        for_display(overlay(image, heat, opacity), side=size * 2)
        for image, heat in zip(images, heats, strict=True)
    ]
    return image_grid(blended, titles, columns=columns, size=size)


def explanation(image: np.ndarray, grad_cam: np.ndarray, saliency: np.ndarray, size: int = 230) -> go.Figure:
    """Three panels: the input as the model sees it, its Grad-CAM overlay, and its saliency overlay."""
    panels = [
        for_display(image),
        for_display(overlay(image, grad_cam)),
        for_display(overlay(image, saliency, 0.8)),
    ]
    titles = ["what the model sees", "Grad-CAM: where it looked", "saliency: pixels that matter"]
    return image_grid(panels, titles, columns=3, size=size)


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int = 5) -> go.Figure:
    """Horizontal bars of the `k` most probable classes, the most probable on top."""
    values = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    names = [str(name) for name in class_names]
    if values.size == 1:  # One sigmoid unit: the probability of class 1.
        values = np.array([1.0 - values[0], values[0]])
    order = np.argsort(-values, kind="stable")[: max(1, min(k, len(values)))]
    labels = [names[index] if index < len(names) else str(index) for index in order]
    colours = ["#1f77b4"] + ["#9ecae1"] * (len(order) - 1)
    figure = go.Figure(
        go.Bar(
            x=values[order],
            y=labels,
            orientation="h",
            marker_color=colours,
            text=[f"{value:.1%}" for value in values[order]],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    figure.update_layout(
        height=60 + 32 * len(order),
        margin={"l": 0, "r": 10, "t": 30, "b": 0},
        title=f"Top {len(order)} classes",
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        yaxis={"autorange": "reversed", "type": "category"},
    )
    return figure


def preprocessing_steps(steps: Sequence[tuple[str, np.ndarray]], size: int = 150) -> go.Figure:
    """The preprocessing steps in order, each image titled with its step and its size."""
    titles = [
        f"{index + 1}. {name} ({image.shape[1]}×{image.shape[0]})"
        for index, (name, image) in enumerate(steps)
    ]
    shown = [for_display(image, side=size * 2) for _, image in steps]
    return image_grid(shown, titles, columns=max(1, len(steps)), size=size)
