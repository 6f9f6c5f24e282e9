"""A trained model's layers read as data, for the Learn page's walk through a real run.

What the model takes and gives (`summary`), its own Conv2D layers with their weights as numpy
arrays (`convolutions`), what one layer receives and returns for an image (`layer_input_output`,
a probe model built here so the UI never builds one), and the sliding windows before a layer
(`sliding_windows`, for receptive fields). Grad-CAM, saliency and feature maps are in
`cnnlab.trained.inspection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from cnnlab.trained import inspection

_WINDOW_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D")
_SPATIALLY_NEUTRAL = (
    "InputLayer",
    "Rescaling",
    "Normalization",
    "BatchNormalization",
    "Dropout",
    "SpatialDropout2D",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
    "GaussianNoise",
)


@dataclass(frozen=True)
class Convolution:
    """One Conv2D layer of a model: where it is, its settings, and its weights as numpy arrays."""

    index: int  # position in `model.layers`
    name: str
    filters: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    padding: str  # "valid" or "same"
    activation: str  # "relu", "linear", ...
    kernels: np.ndarray  # (kernel height, kernel width, input channels, filters)
    bias: np.ndarray  # (filters,), zeros for a layer without a bias


@dataclass(frozen=True)
class SlidingWindow:
    """A convolution or pooling layer as a window slid over its input, for receptive fields."""

    input_size: tuple[int, int]
    window: tuple[int, int]
    strides: tuple[int, int]
    padding: str


@dataclass(frozen=True)
class ModelSummary:
    """What a model takes and gives: its image shape, its output units and its parameter count."""

    input_shape: tuple[int, int, int]  # (height, width, channels)
    outputs: int  # class probabilities, or 1 for a single sigmoid unit
    parameters: int


def summary(model: keras.Model) -> ModelSummary:
    """The model's input shape, output units and parameters; InspectionError unless it takes images."""
    shape = tuple(int(size) for size in model.input_shape[1:])
    if len(shape) != 3:
        raise inspection.InspectionError(
            f"The model takes inputs of shape {shape}; an image classifier takes (height, width, channels)."
        )
    return ModelSummary(
        (shape[0], shape[1], shape[2]), int(model.output_shape[-1]), int(model.count_params())
    )


def convolutions(model: keras.Model) -> list[Convolution]:
    """The model's own Conv2D layers, in order (a nested pretrained backbone keeps its layers inside)."""
    found = []
    for index, layer in enumerate(model.layers):
        if type(layer).__name__ != "Conv2D":
            continue
        weights = [np.asarray(weight, dtype=np.float32) for weight in layer.get_weights()]
        bias = weights[1] if layer.use_bias else np.zeros(layer.filters, np.float32)
        found.append(
            Convolution(
                index=index,
                name=layer.name,
                filters=int(layer.filters),
                kernel_size=(int(layer.kernel_size[0]), int(layer.kernel_size[1])),
                strides=(int(layer.strides[0]), int(layer.strides[1])),
                padding=layer.padding.lower(),
                activation=getattr(getattr(layer, "activation", None), "__name__", "") or "linear",
                kernels=weights[0],
                bias=bias,
            )
        )
    return found


def layer_input_output(
    model: keras.Model, layer_index: int, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """What layer `layer_index` receives and returns for one (height, width, channels) image."""
    if not 0 <= layer_index < len(model.layers):
        raise inspection.InspectionError(
            f"The model has layers 0 to {len(model.layers) - 1}; got layer {layer_index}. Choose one of those."
        )
    layer = model.layers[layer_index]
    probe = keras.Model(model.inputs, [layer.input, layer.output])
    received, returned = probe([inspection.image_batch(model, image)[:1]], training=False)
    return np.asarray(received)[0], np.asarray(returned)[0]


def sliding_windows(model: keras.Model, last_index: int) -> list[SlidingWindow] | None:
    """The sliding-window layers up to layer `last_index`, or None when another layer changes the size."""
    chain = []
    for layer in model.layers[: last_index + 1]:
        kind = type(layer).__name__
        if kind in _WINDOW_LAYERS:
            if any(rate != 1 for rate in getattr(layer, "dilation_rate", (1, 1))):
                return None
            size = tuple(getattr(layer, "kernel_size", None) or layer.pool_size)
            chain.append(
                SlidingWindow(
                    input_size=(int(layer.input.shape[1]), int(layer.input.shape[2])),
                    window=(int(size[0]), int(size[1])),
                    strides=(int(layer.strides[0]), int(layer.strides[1])),
                    padding=layer.padding.lower(),
                )
            )
        elif kind not in _SPATIALLY_NEUTRAL:
            return None
    return chain
