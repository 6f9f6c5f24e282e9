"""The catalogue: every required layer type, with parameters, ranges and help text."""

import pytest

from cnnlab.errors import SpecError
from cnnlab.model import catalogue

REQUIRED = [
    "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "BatchNormalization", "Dropout", "SpatialDropout2D",
    "Flatten", "Dense", "Activation", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
    "RandomContrast", "RandomShear", "MobileNetV2", "EfficientNetB0", "ResNet50", "VGG16",
]  # fmt: skip


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_type_is_documented(name: str) -> None:
    entry = catalogue.layer_type(name)
    assert entry.summary.endswith(".")
    for parameter in entry.parameters:
        assert parameter.help, f"{name}.{parameter.name} has no help text"
        assert parameter.kind in catalogue.KINDS
        assert catalogue.check_value(parameter, parameter.initial) is None, (name, parameter.name)


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
        assert catalogue.check_value(parameter, {"l1": 0.0, "l2": 1e-4}) is None
        assert "non-negative" in catalogue.check_value(parameter, {"l2": -1.0})


def test_backbones_offer_weights_and_freezing() -> None:
    entry = catalogue.layer_type("VGG16")
    assert entry.backbone
    assert set(entry.parameter("weights").choices) == {"imagenet", None}
    assert entry.parameter("trainable").default is False


def test_ranges_are_enforced() -> None:
    rate = catalogue.layer_type("Dropout").parameter("rate")
    assert catalogue.check_value(rate, 0.0) is None
    assert catalogue.check_value(rate, 1.0) == "must be below 1"
    kernel = catalogue.layer_type("Conv2D").parameter("kernel_size")
    assert catalogue.check_value(kernel, [3, 5]) is None
    assert catalogue.check_value(kernel, 0) == "must be at least 1"
    assert "pair" in catalogue.check_value(kernel, "3")


def test_unknown_type_suggests_the_nearest() -> None:
    with pytest.raises(SpecError, match="Did you mean Conv2D"):
        catalogue.layer_type("Conv2d")
