"""The rules a model must follow beyond its shapes, each with a message that names the fix.

`shapes.analyse` calls these while it walks the layers: unknown parameters and values outside
the catalogue's ranges, layers in an order Keras would reject or misread (a convolution after
Flatten, Dense on a feature map, a backbone on grey or tiny images), an input that does not
match the dataset, an output that does not fit the loss CNN Lab trains with, and the budget of
parameters and activation memory. Each rule returns problems (or a message); none of them
imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.errors import SpecError
from cnnlab.model import catalogue, parameters
from cnnlab.model.backbones import BACKBONE_MINIMUM_SIZE, BACKBONES
from cnnlab.specs import LayerSpec, ModelSpec

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Budget:
    """Limits a model must fit: parameters, and forward activation memory for one batch."""

    max_parameters: int = 30_000_000
    max_activation_megabytes: float = 4096.0
    batch_size: int = 32


@dataclass(frozen=True)
class Problem:
    """Something wrong with a model. `layer` is 1-based; 0 means the input; None the whole model."""

    layer: int | None
    message: str
    severity: str = "error"


def format_shape(shape: Shape) -> str:
    """A shape as the messages write it: "6x6x4" for a feature map, "vector of 64" otherwise."""
    return "x".join(str(size) for size in shape) if len(shape) == 3 else f"vector of {shape[0]}"


def parameter_problems(position: int, layer: LayerSpec) -> list[Problem]:
    """Unknown parameters, missing required ones and values outside the catalogue's ranges."""
    entry = catalogue.layer_type(layer.type)
    where = f"Layer {position} ({layer.type})"
    problems = []
    for name, value in layer.params.items():
        if name == "name":
            continue
        try:
            parameter = entry.parameter(name)
        except SpecError as error:
            problems.append(Problem(position, f"{where}: {error}"))
            continue
        problem = parameters.check_value(parameter, value)
        if problem is None:
            continue
        fix = f"Use e.g. {parameter.initial!r}." if parameter.initial is not None else ""
        if name == "rate":
            fix = "The rate is the fraction of values dropped while training; use e.g. 0.5 (0 disables it)."
        elif name in ("filters", "units") and isinstance(value, int) and value < 1:
            fix = f"A layer with {value} {name} has no outputs; use at least 1, e.g. {parameter.initial}."
        problems.append(Problem(position, f"{where} has {name}={value!r}, which {problem}. {fix}".strip()))
    for parameter in entry.parameters:
        if parameter.required and parameter.name not in layer.params:
            problems.append(
                Problem(position, f"{where} needs {parameter.name}; for example {parameter.initial!r}.")
            )
    return problems


_NEEDS_IMAGE_INPUT = frozenset(
    (
        "Conv2D",
        "SeparableConv2D",
        "DepthwiseConv2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "SpatialDropout2D",
    )
)


def layer_order_problem(position: int, layer: LayerSpec, shape: Shape) -> str | None:
    """Why the layer cannot take an input of `shape` where it stands, or None when it can.

    A layer that needs a feature map after Flatten, Dense or global pooling; Dense on a feature
    map (Keras would apply it per pixel); a backbone on images without 3 channels or too small.
    """
    where = f"Layer {position} ({catalogue.describe(layer)})"
    kind = layer.type
    spatial = len(shape) == 3
    if not spatial and (kind in _NEEDS_IMAGE_INPUT or kind.startswith("Random") or kind in BACKBONES):
        return (
            f"{where} needs an image-shaped input (height, width, channels) but gets a "
            f"{format_shape(shape)} from an earlier Flatten, Dense or global pooling. "
            "Move it before the Flatten or remove it."
        )
    if kind == "Dense" and spatial:
        units = layer.get("units")
        return (
            f"{where} gets a {format_shape(shape)} tensor. Without Flatten, Keras would apply it to "
            f"each of the {shape[0] * shape[1]} pixels separately and output {shape[0]}x{shape[1]}x{units}, "
            "not one answer per image. Add Flatten or GlobalAveragePooling2D before it."
        )
    if kind in BACKBONES:
        height, width, channels = shape
        if channels != 3:
            return (
                f"{where} expects colour images with 3 channels but gets {channels}. "
                "Choose the RGB colour mode on the Data page, or set channels to 3 in the input row "
                "(0. Input) of the Model page."
            )
        if height < BACKBONE_MINIMUM_SIZE or width < BACKBONE_MINIMUM_SIZE:
            return (
                f"{where} needs images of at least {BACKBONE_MINIMUM_SIZE}x{BACKBONE_MINIMUM_SIZE} but "
                f"gets {height}x{width}. Increase the image size on the Data page."
            )
    return None


def input_problems(spec: ModelSpec, dataset_input_shape: Sequence[int]) -> list[Problem]:
    """A problem when the model's input shape differs from the dataset's images."""
    if tuple(dataset_input_shape) == tuple(spec.input_shape):
        return []
    got, want = format_shape(tuple(spec.input_shape)), format_shape(tuple(dataset_input_shape))
    # The button's label in the Model page's input row (cnnlab/ui/pages/model/layer_editor.py, `input_row`).
    button = f"Use the data's {' × '.join(str(size) for size in dataset_input_shape)}"
    return [
        Problem(
            0,
            f'The model\'s input is {got} but the dataset gives {want} images. Press "{button}" in the '
            f'input row (0. Input) of the Model page\'s layer table (in JSON: "input_shape": '
            f"{list(dataset_input_shape)}), or change the image size and colour mode on the Data page.",
        )
    ]


def output_activation(spec: ModelSpec) -> str:
    """The activation of the model's last Dense or Activation layer ("linear" if none)."""
    for layer in reversed(spec.layers):
        if layer.type in ("Dense", "Activation"):
            return str(layer.get("activation") or "linear")
        if layer.type not in ("Dropout", "BatchNormalization"):
            break
    return "linear"


def loss_name(activation: str, output_shape: Shape) -> str:
    """The Keras loss for an output: one sigmoid unit is binary, anything else sparse categorical."""
    if activation == "sigmoid" and output_shape == (1,):
        return "binary_crossentropy"
    return "sparse_categorical_crossentropy"


def output_problems(spec: ModelSpec, output_shape: Shape, num_classes: int) -> list[Problem]:
    """Problems of the last layer against the dataset's classes and the loss CNN Lab uses.

    CNN Lab trains softmax outputs with sparse categorical cross-entropy and one sigmoid unit
    (for two classes) with binary cross-entropy.
    """
    last = len(spec.layers)
    where = f"Layer {last} ({catalogue.describe(spec.layers[-1])})"
    if len(output_shape) != 1:
        return [
            Problem(
                last,
                f"The model ends with a {format_shape(output_shape)} tensor, but a classifier must end with "
                f"one score per class. Add Flatten (or GlobalAveragePooling2D) and Dense({num_classes}, "
                "activation='softmax') at the end.",
            )
        ]
    width = output_shape[0]
    activation = output_activation(spec)
    if width == 1 and num_classes == 2:
        if activation == "sigmoid":
            return []
        message = (
            f"{where} outputs 1 value for 2 classes with activation {activation!r}; binary "
            "cross-entropy expects a probability. Use activation='sigmoid', or 2 units with softmax."
        )
    elif width != num_classes:
        message = (
            f"{where} outputs {width} values but the dataset has {num_classes} classes. "
            f"Set units={num_classes} on the last Dense layer."
        )
    elif activation != "softmax":
        message = (
            f"{where} ends with activation {activation!r}, but the loss (sparse categorical "
            "cross-entropy) expects class probabilities that sum to 1. Use activation='softmax' "
            "on the last layer."
        )
    else:
        return []
    return [Problem(last, message)]


def budget_problems(total_parameters: int, activation_bytes: int, budget: Budget) -> list[Problem]:
    """Problems when the parameters, or the activations of one batch (`activation_bytes`), exceed `budget`."""
    problems = []
    if total_parameters > budget.max_parameters:
        problems.append(
            Problem(
                None,
                f"The model has {total_parameters:,} parameters, over the budget of "
                f"{budget.max_parameters:,}. Add pooling before Flatten, use GlobalAveragePooling2D, "
                "or use fewer filters or units.",
            )
        )
    megabytes = activation_bytes / 2**20
    if megabytes > budget.max_activation_megabytes:
        problems.append(
            Problem(
                None,
                f"One batch of {budget.batch_size} images needs {megabytes:,.0f} MB of activations, over "
                f"the budget of {budget.max_activation_megabytes:,.0f} MB. Use a smaller batch size or "
                "image size, or pool earlier.",
            )
        )
    return problems
