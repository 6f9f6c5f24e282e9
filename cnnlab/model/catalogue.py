"""The supported layer types: Keras class, parameters, defaults, ranges and help text.

This is the one catalogue that validation (`checks`, `shapes`), the Model page's forms, the Keras
builder (`build`) and code export (`codegen`) all read. A parameter's `default` is what Keras uses
when the argument is left out; `suggested` is what a newly added layer starts with. What a
parameter is and which values it accepts is `parameters`; the pretrained backbones' entries come
from `backbones`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from cnnlab.errors import SpecError
from cnnlab.model import backbones
from cnnlab.model.parameters import LayerType, Parameter, as_pair
from cnnlab.specs import LayerSpec

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "swish", "sigmoid", "tanh", "softmax", "linear")
PADDINGS = ("valid", "same")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _activation(suggested: str | None = None, required: bool = False) -> Parameter:
    return Parameter(
        "activation",
        "choice",
        "linear",
        "The function applied to each output. relu keeps positives and zeroes negatives; "
        "softmax turns the last layer's scores into class probabilities.",
        suggested=suggested,
        choices=ACTIVATIONS,
        required=required,
    )


def _size(
    name: str, default: Any, help_text: str, maximum: int, suggested: Any = None, required: bool = False
) -> Parameter:
    return Parameter(
        name, "size", default, help_text, suggested=suggested, minimum=1, maximum=maximum, required=required
    )


def _regularizer(name: str, what: str) -> Parameter:
    return Parameter(
        name,
        "regularizer",
        None,
        f"L1/L2 penalty on the {what}, added to the loss to keep weights small and reduce "
        'overfitting, e.g. {"l2": 0.0001}.',
    )


_FILTERS = Parameter(
    "filters",
    "int",
    None,
    "How many different patterns (feature maps) this layer learns to detect.",
    suggested=32,
    minimum=1,
    maximum=2048,
    required=True,
)
_KERNEL = _size(
    "kernel_size",
    None,
    "Height and width of the sliding window each filter looks through.",
    15,
    3,
    required=True,  # Keras's convolution layers have no default kernel size.
)
_STRIDES = _size("strides", 1, "How many pixels the window moves each step; 2 halves the output size.", 8)
_PADDING = Parameter(
    "padding",
    "choice",
    "valid",
    "valid: no border, the output shrinks; same: a zero border keeps the size (at stride 1).",
    choices=PADDINGS,
)
_USE_BIAS = Parameter("use_bias", "bool", True, "Add a learned constant to each output.")
_DEPTH_MULTIPLIER = Parameter(
    "depth_multiplier",
    "int",
    1,
    "How many filters each input channel gets in the depthwise step.",
    minimum=1,
    maximum=16,
)
_POOL_SIZE = _size("pool_size", 2, "The window summarised into one value; 2 halves height and width.", 8)
_POOL_STRIDES = _size("strides", None, "How far the window moves; empty means the pool size.", 8)
_RATE = Parameter(
    "rate",
    "float",
    None,
    "Fraction of values set to zero at random during training, to reduce overfitting.",
    suggested=0.5,
    minimum=0.0,
    maximum=1.0,
    exclusive_maximum=True,
    required=True,
)


def _factor(name: str, help_text: str, suggested: float | None, required: bool = True) -> Parameter:
    return Parameter(
        name,
        "float",
        None,
        help_text,
        suggested=suggested,
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
        required=required,
    )


LAYER_TYPES: dict[str, LayerType] = {
    layer_type.name: layer_type
    for layer_type in (
        LayerType(
            "Conv2D",
            "convolution",
            "Slides small learned filters over the image; each filter detects one pattern, such as an edge.",
            (
                _FILTERS,
                _KERNEL,
                _STRIDES,
                _PADDING,
                _activation("relu"),
                _USE_BIAS,
                _regularizer("kernel_regularizer", "filter weights"),
            ),
        ),
        LayerType(
            "SeparableConv2D",
            "convolution",
            "A cheaper convolution: filters each channel on its own, then mixes channels with 1x1 filters.",
            (
                _FILTERS,
                _KERNEL,
                _STRIDES,
                _PADDING,
                _DEPTH_MULTIPLIER,
                _activation("relu"),
                _USE_BIAS,
                _regularizer("depthwise_regularizer", "per-channel filter weights"),
                _regularizer("pointwise_regularizer", "1x1 mixing weights"),
            ),
        ),
        LayerType(
            "DepthwiseConv2D",
            "convolution",
            "Filters each input channel separately, without mixing channels.",
            (
                _KERNEL,
                _STRIDES,
                _PADDING,
                _DEPTH_MULTIPLIER,
                _activation("relu"),
                _USE_BIAS,
                _regularizer("depthwise_regularizer", "per-channel filter weights"),
            ),
        ),
        LayerType(
            "MaxPooling2D",
            "pooling",
            "Keeps the largest value in each window: shrinks the map and keeps the strongest responses.",
            (_POOL_SIZE, _POOL_STRIDES, _PADDING),
        ),
        LayerType(
            "AveragePooling2D",
            "pooling",
            "Averages each window: shrinks the map smoothly.",
            (_POOL_SIZE, _POOL_STRIDES, _PADDING),
        ),
        LayerType(
            "GlobalAveragePooling2D",
            "pooling",
            "Averages each whole feature map to one number: a light alternative to Flatten.",
        ),
        LayerType(
            "GlobalMaxPooling2D",
            "pooling",
            "Keeps the largest value of each whole feature map: one number per channel.",
        ),
        LayerType(
            "BatchNormalization",
            "normalisation",
            "Rescales each channel to a steady mean and spread per batch, which speeds up and stabilises training.",
            (
                Parameter(
                    "momentum",
                    "float",
                    0.99,
                    "How slowly the running mean and variance follow each new batch.",
                    minimum=0.0,
                    maximum=1.0,
                    exclusive_maximum=True,
                ),
                Parameter(
                    "epsilon",
                    "float",
                    0.001,
                    "A small number added to the variance to avoid dividing by zero.",
                    minimum=1e-6,
                    maximum=1.0,
                ),
            ),
        ),
        LayerType(
            "Dropout",
            "regularisation",
            "Switches off random values while training to reduce overfitting.",
            (_RATE,),
        ),
        LayerType(
            "SpatialDropout2D",
            "regularisation",
            "Switches off whole random feature maps while training: dropout suited to convolutions.",
            (_RATE,),
        ),
        LayerType("Flatten", "reshape", "Unrolls the feature maps into one long vector for Dense layers."),
        LayerType(
            "Dense",
            "dense",
            "A fully connected layer: every output looks at every input value.",
            (
                Parameter(
                    "units",
                    "int",
                    None,
                    "How many outputs (neurons); the last layer needs one per class.",
                    suggested=64,
                    minimum=1,
                    maximum=8192,
                    required=True,
                ),
                _activation("relu"),
                _USE_BIAS,
                _regularizer("kernel_regularizer", "weights"),
            ),
        ),
        LayerType(
            "Activation",
            "activation",
            "Applies a function to every value, e.g. relu sets negatives to zero.",
            (_activation("relu", required=True),),
        ),
        LayerType(
            "RandomFlip",
            "augmentation",
            "Augmentation: mirrors training images at random (inactive when predicting).",
            (
                Parameter(
                    "mode",
                    "choice",
                    "horizontal_and_vertical",
                    "Which mirrorings to apply; digits should only be flipped if the task allows it.",
                    suggested="horizontal",
                    choices=FLIP_MODES,
                ),
            ),
        ),
        LayerType(
            "RandomRotation",
            "augmentation",
            "Augmentation: rotates training images by a random angle (inactive when predicting).",
            (
                _factor(
                    "factor", "Largest rotation as a fraction of a full turn; 0.05 is about 18 degrees.", 0.05
                ),
            ),
        ),
        LayerType(
            "RandomZoom",
            "augmentation",
            "Augmentation: zooms training images in or out at random (inactive when predicting).",
            (
                _factor("height_factor", "Largest zoom as a fraction of the height.", 0.1),
                _factor(
                    "width_factor",
                    "Largest zoom as a fraction of the width; empty: same as height.",
                    None,
                    False,
                ),
            ),
        ),
        LayerType(
            "RandomTranslation",
            "augmentation",
            "Augmentation: shifts training images up, down, left or right at random (inactive when predicting).",
            (
                _factor("height_factor", "Largest vertical shift as a fraction of the height.", 0.1),
                _factor("width_factor", "Largest horizontal shift as a fraction of the width.", 0.1),
            ),
        ),
        LayerType(
            "RandomShear",
            "augmentation",
            "Augmentation: slants training images sideways or up and down at random (inactive when predicting).",
            (
                _factor("x_factor", "Largest horizontal slant as a fraction (0.2 is about 11 degrees).", 0.1),
                _factor("y_factor", "Largest vertical slant as a fraction.", 0.1),
            ),
        ),
        LayerType(
            "RandomContrast",
            "augmentation",
            "Augmentation: changes the contrast of training images at random (inactive when predicting).",
            (_factor("factor", "Largest contrast change as a fraction.", 0.2),),
            # CNN Lab feeds images scaled to [0, 1], so results are clipped to that range.
            fixed={"value_range": (0.0, 1.0)},
        ),
        *backbones.LAYER_TYPES,
    )
}

CATEGORIES = (
    "convolution",
    "pooling",
    "normalisation",
    "regularisation",
    "reshape",
    "dense",
    "activation",
    "augmentation",
    "backbone",
)


def layer_type(name: str) -> LayerType:
    """The catalogue entry for Keras class `name`; SpecError with suggestions if unsupported."""
    if name in LAYER_TYPES:
        return LAYER_TYPES[name]
    close = difflib.get_close_matches(name, list(LAYER_TYPES), n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise SpecError(f"Unsupported layer type {name!r}.{hint} Supported types: {', '.join(LAYER_TYPES)}.")


def resolved_params(layer_type_name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of the type: the given values, else Keras's defaults."""
    entry = layer_type(layer_type_name)
    values = {item.name: item.default for item in entry.parameters}
    values.update({key: value for key, value in params.items() if key != "name"})
    if values.get("activation") is None and any(item.name == "activation" for item in entry.parameters):
        values["activation"] = "linear"
    return values


def _size_text(name: str, value: Any) -> str:
    """A size argument as "HxW"; a value that is none (a layer described while its check says what is
    wrong with it, such as a link's `"pool_size": null`) as `name=value`."""
    try:
        height, width = as_pair(value)
    except (TypeError, ValueError, IndexError, KeyError):
        return f"{name}={value!r}"
    return f"{height}x{width}"


def describe(layer: LayerSpec) -> str:
    """A short human description, e.g. "Conv2D 3x3, padding='valid'" or "Dense 10, softmax"."""
    params = layer.params
    if layer.type in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D"):
        kernel = params.get("kernel_size")
        text = layer.type
        if kernel is not None:
            text += f" {_size_text('kernel_size', kernel)}"
        strides = params.get("strides", 1)
        if strides not in (1, (1, 1)):
            text += f", strides={strides}"
        return text + f", padding={params.get('padding', 'valid')!r}"
    if layer.type in ("MaxPooling2D", "AveragePooling2D"):
        return f"{layer.type} {_size_text('pool_size', params.get('pool_size', 2))}"
    if layer.type == "Dense":
        return f"Dense {params.get('units')}, {params.get('activation') or 'linear'}"
    if layer.type in ("Dropout", "SpatialDropout2D"):
        return f"{layer.type} {params.get('rate')}"
    if layer.type == "Activation":
        return f"Activation {params.get('activation')}"
    return layer.type
