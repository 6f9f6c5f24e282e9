"""Figures of datasets and architectures: image grids, class balance and the architecture strip."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cnnlab.figures import data, model
from cnnlab.model import presets, shapes


def test_image_grid_shows_each_image_in_rgb_with_its_title() -> None:
    grey = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4, 1)
    colour = np.zeros((4, 4, 3), dtype=np.float32)
    colour[..., 0] = 1.0
    figure = data.image_grid([grey, colour, grey], ["g", "c", "again"], columns=2)
    assert [trace.type for trace in figure.data] == ["image"] * 3
    assert [annotation.text for annotation in figure.layout.annotations] == ["g", "c", "again"]
    first = np.asarray(figure.data[0].z)
    assert first.shape == (4, 4, 3) and np.array_equal(first[..., 0], first[..., 2])
    np.testing.assert_array_equal(first[..., 0], np.round(grey[..., 0] * 255))
    assert np.asarray(figure.data[1].z)[0, 0].tolist() == [255, 0, 0]
    assert figure.data[2].xaxis == "x3"  # The third image starts the second row.


def test_samples_per_class_gives_each_class_its_own_row() -> None:
    images = np.zeros((20, 8, 8, 1), dtype=np.float32)
    images[10:] = 1.0
    labels = np.repeat(np.arange(3), [10, 10, 0])  # A class with no training image gets no row.
    grid = data.samples_per_class(images, labels, ["zero", "one", "none"], per_class=3)
    assert [trace.type for trace in grid.data] == ["image"]  # One picture, however many images.
    picture = np.asarray(grid.data[0].z)
    # Two rows of three 8x8 images, one white pixel between them (8 // 8).
    assert picture.shape == (2 * 8 + 1, 3 * 8 + 2, 3)
    tiles = [
        picture[row * 9 : row * 9 + 8, column * 9 : column * 9 + 8] for row in (0, 1) for column in (0, 1, 2)
    ]
    assert all(tile.max() == 0 for tile in tiles[:3]) and all(tile.min() == 255 for tile in tiles[3:])
    assert picture[8].min() == 255 and picture[:, 8].min() == 255  # The gaps are white.
    assert list(grid.layout.yaxis.ticktext) == ["zero", "one"]
    assert list(grid.layout.yaxis.tickvals) == [3.5, 12.5]  # Each title at its row's middle.


def test_class_balance_stacks_the_three_splits() -> None:
    summary = pd.DataFrame({"train": [7, 5], "validation": [2, 1], "test": [1, 3]}, index=["zero", "one"])
    figure = data.class_balance(summary)
    assert [trace.name for trace in figure.data] == ["train", "validation", "test"]
    assert all(trace.type == "bar" and list(trace.x) == ["zero", "one"] for trace in figure.data)
    assert [list(trace.y) for trace in figure.data] == [[7, 5], [2, 1], [1, 3]]
    assert figure.layout.barmode == "stack" and figure.layout.yaxis.title.text == "images"


def test_architecture_draws_one_block_per_tensor() -> None:
    analysis = shapes.analyse(presets.get("cifar10").spec)
    figure = model.architecture(analysis)
    assert len(figure.layout.shapes) == len(figure.data) == len(analysis.rows) + 1
    labels = [annotation.text for annotation in figure.layout.annotations]
    height, width, channels = analysis.spec.input_shape
    assert labels[0] == f"Input<br>{height}×{width}×{channels}"
    last = analysis.rows[-1]
    assert labels[-1] == f"{last.name}<br>{last.output_shape[0]}"
    lefts = [shape.x0 for shape in figure.layout.shapes]
    assert lefts == sorted(lefts)  # Left to right in layer order.
