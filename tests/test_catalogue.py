"""The catalogue: every required layer type, with parameters, ranges and help text."""

import pytest

from cnnlab.errors import SpecError
from cnnlab.model import backbones, catalogue, parameters
from cnnlab.specs import LayerSpec

REQUIRED = [
    "Conv2D",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "BatchNormalization",
    "Dropout",
    "SpatialDropout2D",
    "Flatten",
    "Dense",
    "Activation",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomShear",
    "MobileNetV2",
    "EfficientNetB0",
    "ResNet50",
    "VGG16",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_type_is_documented(name: str) -> None:
    entry = catalogue.layer_type(name)
    assert entry.summary.endswith(".")
    assert entry.category in catalogue.CATEGORIES
    for parameter in entry.parameters:
        assert parameter.help, f"{name}.{parameter.name} has no help text"
        assert parameter.kind in parameters.KINDS
        assert parameters.check_value(parameter, parameter.initial) is None, (name, parameter.name)


def test_every_backbone_with_facts_is_in_the_catalogue() -> None:
    listed = {name for name, entry in catalogue.LAYER_TYPES.items() if entry.backbone}
    assert listed == set(backbones.BACKBONES)


def test_activation_choices_are_the_issue_list() -> None:
    choices = catalogue.layer_type("Activation").parameter("activation").choices
    assert set(choices) == {
        "relu",
        "leaky_relu",
        "elu",
        "gelu",
        "swish",
        "sigmoid",
        "tanh",
        "softmax",
        "linear",
    }


def test_regularisers_on_conv_and_dense() -> None:
    for name in ("Conv2D", "Dense"):
        parameter = catalogue.layer_type(name).parameter("kernel_regularizer")
        assert parameters.check_value(parameter, {"l1": 0.0, "l2": 1e-4}) is None
        assert "non-negative" in (parameters.check_value(parameter, {"l2": -1.0}) or "")
        assert "object like" in (parameters.check_value(parameter, {"l3": 1.0}) or "")


def test_backbones_offer_weights_and_freezing() -> None:
    entry = catalogue.layer_type("VGG16")
    assert entry.backbone
    assert set(entry.parameter("weights").choices) == {"imagenet", None}
    assert entry.parameter("trainable").default is False


def test_ranges_are_enforced() -> None:
    rate = catalogue.layer_type("Dropout").parameter("rate")
    assert parameters.check_value(rate, 0.0) is None
    assert parameters.check_value(rate, 1.0) == "must be below 1"
    assert parameters.check_value(rate, None) == "is required"
    kernel = catalogue.layer_type("Conv2D").parameter("kernel_size")
    assert parameters.check_value(kernel, [3, 5]) is None
    assert parameters.check_value(kernel, 0) == "must be at least 1"
    assert parameters.check_value(kernel, 16) == "must be at most 15"
    assert "pair" in (parameters.check_value(kernel, "3") or "")
    filters = catalogue.layer_type("Conv2D").parameter("filters")
    assert parameters.check_value(filters, 2.5) == "must be a whole number"
    assert parameters.check_value(filters, True) == "must be a whole number"


def test_unknown_type_suggests_the_nearest() -> None:
    with pytest.raises(SpecError, match="Did you mean Conv2D"):
        catalogue.layer_type("Conv2d")


def test_unknown_parameter_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match="its parameters are: rate"):
        catalogue.layer_type("Dropout").parameter("ratio")


def test_resolved_params_fill_in_keras_defaults() -> None:
    resolved = catalogue.resolved_params("Conv2D", {"filters": 8, "kernel_size": 3, "name": "edges"})
    assert resolved["padding"] == "valid" and resolved["strides"] == 1 and resolved["activation"] == "linear"
    assert "name" not in resolved


@pytest.mark.parametrize(
    ("layer", "text"),
    [
        (
            LayerSpec("Conv2D", {"filters": 8, "kernel_size": [3, 5], "strides": 2}),
            "Conv2D 3x5, strides=2, padding='valid'",
        ),
        (LayerSpec("MaxPooling2D", {}), "MaxPooling2D 2x2"),
        (LayerSpec("Dense", {"units": 10, "activation": "softmax"}), "Dense 10, softmax"),
        (LayerSpec("Dense", {"units": 4}), "Dense 4, linear"),
        (LayerSpec("Dropout", {"rate": 0.25}), "Dropout 0.25"),
        (LayerSpec("Flatten", {}), "Flatten"),
    ],
)
def test_describe(layer: LayerSpec, text: str) -> None:
    assert catalogue.describe(layer) == text


def test_as_pair() -> None:
    assert parameters.as_pair(3) == (3, 3)
    assert parameters.as_pair([2, 5]) == (2, 5)
