"""The Learn page's arithmetic against scipy, numpy and Keras."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as strategies
from hypothesis.extra import numpy as numpy_strategies
from scipy import signal

from cnnlab.lesson import arithmetic


def evaluate_written(text: str) -> float:
    """Evaluate a written sum's arithmetic (× for times, − for minus), checking it is only arithmetic."""
    expression = text.replace("×", "*").replace("−", "-")
    assert re.fullmatch(r"[0-9.\s()+\-*]+", expression), expression
    return float(eval(expression))  # The regex above allows only numbers and + - * ( ).


def scipy_oracle(image: np.ndarray, kernel: np.ndarray, stride: int, padding: str) -> np.ndarray:
    """Cross-correlation of the Keras-padded image, every `stride`-th window."""
    amounts = arithmetic.padding_amounts(image.shape, kernel.shape, stride, padding)
    padded = np.pad(image.astype(float), ((amounts.top, amounts.bottom), (amounts.left, amounts.right)))
    return signal.correlate2d(padded, kernel.astype(float), mode="valid")[::stride, ::stride]


@strategies.composite
def convolution_cases(draw: strategies.DrawFn) -> tuple[np.ndarray, np.ndarray, int, str]:
    kernel_rows, kernel_columns = draw(strategies.integers(1, 4)), draw(strategies.integers(1, 4))
    padding = draw(strategies.sampled_from(arithmetic.PADDINGS))
    rows = draw(strategies.integers(kernel_rows if padding == "valid" else 1, 9))
    columns = draw(strategies.integers(kernel_columns if padding == "valid" else 1, 9))
    values = strategies.integers(-9, 9)
    image = draw(numpy_strategies.arrays(np.int64, (rows, columns), elements=values))
    kernel = draw(numpy_strategies.arrays(np.int64, (kernel_rows, kernel_columns), elements=values))
    return image, kernel, draw(strategies.integers(1, 3)), padding


@settings(max_examples=150, deadline=None)
@given(convolution_cases())
def test_every_step_matches_scipy_and_its_written_sum(case: tuple[np.ndarray, np.ndarray, int, str]) -> None:
    image, kernel, stride, padding = case
    expected = scipy_oracle(image, kernel, stride, padding)
    assert arithmetic.output_shape(image.shape, kernel.shape, stride, padding) == expected.shape
    np.testing.assert_allclose(arithmetic.convolve(image, kernel, stride, padding), expected)
    assert arithmetic.step_count(image.shape, kernel.shape, stride, padding) == expected.size
    for index in range(expected.size):
        step = arithmetic.convolution_step(image, kernel, stride, padding, index)
        assert step.total == expected[step.row, step.column]
        assert evaluate_written(step.text.rsplit("=", 1)[0]) == step.total
        assert float(step.text.rsplit("=", 1)[1]) == step.total
        assert evaluate_written(step.lines[-2].removeprefix("= ")) == step.total


@settings(max_examples=60, deadline=None)
@given(convolution_cases(), strategies.integers(0, 2**32 - 1))
def test_float_inputs_match_sliding_windows(case: tuple[np.ndarray, np.ndarray, int, str], seed: int) -> None:
    image, kernel, stride, padding = case
    generator = np.random.default_rng(seed)
    image = generator.random(image.shape).round(2)
    kernel = generator.normal(size=kernel.shape)
    amounts = arithmetic.padding_amounts(image.shape, kernel.shape, stride, padding)
    padded = np.pad(image, ((amounts.top, amounts.bottom), (amounts.left, amounts.right)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape)[::stride, ::stride]
    expected = (windows * kernel).sum(axis=(2, 3))
    np.testing.assert_allclose(arithmetic.convolve(image, kernel, stride, padding), expected, atol=1e-12)
    last = arithmetic.convolution_step(image, kernel, stride, padding, expected.size - 1)
    assert last.total == pytest.approx(expected[-1, -1])
    # Written with four decimals, the sum still evaluates to the cell within rounding.
    assert evaluate_written(last.text.rsplit("=", 1)[0]) == pytest.approx(last.total, abs=1e-3 * kernel.size)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "expected", "whole", "before", "after"),
    [
        (6, 3, 1, "valid", 4, True, 0, 0),  # The article's example.
        (32, 3, 1, "valid", 30, True, 0, 0),  # The article's 32x32 image gives 30x30 maps.
        (7, 3, 2, "valid", 3, True, 0, 0),
        (6, 3, 2, "valid", 2, False, 0, 0),  # (6 - 3) / 2 + 1 = 2.5: Keras floors.
        (28, 5, 3, "valid", 8, False, 0, 0),  # 23 / 3 + 1 = 8.67.
        (28, 4, 3, "valid", 9, True, 0, 0),
        (10, 4, 3, "valid", 3, True, 0, 0),
        (6, 3, 1, "same", 6, True, 1, 1),
        (6, 3, 2, "same", 3, True, 0, 1),  # The odd zero goes after, like TensorFlow.
        (6, 2, 1, "same", 6, True, 0, 1),
        (6, 1, 3, "same", 2, False, 0, 0),
    ],
)
def test_output_size_formula(
    size: int, kernel: int, stride: int, padding: str, expected: int, whole: bool, before: int, after: int
) -> None:
    result = arithmetic.output_size(size, kernel, stride, padding)
    assert (result.size, result.whole, result.pad_before, result.pad_after) == (
        expected,
        whole,
        before,
        after,
    )
    assert result.exact == pytest.approx((size - kernel + result.pad_total) / stride + 1)
    assert result.text.startswith(f"({size} − {kernel} + ")
    assert arithmetic.format_number(result.exact) in result.text
    if whole:
        assert "not a whole number" not in result.text
    else:
        assert "not a whole number" in result.text and f"floor) to {expected}" in result.text
    if padding == "same":
        assert expected == math.ceil(size / stride)


def test_output_size_explains_impossible_settings() -> None:
    with pytest.raises(arithmetic.LessonError, match="does not fit"):
        arithmetic.output_size(2, 3, 1, "valid")
    with pytest.raises(arithmetic.LessonError, match="stride"):
        arithmetic.output_size(6, 3, 0, "valid")
    with pytest.raises(arithmetic.LessonError, match="'valid' or 'same'"):
        arithmetic.output_size(6, 3, 1, "full")


@pytest.mark.slow
@pytest.mark.parametrize(("stride", "padding"), [(1, "valid"), (2, "same"), (3, "same"), (2, "valid")])
def test_convolution_and_pooling_match_keras(stride: int, padding: str) -> None:
    import keras

    generator = np.random.default_rng(stride)
    image = generator.normal(size=(7, 8, 2)).astype("float32")
    kernels = generator.normal(size=(2, 3, 2, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(
        keras.ops.conv(image[np.newaxis], kernels, strides=stride, padding=padding)
    )[0, :, :, 0]
    ours = arithmetic.convolve_channels(image, kernels[:, :, :, 0], 0.5, stride, padding) - 0.5
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    first = arithmetic.convolve_channels(image, kernels[:, :, :, 0], 0.5, stride, padding, sum_channels=False)
    np.testing.assert_allclose(
        first, arithmetic.convolve(image[:, :, 0], kernels[:, :, 0, 0], stride, padding)
    )
    feature_map = arithmetic.relu(ours)
    for mode, layer in (("max", keras.layers.MaxPooling2D(2)), ("average", keras.layers.AveragePooling2D(2))):
        pooled = keras.ops.convert_to_numpy(layer(feature_map[np.newaxis, :, :, np.newaxis]))[0, :, :, 0]
        np.testing.assert_allclose(arithmetic.pool(feature_map, 2, mode), pooled, atol=1e-5)


def test_relu_and_pooling_of_the_example() -> None:
    feature_map = np.array([[-2, 1, 0, 3], [4, -1, -5, 2], [0, 0, 1, 1], [6, -3, 2, 2]])
    rectified = arithmetic.relu(feature_map)
    assert rectified.min() == 0 and (rectified[feature_map > 0] == feature_map[feature_map > 0]).all()
    np.testing.assert_array_equal(arithmetic.pool(rectified, 2, "max"), [[4, 3], [6, 2]])
    np.testing.assert_array_equal(arithmetic.pool(rectified, 2, "average"), [[1.25, 1.25], [1.5, 1.5]])
    assert arithmetic.pool(np.arange(25).reshape(5, 5), 2, "max").shape == (
        2,
        2,
    )  # 'valid': floor, like Keras.
    with pytest.raises(arithmetic.LessonError):
        arithmetic.pool(rectified, 2, "median")


def test_receptive_field_of_one_layer_is_the_window() -> None:
    image = np.arange(36).reshape(6, 6)
    kernel = np.ones((3, 3))
    amounts = arithmetic.padding_amounts(image.shape, kernel.shape, 2, "same")
    for index in range(arithmetic.step_count(image.shape, kernel.shape, 2, "same")):
        step = arithmetic.convolution_step(image, kernel, 2, "same", index)
        box = arithmetic.step_receptive_field(step, kernel.shape, amounts)
        layer = arithmetic.window_layer(image.shape, (3, 3), (2, 2), "same")
        assert arithmetic.receptive_field([layer], step.row, step.column) == box
        inside = box.clipped(image.shape)
        assert step.total == image[inside.top : inside.bottom + 1, inside.left : inside.right + 1].sum()


def test_receptive_field_grows_through_stacked_layers() -> None:
    # conv 3x3 valid, max pool 2x2, conv 3x3 valid on 28x28: a cell of the last map sees 8x8 pixels.
    layers = [
        arithmetic.window_layer((28, 28), (3, 3), (1, 1), "valid"),
        arithmetic.window_layer((26, 26), (2, 2), (2, 2), "valid"),
        arithmetic.window_layer((13, 13), (3, 3), (1, 1), "valid"),
    ]
    assert arithmetic.receptive_field(layers, 0, 0) == arithmetic.Box(0, 0, 7, 7)
    assert arithmetic.receptive_field(layers, 1, 2) == arithmetic.Box(2, 4, 9, 11)
    same = arithmetic.window_layer((6, 6), (3, 3), (1, 1), "same")
    assert arithmetic.receptive_field([same], 0, 0) == arithmetic.Box(-1, -1, 1, 1)
    assert arithmetic.Box(-1, -1, 1, 1).clipped((6, 6)) == arithmetic.Box(0, 0, 1, 1)


def test_numbers_are_written_plainly() -> None:
    assert arithmetic.format_number(-0.0) == "0"
    assert arithmetic.format_number(0.0625) == "0.0625"
    assert arithmetic.format_number(2.0) == "2"
    assert arithmetic.format_number(1 / 3) == "0.3333"
