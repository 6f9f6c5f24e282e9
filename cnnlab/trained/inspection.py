"""Looking inside a trained model for given images: Grad-CAM, saliency and feature maps.

Everything returns numpy arrays and draws nothing (`cnnlab.figures.inspection` draws them).
It works on the Sequential models `cnnlab.model.build` makes and on functional models: the model's
layers are wired again with the functional API into one "graph" model whose outputs are every
layer's output plus the class scores, built once per model and reused.

The class score is the logit of the class (the output layer's value before its softmax or
sigmoid) when it can be recovered, else the log of its probability: a softmax saturates for a
confident prediction and its gradients vanish, the logit's do not.

- `grad_cam`: Selvaraju et al. (2017), as in the keras-io example `grad_cam.py`: the chosen
  convolution layer's channels weighted by the mean gradient of the class score, ReLU, scaled to
  [0, 1] and resized to the input.
- `saliency`: the absolute gradient of the class score with respect to the input pixels
  (Simonyan et al., 2013), the largest over colour channels, scaled to [0, 1].
- `grad_cam_and_saliency`: both from one forward and one backward pass, for a page that shows
  them side by side.
- `feature_maps`: every spatial layer's output for one image.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cnnlab.data import prepare
from cnnlab.errors import CnnLabError
from cnnlab.trained import classification

CONVOLUTION_PREFIXES = ("Conv", "SeparableConv", "DepthwiseConv")
_SQUASHING = ("softmax", "sigmoid")


class InspectionError(CnnLabError):
    """The model or the images cannot be inspected as asked (no such layer, wrong image shape)."""


@dataclass(frozen=True)
class LayerGraph:
    """A model rewired so one call returns every layer's output and the class scores."""

    model: keras.Model  # outputs: [every layer's output..., scores]
    layer_names: tuple[str, ...]
    layer_types: tuple[str, ...]
    output_ranks: tuple[int, ...]
    scores_are_logits: bool
    single_sigmoid: bool  # one sigmoid unit: class 1 above 0.5
    compiled: dict[str, Callable[..., Any]] = field(default_factory=dict, compare=False, repr=False)

    def index(self, layer_name: str) -> int:
        """The position of `layer_name` among the graph's outputs; InspectionError if it is not there."""
        if layer_name not in self.layer_names:
            raise InspectionError(
                f"The model has no layer {layer_name!r}; its layers are {', '.join(self.layer_names)}."
            )
        return self.layer_names.index(layer_name)


_GRAPHS: weakref.WeakKeyDictionary[keras.Model, LayerGraph] = weakref.WeakKeyDictionary()
_GRAPHS_LOCK = threading.Lock()


def _linear_twin(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """A copy of a layer with a softmax or sigmoid activation, without the activation."""
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    if activation not in _SQUASHING or type(layer).__name__ == "Activation":
        return None
    config = layer.get_config()
    config.update(activation="linear", name=f"{layer.name}_logits")
    return type(layer).from_config(config)


def _squashing(layer: keras.layers.Layer) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "")


def layer_graph(model: keras.Model) -> LayerGraph:
    """The rewired `LayerGraph` of `model` (built on first use, then cached for the model's lifetime)."""
    with _GRAPHS_LOCK:
        graph = _GRAPHS.get(model)
        if graph is None:
            graph = _build_graph(model)
            _GRAPHS[model] = graph
        return graph


def _build_graph(model: keras.Model) -> LayerGraph:
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if not layers:
        raise InspectionError(f"The model {model.name!r} has no layers to inspect.")
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(shape=tuple(model.input_shape[1:]))
        outputs, previous = [], inputs
        for layer in layers:
            previous = layer(previous)
            outputs.append(previous)
    else:
        inputs = model.inputs[0]
        outputs = [layer.output for layer in layers]
    last = layers[-1]
    before_last = outputs[-2] if len(outputs) > 1 else inputs
    twin = _linear_twin(last)
    if twin is not None:
        scores, logits = twin(before_last), True
    elif type(last).__name__ == "Activation" and _squashing(last) in _SQUASHING:
        scores, logits = before_last, True
    else:
        scores = keras.ops.log(keras.ops.maximum(outputs[-1], keras.config.epsilon()))
        logits = False
    if twin is not None:
        twin.set_weights(last.get_weights())
    single_sigmoid = int(outputs[-1].shape[-1]) == 1
    graph_model = keras.Model(inputs, [*outputs, scores], name=f"{model.name}_graph")
    return LayerGraph(
        graph_model,
        tuple(layer.name for layer in layers),
        tuple(type(layer).__name__ for layer in layers),
        tuple(len(output.shape) for output in outputs),
        logits,
        single_sigmoid,
    )


def _is_spatial(graph: LayerGraph, position: int) -> bool:
    """A layer whose output is an image-like (height, width, channels) map and not augmentation.

    Augmentation, dropout and noise layers pass their input through unchanged at inference, so
    they are left out.
    """
    kind = graph.layer_types[position]
    passes_through = kind.startswith("Random") or "Dropout" in kind or "Noise" in kind
    return graph.output_ranks[position] == 4 and not passes_through


def feature_layers(model: keras.Model) -> list[str]:
    """The layers with an image-like output (convolutions, pooling, normalisation...), in order."""
    graph = layer_graph(model)
    return [name for position, name in enumerate(graph.layer_names) if _is_spatial(graph, position)]


def last_convolution(model: keras.Model) -> str:
    """The layer Grad-CAM uses by default: the last convolution (or nested backbone) with a spatial output."""
    graph = layer_graph(model)
    spatial = [position for position in range(len(graph.layer_names)) if _is_spatial(graph, position)]
    if not spatial:
        raise InspectionError(
            f"The model {model.name!r} has no layer with an image-like output, so Grad-CAM has nothing to "
            "weigh; add a Conv2D layer."
        )
    convolutions = [
        position
        for position in spatial
        if graph.layer_types[position].startswith(CONVOLUTION_PREFIXES)
        or graph.layer_types[position] in ("Functional", "Model")
    ]
    return graph.layer_names[(convolutions or spatial)[-1]]


def image_batch(model: keras.Model, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Images as a float32 batch of the model's input shape; InspectionError when they do not fit."""
    batch = np.asarray(images, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if batch.ndim == len(expected):
        batch = batch[np.newaxis]
    if tuple(batch.shape[1:]) != expected:
        raise InspectionError(
            f"The model takes images of shape {expected}; got {tuple(batch.shape[1:])}. "
            "Prepare them with cnnlab.data.prepare.prepare_for_model first."
        )
    return batch


def _input_spec(graph: LayerGraph) -> tf.TensorSpec:
    return tf.TensorSpec((None, *graph.model.input_shape[1:]), tf.float32)


def _compiled(graph: LayerGraph, name: str, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """The graph's TensorFlow function `name`, traced on first use and kept with the graph.

    A traced gradient pass answers a small model much sooner than the same eager calls do
    (Streamlit clears Keras's session and TensorFlow's kernel cache after every script run,
    which costs a traced function little and eager calls more); the input
    signature has no batch size, so any batch reuses one trace.
    """
    with _GRAPHS_LOCK:
        function = graph.compiled.get(name)
        if function is None:
            function = build()
            graph.compiled[name] = function
        return function


def predict(model: keras.Model, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """The model's class probabilities for a batch (or one image), in inference mode."""
    batch = image_batch(model, images)
    return np.asarray(keras.ops.convert_to_numpy(model(batch, training=False)), dtype=np.float32)


def _explainer(graph: LayerGraph, position: int) -> Callable[..., Any]:
    """A traced function of (images, classes) giving the class-weighted activations of the layer at
    `position` (Grad-CAM before scaling) and the gradients of the class scores for the input pixels."""

    def explain(inputs: tf.Tensor, classes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = graph.model(inputs, training=False)
            activations = outputs[position]
            score = _class_scores(graph, outputs[-1], classes)
        layer_gradients, input_gradients = tape.gradient(score, [activations, inputs])
        if layer_gradients is None:
            raise InspectionError(
                f"The class score does not depend on layer {graph.layer_names[position]!r}."
            )
        weights = tf.reduce_mean(layer_gradients, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(activations * weights, axis=-1)), input_gradients

    def build() -> Callable[..., Any]:
        traced: Callable[..., Any] = tf.function(
            explain, input_signature=[_input_spec(graph), tf.TensorSpec((None,), tf.int64)]
        )
        return traced

    return _compiled(graph, f"explain_{position}", build)


def _class_scores(graph: LayerGraph, scores: tf.Tensor, classes: np.ndarray) -> tf.Tensor:
    """The score of each image's chosen class, summed over the batch (images do not interact)."""
    if graph.single_sigmoid:
        value = scores[:, 0]
        if not graph.scores_are_logits:
            # Log-probability of class 0 is log(1 - p) = log(1 - exp(log p)).
            chosen = tf.where(classes == 1, value, tf.math.log(tf.maximum(1.0 - tf.exp(value), 1e-7)))
        else:
            chosen = tf.where(classes == 1, value, -value)
        return tf.reduce_sum(chosen)
    return tf.reduce_sum(tf.gather(scores, classes, axis=1, batch_dims=1))


def _chosen_classes(
    graph: LayerGraph, batch: np.ndarray, classes: Sequence[int] | np.ndarray | None
) -> np.ndarray:
    if classes is not None:
        chosen = np.asarray(classes, dtype=np.int64).reshape(-1)
        if len(chosen) != len(batch):
            raise InspectionError(f"Give one class per image: {len(batch)} images, {len(chosen)} classes.")
        return chosen
    probabilities = np.asarray(keras.ops.convert_to_numpy(graph.model(batch, training=False)[-2]))
    return classification.predicted_classes(probabilities)


def _scaled(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum (all-zero maps stay zero)."""
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    return (maps / np.where(peaks > 0, peaks, 1.0)[:, np.newaxis, np.newaxis]).astype(np.float32)


def _resized(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([prepare.resize_array(plane[:, :, np.newaxis], height, width)[:, :, 0] for plane in maps])


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    classes: Sequence[int] | np.ndarray | None = None,
    layer_name: str | None = None,
) -> np.ndarray:
    """Grad-CAM heat maps, (count, height, width) in [0, 1] at the input's size.

    `classes` are the classes to explain (default: each image's predicted class); `layer_name`
    the spatial layer to weigh (default: `last_convolution(model)`).
    """
    return grad_cam_and_saliency(model, images, classes, layer_name)[0]


def saliency(
    model: keras.Model, images: np.ndarray, classes: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Saliency maps, (count, height, width) in [0, 1]: how much each pixel moves the class score."""
    graph = layer_graph(model)
    batch = image_batch(model, images)
    chosen = _chosen_classes(graph, batch, classes)
    inputs = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        score = _class_scores(graph, graph.model(inputs, training=False)[-1], tf.constant(chosen))
    gradients = tape.gradient(score, inputs).numpy()
    return _scaled(np.abs(gradients).max(axis=-1))


def grad_cam_and_saliency(
    model: keras.Model,
    images: np.ndarray,
    classes: Sequence[int] | np.ndarray | None = None,
    layer_name: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM and saliency maps of the same images and classes, from one pass: equal to
    `grad_cam(...)` and `saliency(...)`, each (count, height, width) in [0, 1]."""
    graph = layer_graph(model)
    batch = image_batch(model, images)
    chosen = _chosen_classes(graph, batch, classes)
    position = graph.index(layer_name or last_convolution(model))
    if not _is_spatial(graph, position):
        raise InspectionError(
            f"Layer {graph.layer_names[position]!r} ({graph.layer_types[position]}) has no image-like output; "
            f"choose one of {', '.join(feature_layers(model))}."
        )
    maps, input_gradients = _explainer(graph, position)(tf.constant(batch), tf.constant(chosen))
    height, width = batch.shape[1:3]
    heat_maps: np.ndarray = np.clip(_resized(_scaled(maps.numpy()), height, width), 0.0, 1.0)
    return heat_maps, _scaled(np.abs(input_gradients.numpy()).max(axis=-1))


def feature_maps(model: keras.Model, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every spatial layer's output for one image: layer name to (height, width, channels)."""
    graph = layer_graph(model)
    batch = image_batch(model, image)[:1]
    outputs = graph.model(batch, training=False)
    return {
        name: np.asarray(keras.ops.convert_to_numpy(outputs[position])[0], dtype=np.float32)
        for position, name in enumerate(graph.layer_names)
        if _is_spatial(graph, position)
    }
