"""Shape and parameter inference in pure Python, with errors that name the layer and the fix.

`analyse(spec)` walks the layers the way Keras would and returns, per layer, the output shape,
the trainable and non-trainable parameter counts, the FLOPs per image (a multiply-add counts as
two) and the receptive field, plus every problem found. The rules behind the problems (parameter
ranges, layer order, output and loss, budget) are `checks`. It never imports TensorFlow, so the
Model page can call it on every edit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cnnlab.errors import ArchitectureError, SpecError
from cnnlab.model import backbones, catalogue, checks
from cnnlab.model.backbones import BACKBONES
from cnnlab.model.checks import Budget, Problem, Shape
from cnnlab.model.parameters import as_pair
from cnnlab.specs import LayerSpec, ModelSpec

BYTES_PER_FLOAT = 4
# The ((kernel height, kernel width), (stride height, stride width)) a layer adds to the receptive field.
Window = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class LayerRow:
    """What one layer does to the tensor, as Keras would report it."""

    index: int
    name: str
    type: str
    description: str
    output_shape: Shape
    trainable_parameters: int
    non_trainable_parameters: int
    flops: int
    receptive_field: tuple[int, int] | None

    @property
    def parameters(self) -> int:
        """Trainable plus non-trainable parameters."""
        return self.trainable_parameters + self.non_trainable_parameters


@dataclass(frozen=True)
class Analysis:
    """The result of `analyse`: rows for the layers that could be inferred, and every problem."""

    spec: ModelSpec
    rows: tuple[LayerRow, ...]
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that stop the model from being built or trained."""
        return tuple(problem for problem in self.problems if problem.severity == "error")

    @property
    def trainable_parameters(self) -> int:
        """Sum of trainable parameters."""
        return sum(row.trainable_parameters for row in self.rows)

    @property
    def non_trainable_parameters(self) -> int:
        """Sum of non-trainable parameters (batch-norm statistics, frozen layers)."""
        return sum(row.non_trainable_parameters for row in self.rows)

    @property
    def total_parameters(self) -> int:
        """All parameters, as Keras's `count_params()`."""
        return self.trainable_parameters + self.non_trainable_parameters

    @property
    def flops(self) -> int:
        """FLOPs for one image through the whole model."""
        return sum(row.flops for row in self.rows)

    @property
    def output_shape(self) -> Shape:
        """The shape the model outputs (without the batch axis)."""
        return self.rows[-1].output_shape if self.rows else tuple(self.spec.input_shape)

    def activation_bytes(self, batch_size: int = 1) -> int:
        """Memory of all layer outputs for one forward pass of `batch_size` images, as float32."""
        elements = math.prod(self.spec.input_shape) + sum(math.prod(row.output_shape) for row in self.rows)
        return elements * BYTES_PER_FLOAT * batch_size

    def raise_for_errors(self) -> Analysis:
        """Raise ArchitectureError listing every error; return self when there is none."""
        if self.errors:
            raise ArchitectureError("\n".join(problem.message for problem in self.errors), self.errors)
        return self


def _window_output(size: int, window: int, stride: int, padding: str) -> int:
    """Keras's output length along one axis for a sliding window."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def snake_case(class_name: str) -> str:
    """Keras's snake_case of a class name: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    text = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", text).lower()


def layer_names(spec: ModelSpec) -> list[str]:
    """Readable, unique Keras layer names: the given `name`, else e.g. conv2d_1, dense_2."""
    counters: dict[str, int] = {}
    names = []
    for layer in spec.layers:
        base = snake_case(layer.type)
        counters[base] = counters.get(base, 0) + 1
        names.append(str(layer.get("name") or f"{base}_{counters[base]}"))
    return names


class _LayerFailure(Exception):
    """Raised inside inference when a layer cannot take its input; carries the message."""


def _infer_layer(position: int, layer: LayerSpec, shape: Shape) -> tuple[Shape, int, int, int, Window | None]:
    """Output shape, trainable and non-trainable parameters, FLOPs and (kernel, stride) pairs.

    Returns (shape, trainable, non_trainable, flops, window) where window is the
    ((kernel_h, kernel_w), (stride_h, stride_w)) the layer adds to the receptive field, flattened
    into a tuple of two pairs, or None when the layer sees its whole input.
    """
    params = catalogue.resolved_params(layer.type, layer.params)
    where = f"Layer {position} ({catalogue.describe(layer)})"
    kind = layer.type
    order_problem = checks.layer_order_problem(position, layer, shape)
    if order_problem is not None:
        raise _LayerFailure(order_problem)
    if kind in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D"):
        height, width, channels = shape
        pooling = kind.endswith("Pooling2D")
        kernel = as_pair(params["pool_size"] if pooling else params["kernel_size"])
        stride_value = params["strides"]
        strides = as_pair(kernel if pooling and stride_value is None else stride_value)
        padding = params["padding"]
        noun = "pool window" if pooling else "kernel"
        if kernel[0] > height or kernel[1] > width:
            outcome = (
                f"would output {_window_output(height, kernel[0], strides[0], 'valid')}x"
                f"{_window_output(width, kernel[1], strides[1], 'valid')}"
                if padding == "valid"
                else "would mostly see zero padding"
            )
            raise _LayerFailure(
                f"{where} has a {height}x{width} input, smaller than its {kernel[0]}x{kernel[1]} {noun}, "
                f"and {outcome}. Use a {noun} of at most {min(height, width)}, or remove a pooling or "
                "strided layer before it."
            )
        out_height = _window_output(height, kernel[0], strides[0], padding)
        out_width = _window_output(width, kernel[1], strides[1], padding)
        if out_height <= 0 or out_width <= 0:
            raise _LayerFailure(
                f"{where} has a {height}x{width} input and would output {out_height}x{out_width}. "
                "Use padding='same' or remove a pooling layer before it."
            )
        positions = out_height * out_width
        window = kernel[0] * kernel[1]
        bias = 1 if params.get("use_bias", True) else 0
        if pooling:
            return (out_height, out_width, channels), 0, 0, positions * channels * window, (kernel, strides)
        if kind == "Conv2D":
            filters = params["filters"]
            weights = window * channels * filters + bias * filters
            return (
                (out_height, out_width, filters),
                weights,
                0,
                2 * positions * window * channels * filters,
                (kernel, strides),
            )
        multiplier = params["depth_multiplier"]
        depthwise = window * channels * multiplier
        if kind == "DepthwiseConv2D":
            outputs = channels * multiplier
            return (
                (out_height, out_width, outputs),
                depthwise + bias * outputs,
                0,
                2 * positions * depthwise,
                (kernel, strides),
            )
        filters = params["filters"]
        pointwise = channels * multiplier * filters
        flops = 2 * positions * (depthwise + pointwise)
        return (
            (out_height, out_width, filters),
            depthwise + pointwise + bias * filters,
            0,
            flops,
            (kernel, strides),
        )
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return (shape[2],), 0, 0, math.prod(shape), None
    if kind == "BatchNormalization":
        channels = shape[-1]
        return shape, 2 * channels, 2 * channels, 2 * math.prod(shape), ((1, 1), (1, 1))
    if kind in ("Dropout", "SpatialDropout2D", "Activation") or kind.startswith("Random"):
        flops = math.prod(shape) if kind == "Activation" else 0
        return shape, 0, 0, flops, ((1, 1), (1, 1))
    if kind == "Flatten":
        return (math.prod(shape),), 0, 0, 0, None
    if kind == "Dense":
        units = params["units"]
        inputs = shape[0]
        bias = 1 if params.get("use_bias", True) else 0
        return (units,), inputs * units + bias * units, 0, 2 * inputs * units, None
    if kind in BACKBONES:
        return _infer_backbone(kind, params, shape)
    raise _LayerFailure(f"{where}: no shape rule for {kind}.")


def _infer_backbone(kind: str, params: dict, shape: Shape) -> tuple[Shape, int, int, int, None]:
    """Output shape, parameters and FLOPs of a pretrained backbone, from its measured facts."""
    height, width, _ = shape
    backbone = BACKBONES[kind]
    rounding = math.floor if backbone.rounding == "floor" else math.ceil
    for _ in range(5):
        height, width = rounding(height / 2), rounding(width / 2)
    output: Shape = (
        (backbone.output_channels,) if params.get("pooling") else (height, width, backbone.output_channels)
    )
    flops = int(backbone.gigaflops_at_224 * 1e9 * shape[0] * shape[1] / (224 * 224))
    total = backbone.trainable_parameters + backbone.non_trainable_parameters
    if params.get("trainable"):
        return output, backbone.trainable_parameters, backbone.non_trainable_parameters, flops, None
    if params.get("fine_tune_layers"):
        trainable, frozen = backbones.fine_tuned_parameters(
            kind, int(params["fine_tune_layers"]), pooled=bool(params.get("pooling"))
        )
        return output, trainable, frozen, flops, None
    return output, 0, total, flops, None


def _receptive_field(
    current: tuple[int, int], jump: tuple[int, int], window: Window
) -> tuple[tuple[int, int], tuple[int, int]]:
    (kernel_h, kernel_w), (stride_h, stride_w) = window
    field_size = (current[0] + (kernel_h - 1) * jump[0], current[1] + (kernel_w - 1) * jump[1])
    return field_size, (jump[0] * stride_h, jump[1] * stride_w)


def analyse(
    spec: ModelSpec,
    *,
    num_classes: int | None = None,
    dataset_input_shape: Sequence[int] | None = None,
    budget: Budget | None = None,
) -> Analysis:
    """Infer every layer's output and cost, and collect every problem with its fix.

    With `num_classes`, the last layer is checked against the dataset's classes and the loss CNN
    Lab uses (softmax with sparse categorical cross-entropy, or one sigmoid unit for two classes).
    With `dataset_input_shape`, the model's input must match it. With `budget`, parameters and
    activation memory are checked against it.
    """
    problems: list[Problem] = []
    if dataset_input_shape is not None:
        problems.extend(checks.input_problems(spec, dataset_input_shape))
    for position, layer in enumerate(spec.layers, 1):
        try:
            catalogue.layer_type(layer.type)
        except SpecError as error:
            problems.append(Problem(position, f"Layer {position}: {error}"))
            return Analysis(spec, (), tuple(problems))
        problems.extend(checks.parameter_problems(position, layer))
    if problems and any(problem.layer not in (0, None) for problem in problems):
        return Analysis(spec, (), tuple(problems))

    rows: list[LayerRow] = []
    shape: Shape = tuple(spec.input_shape)
    field_size, jump = (1, 1), (1, 1)
    for position, (layer, name) in enumerate(zip(spec.layers, layer_names(spec), strict=True), 1):
        try:
            output, trainable, non_trainable, flops, window = _infer_layer(position, layer, shape)
        except _LayerFailure as failure:
            problems.append(Problem(position, str(failure)))
            break
        if layer.type in BACKBONES:
            for kernel, stride in BACKBONES[layer.type].path:
                field_size, jump = _receptive_field(field_size, jump, ((kernel, kernel), (stride, stride)))
        elif window is not None:
            field_size, jump = _receptive_field(field_size, jump, window)
        receptive = field_size if len(output) == 3 else None
        rows.append(
            LayerRow(
                position,
                name,
                layer.type,
                catalogue.describe(layer),
                output,
                trainable,
                non_trainable,
                flops,
                receptive,
            )
        )
        shape = output
    analysis = Analysis(spec, tuple(rows), tuple(problems))
    if analysis.errors:
        return analysis
    if num_classes is not None:
        problems.extend(checks.output_problems(spec, analysis.output_shape, num_classes))
    if budget is not None:
        problems.extend(
            checks.budget_problems(
                analysis.total_parameters, analysis.activation_bytes(budget.batch_size), budget
            )
        )
    return Analysis(spec, tuple(rows), tuple(problems))


def loss_for(spec: ModelSpec) -> str:
    """The Keras loss CNN Lab trains this model with, read from its output layer."""
    return checks.loss_name(checks.output_activation(spec), analyse(spec).output_shape)


def check(
    spec: ModelSpec,
    *,
    num_classes: int | None = None,
    dataset_input_shape: Sequence[int] | None = None,
    budget: Budget | None = None,
) -> Analysis:
    """`analyse`, raising ArchitectureError when there is any error."""
    return analyse(
        spec, num_classes=num_classes, dataset_input_shape=dataset_input_shape, budget=budget
    ).raise_for_errors()
