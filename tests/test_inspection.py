"""Inspection: Grad-CAM, saliency and feature maps against Keras and TensorFlow computed by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnlab import specs
from cnnlab.model import build, presets
from cnnlab.trained import inspection
from cnnlab.trained.inspection import InspectionError


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """The default digits CNN as cnnlab.model.build makes it (with augmentation layers), briefly trained."""
    keras.utils.set_random_seed(0)
    settings = specs.TrainingSettings(augmentation=specs.AugmentationSettings(flip="horizontal"))
    model = build.build_model(presets.get("digits_default").spec, settings)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    generator = np.random.default_rng(0)
    images = generator.random((64, 8, 8, 1)).astype(np.float32)
    model.fit(images, generator.integers(0, 10, 64), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).random((3, 8, 8, 1)).astype(np.float32)


def _reference_grad_cam(
    model: keras.Model, images: np.ndarray, layer_name: str, classes: np.ndarray
) -> np.ndarray:
    """The keras-io recipe on the logits: a functional twin of the model up to the softmax."""
    inputs = keras.Input(model.input_shape[1:])
    tensor, target = inputs, None
    for layer in model.layers[:-1]:
        tensor = layer(tensor)
        if layer.name == layer_name:
            target = tensor
    last = model.layers[-1]
    logits = keras.ops.matmul(tensor, last.kernel) + last.bias
    twin = keras.Model(inputs, [target, logits])
    with tf.GradientTape() as tape:
        activations, scores = twin(images, training=False)
        chosen = tf.reduce_sum(tf.gather(scores, classes, axis=1, batch_dims=1))
    gradients = tape.gradient(chosen, activations)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(activations * weights, axis=-1)).numpy()
    scaled: np.ndarray = maps / np.maximum(maps.reshape(len(maps), -1).max(axis=1), 1e-12)[:, None, None]
    return scaled


def test_layers_skip_augmentation_and_dropout(model: keras.Model) -> None:
    assert inspection.feature_layers(model) == ["conv2d_1", "conv2d_2", "max_pooling2d_1"]
    assert inspection.last_convolution(model) == "conv2d_2"
    assert inspection.layer_graph(model).scores_are_logits


def test_predict_matches_the_model(model: keras.Model, images: np.ndarray) -> None:
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(inspection.predict(model, images), expected, rtol=1e-5, atol=1e-6)
    assert inspection.predict(model, images[0]).shape == (1, 10)


@pytest.mark.parametrize("layer_name", ["conv2d_1", "conv2d_2"])
def test_grad_cam_matches_the_keras_io_recipe(
    model: keras.Model, images: np.ndarray, layer_name: str
) -> None:
    classes = np.array([0, 3, 7])
    maps = inspection.grad_cam(model, images, classes, layer_name=layer_name)
    assert maps.shape == (3, 8, 8) and maps.min() >= 0.0 and maps.max() <= 1.0
    np.testing.assert_allclose(maps, _reference_grad_cam(model, images, layer_name, classes), atol=1e-4)


def test_grad_cam_defaults_to_the_predicted_class(model: keras.Model, images: np.ndarray) -> None:
    predicted = inspection.predict(model, images).argmax(axis=1)
    np.testing.assert_allclose(
        inspection.grad_cam(model, images), inspection.grad_cam(model, images, predicted)
    )


def test_grad_cam_of_a_pooled_layer_is_resized_to_the_input(model: keras.Model, images: np.ndarray) -> None:
    maps = inspection.grad_cam(model, images, layer_name="max_pooling2d_1")
    assert maps.shape == (3, 8, 8)


def test_saliency_is_the_input_gradient_of_the_logit(model: keras.Model, images: np.ndarray) -> None:
    classes = np.array([1, 2, 3])
    last = model.layers[-1]
    tensor = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        hidden = tensor
        for layer in model.layers[:-1]:
            hidden = layer(hidden, training=False)
        logits = keras.ops.matmul(hidden, last.kernel) + last.bias
        chosen = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    expected = np.abs(tape.gradient(chosen, tensor).numpy()).max(axis=-1)
    expected /= expected.reshape(3, -1).max(axis=1)[:, None, None]
    np.testing.assert_allclose(inspection.saliency(model, images, classes), expected, atol=1e-5)


def test_feature_maps_match_keras_sub_models(model: keras.Model, images: np.ndarray) -> None:
    maps = inspection.feature_maps(model, images[0])
    assert list(maps) == inspection.feature_layers(model)
    for name, values in maps.items():
        reference = keras.Model(model.inputs[0], model.get_layer(name).output)
        np.testing.assert_allclose(values, reference(images[:1], training=False)[0], rtol=1e-5, atol=1e-5)


def test_a_single_sigmoid_output_and_a_separate_activation_layer() -> None:
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
            keras.layers.Activation("sigmoid"),
        ]
    )
    pictures = np.random.default_rng(3).random((2, 6, 6, 3)).astype(np.float32)
    graph = inspection.layer_graph(model)
    assert graph.single_sigmoid and graph.scores_are_logits
    for_one = inspection.saliency(model, pictures, [1, 1])
    for_zero = inspection.saliency(model, pictures, [0, 0])
    np.testing.assert_allclose(for_one, for_zero, atol=1e-6)  # The gradient only changes sign.
    assert inspection.grad_cam(model, pictures).shape == (2, 6, 6)


def test_a_functional_model_without_convolution(images: np.ndarray) -> None:
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    assert inspection.feature_layers(model) == []
    with pytest.raises(InspectionError, match="add a Conv2D layer"):
        inspection.grad_cam(model, images)
    assert inspection.saliency(model, images).shape == (3, 8, 8)


def test_errors_name_what_was_wrong(model: keras.Model, images: np.ndarray) -> None:
    with pytest.raises(InspectionError, match=r"takes images of shape \(8, 8, 1\); got \(9, 9, 1\)"):
        inspection.predict(model, np.zeros((1, 9, 9, 1)))
    with pytest.raises(InspectionError, match="no layer 'nope'; its layers are"):
        inspection.grad_cam(model, images, layer_name="nope")
    with pytest.raises(InspectionError, match="no image-like output"):
        inspection.grad_cam(model, images, layer_name="dense_1")
    with pytest.raises(InspectionError, match="one class per image"):
        inspection.saliency(model, images, [1])
