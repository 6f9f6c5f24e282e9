"""The Learn page's figures: numbers in cells, the window, the zero border, the output cell."""

from __future__ import annotations

from collections import Counter

import numpy as np
import plotly.graph_objects as go

from cnnlab.figures import learn as figures
from cnnlab.lesson import arithmetic, content


def rectangles(figure: go.Figure, color: str | None = None) -> list[tuple[float, float, float, float]]:
    return [
        (shape.x0, shape.y0, shape.x1, shape.y1)
        for shape in figure.layout.shapes
        if shape.type == "rect" and (color is None or shape.line.color == color)
    ]


def test_input_figure_draws_numbers_the_window_and_the_zero_border() -> None:
    image = content.x_image()
    amounts = arithmetic.padding_amounts(image.shape, (3, 3), 1, "same")
    step = arithmetic.convolution_step(image, content.KERNELS["Sobel x"], 1, "same", 0)
    window = arithmetic.step_receptive_field(step, (3, 3), amounts)
    figure = figures.input_figure(image, padding=amounts, window=window)
    border, picture = figure.data
    assert border.name == "zero padding" and picture.name == "image"
    border_values = np.array(border.z, dtype=float)
    assert border_values.shape == (8, 8)
    assert np.isnan(border_values[1:7, 1:7]).all() and (border_values[0] == 0).all()
    assert next(iter(border.y)) == -1 and list(border.x)[-1] == 6  # Padding sits outside 0..5.
    assert picture.text[0][0] == "1" and picture.text[0][1] == "0"
    assert (
        tuple(figure.layout.yaxis.range) == (6.5, -1.5) and figure.layout.yaxis.scaleanchor == "x"
    )  # Row 0 on top.
    assert rectangles(figure, figures.WINDOW_COLOR) == [
        (-1.5, -1.5, 1.5, 1.5)
    ]  # The window starts in the border.
    assert (-0.5, -0.5, 5.5, 5.5) in rectangles(figure)  # The image's own edge, dashed.


def test_input_figure_without_padding_moves_its_window_with_the_step() -> None:
    image = content.x_image()
    boxes = []
    for index in (0, 1, 4):
        step = arithmetic.convolution_step(image, content.KERNELS["Vertical edge"], 1, "valid", index)
        window = arithmetic.step_receptive_field(step, (3, 3), arithmetic.Padding())
        figure = figures.input_figure(image, window=window)
        assert len(figure.data) == 1
        boxes.append(rectangles(figure, figures.WINDOW_COLOR)[0])
    assert boxes == [(-0.5, -0.5, 2.5, 2.5), (0.5, -0.5, 3.5, 2.5), (-0.5, 0.5, 2.5, 3.5)]


def test_feature_map_figure_fills_cells_up_to_the_current_step() -> None:
    feature_map = arithmetic.convolve(content.x_image(), content.KERNELS["Vertical edge"])
    figure = figures.feature_map_figure(feature_map, filled=6, current=(1, 1))
    values = np.array(figure.data[-1].z, dtype=float).ravel()
    assert np.isfinite(values[:6]).all() and np.isnan(values[6:]).all()
    assert figure.data[-1].text[1][1] == "-1" and figure.data[-1].text[2][0] == ""
    assert rectangles(figure, figures.CELL_COLOR) == [(0.5, 0.5, 1.5, 1.5)]
    assert figure.data[-1].zmid is None and figure.data[-1].zmin == -2 and figure.data[-1].zmax == 2


def test_large_grids_drop_their_numbers() -> None:
    figure = figures.grid_figure(np.zeros((28, 28)))
    assert figure.data[0].text is None
    assert figures.grid_figure(np.zeros((16, 16))).data[0].text is not None


def test_kernel_figure_is_signed_around_zero() -> None:
    figure = figures.kernel_figure(content.KERNELS["Emboss"])
    assert (figure.data[0].zmin, figure.data[0].zmax) == (-2, 2)
    assert figure.data[0].text[0][0] == "-2"


def test_relu_figure_outlines_the_negatives_on_both_sides() -> None:
    feature_map = np.array([[-2.0, 1.0], [3.0, -0.5]])
    figure = figures.relu_figure(feature_map)
    before, after = figure.data
    np.testing.assert_array_equal(after.z, [[0, 1], [3, 0]])
    assert before.text[0][0] == "-2" and after.text[0][0] == "0"
    assert len(rectangles(figure, figures.NEGATIVE_COLOR)) == 4  # Two negative cells, drawn on both grids.
    assert Counter((shape.xref, shape.yref) for shape in figure.layout.shapes) == {
        ("x", "y"): 2,
        ("x2", "y2"): 2,
    }


def test_pooling_figure_puts_max_and_average_side_by_side() -> None:
    feature_map = arithmetic.relu(
        np.array([[-2, 1, 0, 3], [4, -1, -5, 2], [0, 0, 1, 1], [6, -3, 2, 2]], dtype=float)
    )
    figure = figures.pooling_figure(feature_map, size=2)
    _source, maximum, average = figure.data
    np.testing.assert_array_equal(maximum.z, [[4, 3], [6, 2]])
    np.testing.assert_array_equal(average.z, [[1.25, 1.25], [1.5, 1.5]])
    assert [annotation.text for annotation in figure.layout.annotations][1:] == [
        "Max pooling 2×2",
        "Average pooling 2×2",
    ]
    assert len(rectangles(figure)) == 4 * 3  # Four windows, each outlined on the map and on both results.
    # Each on its own grid: the axes of the subplot its trace is on, as plotly's add_shape(row, col) names them.
    grids = [(trace.xaxis or "x", trace.yaxis or "y") for trace in figure.data]
    assert Counter((shape.xref, shape.yref) for shape in figure.layout.shapes) == {grid: 4 for grid in grids}


def test_receptive_field_box_is_drawn() -> None:
    figure = figures.input_figure(np.zeros((28, 28)), field=arithmetic.Box(2, 4, 9, 11))
    assert rectangles(figure, figures.FIELD_COLOR) == [(3.5, 1.5, 11.5, 9.5)]


def test_numbers_can_be_rounded_for_small_cells() -> None:
    figure = figures.grid_figure(np.array([[0.123456, -0.5]]), digits=2)
    assert list(figure.data[0].text[0]) == ["0.12", "-0.5"]
