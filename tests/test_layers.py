"""A trained model's layers as data (the Learn page's walk), checked against Keras itself."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cnnlab.lesson import arithmetic
from cnnlab.trained import layers
from cnnlab.trained.inspection import InspectionError


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1.0),
            keras.layers.Conv2D(4, 3, activation="relu", name="first"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(2, 3, padding="same", use_bias=False, name="second"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).random((8, 8, 1)).astype(np.float32)


def test_summary_matches_keras(model: keras.Model) -> None:
    summary = layers.summary(model)
    assert summary == layers.ModelSummary((8, 8, 1), 3, model.count_params())
    flat = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    with pytest.raises(InspectionError, match=r"inputs of shape \(5,\).*\(height, width, channels\)"):
        layers.summary(flat)


def test_convolutions_hold_the_layers_settings_and_weights(model: keras.Model) -> None:
    first, second = layers.convolutions(model)
    assert (first.index, first.name, first.filters, first.kernel_size) == (1, "first", 4, (3, 3))
    assert (first.strides, first.padding, first.activation) == ((1, 1), "valid", "relu")
    kernel, bias = model.get_layer("first").get_weights()
    np.testing.assert_array_equal(first.kernels, kernel)
    np.testing.assert_array_equal(first.bias, bias)
    assert (second.index, second.padding, second.activation) == (3, "same", "linear")
    np.testing.assert_array_equal(second.bias, np.zeros(2))  # No bias: zeros, as Keras adds nothing.


def test_layer_input_output_matches_keras_sub_models(model: keras.Model, image: np.ndarray) -> None:
    index = layers.convolutions(model)[1].index
    received, returned = layers.layer_input_output(model, index, image)
    layer = model.layers[index]
    before = keras.Model(model.inputs, model.layers[index - 1].output)([image[np.newaxis]])
    after = keras.Model(model.inputs, layer.output)([image[np.newaxis]])
    np.testing.assert_allclose(received, np.asarray(before)[0], atol=1e-6)
    np.testing.assert_allclose(returned, np.asarray(after)[0], atol=1e-6)
    # The lesson's arithmetic, applied to what the layer receives, gives what Keras returns.
    convolution = layers.convolutions(model)[1]
    ours = arithmetic.convolve_channels(received, convolution.kernels[:, :, :, 0], 0.0, 1, "same")
    np.testing.assert_allclose(ours, returned[:, :, 0], atol=1e-5)
    with pytest.raises(InspectionError, match="layers 0 to 5; got layer 9"):
        layers.layer_input_output(model, 9, image)


def test_sliding_windows_trace_convolutions_and_pooling(model: keras.Model) -> None:
    windows = layers.sliding_windows(model, 3)
    assert windows == [
        layers.SlidingWindow((8, 8), (3, 3), (1, 1), "valid"),
        layers.SlidingWindow((6, 6), (2, 2), (2, 2), "valid"),
        layers.SlidingWindow((3, 3), (3, 3), (1, 1), "same"),
    ]
    chain = [arithmetic.window_layer(w.input_size, w.window, w.strides, w.padding) for w in windows]
    field = arithmetic.receptive_field(chain, 1, 1).clipped((8, 8))
    assert (field.height, field.width) == (8, 8)  # 3x3 after a 2x2 pool after a 3x3: up to 8x8 pixels.
    assert layers.sliding_windows(model, 5) is None  # Flatten changes the size in a way not traced.


def test_a_dilated_convolution_is_not_traced() -> None:
    dilated = keras.Sequential([keras.Input((9, 9, 1)), keras.layers.Conv2D(1, 3, dilation_rate=2)])
    assert layers.sliding_windows(dilated, 0) is None
