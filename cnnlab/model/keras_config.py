"""What a spec and its settings become in Keras, described as class names and arguments.

`build` and `training` turn these descriptions into Keras objects; `codegen` writes them out as
Python source. Keeping the mapping here, in pure Python, is what makes the exported script build,
compile and train exactly the model the app trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cnnlab.model import catalogue, shapes
from cnnlab.specs import AugmentationSettings, LayerSpec, ModelSpec, TrainingSettings

# Which constructor arguments hold kernel regularisers, per layer type.
REGULARIZER_ARGUMENTS = {
    "Conv2D": ("kernel_regularizer",),
    "Dense": ("kernel_regularizer",),
    "SeparableConv2D": ("depthwise_regularizer", "pointwise_regularizer"),
    "DepthwiseConv2D": ("depthwise_regularizer",),
}


@dataclass(frozen=True)
class KerasCall:
    """One Keras constructor call: `module.class_name(**arguments)`.

    Regulariser arguments stay as {"l1": ..., "l2": ...} mappings; sizes are tuples. For a
    backbone, `module` is "applications" and `trainable` says whether its weights train.
    """

    module: str
    class_name: str
    arguments: dict[str, Any]
    trainable: bool = True
    fine_tune_layers: int = 0  # of a frozen backbone, how many last layers train all the same


def augmentation_layers(augmentation: AugmentationSettings) -> list[LayerSpec]:
    """The Keras `Random*` layers for the augmentation settings, in a sensible order."""
    layers = []
    if augmentation.flip != "none":
        layers.append(LayerSpec("RandomFlip", {"mode": augmentation.flip}))
    if augmentation.rotation:
        layers.append(LayerSpec("RandomRotation", {"factor": augmentation.rotation}))
    if augmentation.zoom:
        layers.append(LayerSpec("RandomZoom", {"height_factor": augmentation.zoom}))
    if augmentation.translation:
        layers.append(
            LayerSpec(
                "RandomTranslation",
                {"height_factor": augmentation.translation, "width_factor": augmentation.translation},
            )
        )
    if augmentation.shear:
        layers.append(
            LayerSpec("RandomShear", {"x_factor": augmentation.shear, "y_factor": augmentation.shear})
        )
    if augmentation.contrast:
        layers.append(LayerSpec("RandomContrast", {"factor": augmentation.contrast}))
    return layers


def training_spec(spec: ModelSpec, settings: TrainingSettings | None) -> ModelSpec:
    """The spec as trained: augmentation layers first, and the global L2 on every bare kernel."""
    if settings is None:
        return spec
    layers = list(spec.layers)
    if settings.l2:
        for position, layer in enumerate(layers):
            for argument in REGULARIZER_ARGUMENTS.get(layer.type, ()):
                if layer.get(argument) is None:
                    layer = layer.with_params(**{argument: {"l2": settings.l2}})
            layers[position] = layer
    return spec.replace_layers(augmentation_layers(settings.augmentation) + layers)


def layer_calls(spec: ModelSpec) -> list[KerasCall]:
    """The Keras constructor call of every layer, with readable names and shapes for backbones."""
    analysis = shapes.analyse(spec).raise_for_errors()
    inputs = [tuple(spec.input_shape)] + [row.output_shape for row in analysis.rows]
    calls = []
    for layer, name, input_shape in zip(spec.layers, shapes.layer_names(spec), inputs, strict=False):
        entry = catalogue.layer_type(layer.type)
        if entry.backbone:
            arguments = {
                "include_top": False,
                "weights": layer.get("weights", "imagenet"),
                "input_shape": input_shape,
                "pooling": layer.get("pooling"),
                "name": name,
            }
            trainable = bool(layer.get("trainable", False))
            fine_tune = 0 if trainable else int(layer.get("fine_tune_layers") or 0)
            calls.append(KerasCall("applications", layer.type, arguments, trainable, fine_tune))
            continue
        arguments = {
            key: _tupled(value) for key, value in layer.params.items() if key != "name" and value is not None
        }
        arguments.update(entry.fixed)
        arguments["name"] = name
        calls.append(KerasCall("layers", layer.type, arguments))
    return calls


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def optimizer_call(settings: TrainingSettings) -> KerasCall:
    """The optimizer with its learning rate and the arguments that belong to it."""
    arguments: dict[str, Any] = {"learning_rate": settings.learning_rate}
    if settings.optimizer == "sgd":
        arguments.update(momentum=settings.momentum, nesterov=settings.nesterov)
        return KerasCall("optimizers", "SGD", arguments)
    if settings.optimizer == "adamw":
        arguments.update(weight_decay=settings.weight_decay)
        return KerasCall("optimizers", "AdamW", arguments)
    if settings.optimizer == "rmsprop":
        return KerasCall("optimizers", "RMSprop", arguments)
    return KerasCall("optimizers", "Adam", arguments)


def learning_rate_at(settings: TrainingSettings, epoch: int) -> float:
    """The scheduled learning rate for 0-based `epoch` (plateau and constant: the initial rate)."""
    initial = settings.learning_rate
    if settings.schedule == "step":
        return initial * settings.schedule_decay_rate ** (epoch // max(1, settings.schedule_step_epochs))
    if settings.schedule == "exponential":
        return initial * settings.schedule_decay_rate**epoch
    if settings.schedule == "cosine":
        minimum = min(settings.minimum_learning_rate, initial)
        progress = epoch / max(1, settings.epochs)
        return minimum + (initial - minimum) * 0.5 * (1 + math.cos(math.pi * progress))
    return initial


def learning_rate_expression(settings: TrainingSettings) -> str | None:
    """`learning_rate_at` as a Python expression of `epoch`, for exported code; None if constant."""
    initial = repr(settings.learning_rate)
    if settings.schedule == "step":
        step = max(1, settings.schedule_step_epochs)
        return f"{initial} * {settings.schedule_decay_rate!r} ** (epoch // {step})"
    if settings.schedule == "exponential":
        return f"{initial} * {settings.schedule_decay_rate!r} ** epoch"
    if settings.schedule == "cosine":
        minimum = repr(min(settings.minimum_learning_rate, settings.learning_rate))
        return (
            f"{minimum} + ({initial} - {minimum}) * 0.5 * "
            f"(1 + math.cos(math.pi * epoch / {max(1, settings.epochs)}))"
        )
    return None


def callback_calls(settings: TrainingSettings) -> list[KerasCall]:
    """Early stopping and the learning-rate schedule as Keras callbacks.

    A per-epoch schedule becomes `LearningRateScheduler` over `learning_rate_at`; it is listed
    with the argument "schedule": None, which the builder of the callbacks fills in.
    """
    calls = []
    if settings.schedule == "plateau":
        calls.append(
            KerasCall(
                "callbacks",
                "ReduceLROnPlateau",
                {
                    "monitor": "val_loss",
                    "factor": settings.plateau_factor,
                    "patience": settings.plateau_patience,
                    "min_lr": settings.minimum_learning_rate,
                },
            )
        )
    elif settings.schedule != "constant":
        calls.append(KerasCall("callbacks", "LearningRateScheduler", {"schedule": None}))
    if settings.early_stopping:
        calls.append(
            KerasCall(
                "callbacks",
                "EarlyStopping",
                {
                    "monitor": settings.early_stopping_monitor,
                    "patience": settings.early_stopping_patience,
                    "restore_best_weights": settings.restore_best_weights,
                },
            )
        )
    return calls
