"""Figures of the Learn page: grids of numbers with the window, the zero border and the output cell.

Every grid is a plotly heatmap drawn like an image (row 0 at the top, square cells) with the
number written in each cell while the grid is small enough to read. Coordinates are the input's:
padding cells sit at negative indices or beyond the last row and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnlab.lesson.arithmetic import Box, Padding, format_number, pool, relu

MAX_NUMBERED_SIDE = 16  # larger grids are drawn without their numbers
WINDOW_COLOR = "#ff7f0e"
CELL_COLOR = "#111111"  # the output cell being written
NEGATIVE_COLOR = "#d62728"  # cells ReLU sets to zero
FIELD_COLOR = "#2ca02c"
_INPUT_SCALE = "Blues"
_SIGNED_SCALE = "RdBu"
_PADDING_SCALE = [[0.0, "#eeeeee"], [1.0, "#eeeeee"]]


@dataclass(frozen=True)
class Outline:
    """A rectangle drawn over a grid: a box of cells, its colour and an optional label."""

    box: Box
    color: str = WINDOW_COLOR
    label: str = ""
    dash: str = "solid"


def _texts(values: np.ndarray, digits: int) -> np.ndarray:
    def text(value: float) -> str:
        return "" if np.isnan(value) else format_number(round(value, digits))

    texts: np.ndarray = np.vectorize(text, otypes=[object])(values)
    return texts


def _signed_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    return -(limit or 1.0), limit or 1.0


def _heatmap(
    values: np.ndarray,
    *,
    signed: bool,
    numbers: bool,
    font_size: int,
    zrange: tuple[float, float] | None = None,
    row_offset: int = 0,
    column_offset: int = 0,
    colorscale: object = None,
    name: str = "",
    digits: int = 4,
) -> go.Heatmap:
    values = np.asarray(values, dtype=float)
    if zrange is None:
        finite = values[np.isfinite(values)]
        zrange = (
            _signed_range(values)
            if signed
            else (
                float(min(finite.min(), 0.0)) if finite.size else 0.0,
                float(finite.max()) if finite.size and finite.max() > 0 else 1.0,
            )
        )
    show = numbers and max(values.shape) <= MAX_NUMBERED_SIDE
    return go.Heatmap(
        z=values,
        x=np.arange(values.shape[1]) + column_offset,
        y=np.arange(values.shape[0]) + row_offset,
        text=_texts(values, digits) if show else None,
        texttemplate="%{text}" if show else None,
        textfont={"size": font_size},
        colorscale=colorscale or (_SIGNED_SCALE if signed else _INPUT_SCALE),
        zmin=zrange[0],
        zmax=zrange[1],
        showscale=False,
        xgap=1,
        ygap=1,
        name=name,
        hovertemplate="row %{y}, column %{x}: %{z}<extra></extra>",
    )


def _outline(figure: go.Figure, outlines: Sequence[tuple[Outline, int | None]]) -> None:
    """Draw each outline over the figure, in the subplot column given (None: a figure without subplots).

    The rectangles and labels are added to the layout in one update: plotly's `add_shape` and
    `add_annotation` validate the figure's whole list again at every call, which made a pooling or
    ReLU figure (27-38 outlines) cost 90-150 ms of the server's CPU at every run of the Learn page.
    """
    shapes: list[dict[str, object]] = []
    labels: list[dict[str, object]] = []
    for outline, column in outlines:
        box = outline.box
        axes = (
            {}
            if column is None
            else {"xref": f"x{column if column > 1 else ''}", "yref": f"y{column if column > 1 else ''}"}
        )
        shapes.append(
            {
                "type": "rect",
                "x0": box.left - 0.5,
                "x1": box.right + 0.5,
                "y0": box.top - 0.5,
                "y1": box.bottom + 0.5,
                "line": {"color": outline.color, "width": 4, "dash": outline.dash},
                **axes,
            }
        )
        if outline.label:
            labels.append(
                {
                    "x": box.left - 0.5,
                    "y": box.top - 0.5,
                    "text": outline.label,
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "font": {"color": outline.color},
                    **axes,
                }
            )
    update: dict[str, object] = {"shapes": [*figure.layout.shapes, *shapes]}
    if labels:
        update["annotations"] = [*figure.layout.annotations, *labels]
    figure.update_layout(update)


def _layout(figure: go.Figure, title: str, font_size: int, height: int | None) -> go.Figure:
    figure.update_layout(
        title={"text": title, "font": {"size": font_size + 4}},
        font={"size": font_size},
        margin={"l": 10, "r": 10, "t": 50 + font_size, "b": 10},
        height=height,
        plot_bgcolor="white",
        dragmode=False,
    )
    # Column numbers go on top like an image's, except under subplot titles, where they go below.
    side = "bottom" if _has_subplots(figure) else "top"
    figure.update_xaxes(showgrid=False, zeroline=False, dtick=1, side=side, constrain="domain")
    figure.update_yaxes(showgrid=False, zeroline=False, dtick=1, autorange="reversed", constrain="domain")
    for axis in (name for name in figure.layout if name.startswith("yaxis")):
        figure.layout[axis].scaleanchor = "x" + axis[len("yaxis") :]  # Square cells: yaxis2 follows xaxis2.
    if not _has_subplots(figure) and figure.data:
        # Fixed ranges, so square cells shrink the drawing area instead of adding empty rows or columns.
        columns = np.concatenate(
            [np.asarray(trace.x, dtype=float) for trace in figure.data if trace.x is not None]
        )
        rows = np.concatenate(
            [np.asarray(trace.y, dtype=float) for trace in figure.data if trace.y is not None]
        )
        figure.update_xaxes(range=[columns.min() - 0.5, columns.max() + 0.5], autorange=False)
        figure.update_yaxes(range=[rows.max() + 0.5, rows.min() - 0.5], autorange=False)
    return figure


def _has_subplots(figure: go.Figure) -> bool:
    return any(name.startswith("xaxis") and name != "xaxis" for name in figure.layout)


def grid_figure(
    values: np.ndarray,
    *,
    title: str = "",
    signed: bool = False,
    numbers: bool = True,
    outlines: Sequence[Outline] = (),
    font_size: int = 14,
    digits: int = 4,
    height: int | None = None,
) -> go.Figure:
    """A grid of numbers drawn as an image, with rectangles over chosen boxes of cells."""
    figure = go.Figure(_heatmap(values, signed=signed, numbers=numbers, font_size=font_size, digits=digits))
    _outline(figure, [(outline, None) for outline in outlines])
    return _layout(figure, title, font_size, height)


def input_figure(
    image: np.ndarray,
    *,
    padding: Padding | None = None,
    window: Box | None = None,
    field: Box | None = None,
    title: str = "Input",
    font_size: int = 14,
    digits: int = 4,
    height: int | None = None,
) -> go.Figure:
    """The input image with its zero border (grey cells, dashed edge), the window and a receptive field."""
    image = np.asarray(image, dtype=float)
    figure = go.Figure()
    padding = padding or Padding()
    if padding != Padding():
        border = np.zeros(
            (image.shape[0] + padding.top + padding.bottom, image.shape[1] + padding.left + padding.right)
        )
        border[padding.top : padding.top + image.shape[0], padding.left : padding.left + image.shape[1]] = (
            np.nan
        )
        figure.add_trace(
            _heatmap(
                border,
                signed=False,
                numbers=True,
                font_size=font_size,
                zrange=(0, 1),
                row_offset=-padding.top,
                column_offset=-padding.left,
                colorscale=_PADDING_SCALE,
                name="zero padding",
            )
        )
    figure.add_trace(
        _heatmap(
            image,
            signed=bool(image.min() < 0),
            numbers=True,
            font_size=font_size,
            name="image",
            digits=digits,
        )
    )
    outlines: list[tuple[Outline, int | None]] = []
    if padding != Padding():
        edge = Box(0, 0, image.shape[0] - 1, image.shape[1] - 1)
        outlines.append((Outline(edge, "#7f7f7f", "", "dash"), None))
        title = f"{title} (grey: zero padding)"
    if field is not None:
        outlines.append((Outline(field, FIELD_COLOR), None))
    if window is not None:
        outlines.append((Outline(window, WINDOW_COLOR), None))
    _outline(figure, outlines)
    return _layout(figure, title, font_size, height)


def kernel_figure(
    kernel: np.ndarray,
    *,
    title: str = "Kernel",
    font_size: int = 14,
    digits: int = 4,
    height: int | None = None,
) -> go.Figure:
    """The kernel's weights: red negative, blue positive, white zero."""
    return grid_figure(kernel, title=title, signed=True, font_size=font_size, height=height, digits=digits)


def feature_map_figure(
    feature_map: np.ndarray,
    *,
    filled: int | None = None,
    current: tuple[int, int] | None = None,
    title: str = "Feature map",
    font_size: int = 14,
    digits: int = 4,
    height: int | None = None,
) -> go.Figure:
    """The feature map with only its first `filled` cells written (row by row) and the current cell outlined."""
    values = np.asarray(feature_map, dtype=float)
    zrange = _signed_range(values)
    if filled is not None:
        values = values.copy().ravel()
        values[filled:] = np.nan
        values = values.reshape(feature_map.shape)
    figure = go.Figure(
        _heatmap(values, signed=True, numbers=True, font_size=font_size, zrange=zrange, digits=digits)
    )
    figure.add_trace(  # An empty frame keeps the not-yet-written cells visible.
        go.Heatmap(
            z=np.zeros(values.shape),
            colorscale=_PADDING_SCALE,
            showscale=False,
            xgap=1,
            ygap=1,
            hoverinfo="skip",
            opacity=0.35,
        )
    )
    figure.data = (figure.data[1], figure.data[0])
    if current is not None:
        _outline(figure, [(Outline(Box(current[0], current[1], current[0], current[1]), CELL_COLOR), None)])
    return _layout(figure, title, font_size, height)


def _subplots(titles: Sequence[str]) -> go.Figure:
    return make_subplots(rows=1, cols=len(titles), subplot_titles=list(titles), horizontal_spacing=0.06)


def relu_figure(feature_map: np.ndarray, *, font_size: int = 14, height: int | None = None) -> go.Figure:
    """The feature map before and after ReLU; the cells ReLU set to zero are outlined on both."""
    before = np.asarray(feature_map, dtype=float)
    after = relu(before)
    zrange = _signed_range(before)
    figure = _subplots(["Before ReLU", "After ReLU: max(0, x)"])
    outlines: list[tuple[Outline, int | None]] = []
    for column, values in enumerate((before, after), start=1):
        figure.add_trace(
            _heatmap(values, signed=True, numbers=True, font_size=font_size, zrange=zrange), row=1, col=column
        )
        for row_index, column_index in zip(*np.nonzero(before < 0), strict=True):
            cell = Box(int(row_index), int(column_index), int(row_index), int(column_index))
            outlines.append((Outline(cell, NEGATIVE_COLOR, dash="dot"), column))
    _outline(figure, outlines)
    return _layout(figure, "ReLU: negatives (dotted red) become 0", font_size, height)


def pooling_figure(
    feature_map: np.ndarray, *, size: int = 2, font_size: int = 14, height: int | None = None
) -> go.Figure:
    """The map with its pooling windows outlined, then max pooling and average pooling of it, side by side."""
    values = np.asarray(feature_map, dtype=float)
    maximum, average = pool(values, size, "max"), pool(values, size, "average")
    figure = _subplots(
        ["Feature map (after ReLU)", f"Max pooling {size}×{size}", f"Average pooling {size}×{size}"]
    )
    figure.add_trace(_heatmap(values, signed=True, numbers=True, font_size=font_size), row=1, col=1)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
    outlines: list[tuple[Outline, int | None]] = []
    for row_index in range(maximum.shape[0]):
        for column_index in range(maximum.shape[1]):
            color = colors[(row_index * maximum.shape[1] + column_index) % len(colors)]
            top, left = row_index * size, column_index * size
            outlines.append((Outline(Box(top, left, top + size - 1, left + size - 1), color), 1))
            for column in (2, 3):
                outlines.append(
                    (Outline(Box(row_index, column_index, row_index, column_index), color), column)
                )
    _outline(figure, outlines)
    zrange = _signed_range(values)
    figure.add_trace(
        _heatmap(maximum, signed=True, numbers=True, font_size=font_size, zrange=zrange), row=1, col=2
    )
    figure.add_trace(
        _heatmap(average, signed=True, numbers=True, font_size=font_size, zrange=zrange), row=1, col=3
    )
    return _layout(figure, "Pooling: each coloured window becomes one cell", font_size, height)
