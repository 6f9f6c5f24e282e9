"""The model rules: each problem names its layer, the value received and the fix."""

import pytest

from cnnlab.errors import ArchitectureError
from cnnlab.model import checks, presets, shapes
from cnnlab.specs import LayerSpec, ModelSpec


def spec_of(input_shape: list[int], *layers: dict) -> ModelSpec:
    return ModelSpec.from_dict({"input_shape": input_shape, "layers": list(layers)})


CONV3 = {"type": "Conv2D", "filters": 4, "kernel_size": 3}
FLATTEN = {"type": "Flatten"}
SOFTMAX10 = {"type": "Dense", "units": 10, "activation": "softmax"}


def only_error(analysis: shapes.Analysis) -> checks.Problem:
    assert len(analysis.errors) == 1, analysis.errors
    return analysis.errors[0]


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1])
def test_dropout_rate_outside_zero_one(rate: float) -> None:
    problem = only_error(
        shapes.analyse(spec_of([8, 8, 1], FLATTEN, {"type": "Dropout", "rate": rate}, SOFTMAX10))
    )
    assert problem.layer == 2
    assert f"rate={rate}" in problem.message
    assert "must be" in problem.message and "0.5" in problem.message


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        ({"type": "Conv2D", "filters": 0, "kernel_size": 3}, "filters"),
        ({"type": "Dense", "units": 0}, "units"),
    ],
)
def test_zero_filters_or_units(layer: dict, name: str) -> None:
    layers = [layer] if name == "filters" else [FLATTEN, layer]
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], *layers)))
    assert f"{name}=0" in problem.message and "has no outputs" in problem.message


def test_unknown_parameter_lists_the_known_ones() -> None:
    misspelled, missing = shapes.analyse(
        spec_of([8, 8, 1], {"type": "Conv2D", "filters": 4, "kernal_size": 3})
    ).errors
    assert "kernal_size" in misspelled.message and "kernel_size" in misspelled.message
    assert missing.message == "Layer 1 (Conv2D) needs kernel_size; for example 3."


def test_missing_required_parameter_gives_an_example() -> None:
    problems = checks.parameter_problems(3, LayerSpec("Conv2D", {"kernel_size": 3}))
    assert [problem.message for problem in problems] == ["Layer 3 (Conv2D) needs filters; for example 32."]


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"type": "Conv2D", "filters": 4}, "Layer 1 (Conv2D) needs kernel_size; for example 3."),
        (
            {"type": "MaxPooling2D", "pool_size": None},
            "Layer 1 (MaxPooling2D) has pool_size=None, which must be",
        ),
        (
            {"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": None},
            "Layer 1 (Conv2D) has strides=None",
        ),
    ],
)
def test_a_missing_or_null_window_size_is_a_problem_not_a_crash(layer: dict, message: str) -> None:
    """Keras has no default kernel size, and a null pool size or convolution stride is not a size."""
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], layer, FLATTEN, SOFTMAX10)))
    assert problem.layer == 1 and problem.message.startswith(message)


def test_unknown_layer_type_stops_the_analysis() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], FLATTEN, {"type": "Dense2D", "units": 3})))
    assert problem.layer == 2 and "Did you mean Dense" in problem.message


def test_dense_on_a_feature_map_says_what_keras_would_do() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], CONV3, SOFTMAX10)))
    assert problem.layer == 2
    assert "6x6x4" in problem.message
    assert "Keras would apply it to each of the 36 pixels" in problem.message
    assert "output 6x6x10" in problem.message
    assert "Add Flatten or GlobalAveragePooling2D before it" in problem.message


def test_conv_after_flatten_is_explained() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], FLATTEN, CONV3)))
    assert "vector of 64" in problem.message and "Move it before the Flatten" in problem.message


@pytest.mark.parametrize("kind", ["RandomFlip", "GlobalMaxPooling2D", "SpatialDropout2D", "VGG16"])
def test_image_layers_after_flatten(kind: str) -> None:
    layer = {"type": kind, **({"rate": 0.1} if kind == "SpatialDropout2D" else {})}
    problem = checks.layer_order_problem(2, LayerSpec.from_dict(layer), (64,))
    assert problem is not None and problem.startswith(f"Layer 2 ({kind}") and "vector of 64" in problem


def test_layers_in_order_have_no_problem() -> None:
    assert checks.layer_order_problem(1, LayerSpec("Dense", {"units": 3}), (12,)) is None
    assert checks.layer_order_problem(1, LayerSpec("Conv2D", {"filters": 3}), (8, 8, 1)) is None


def test_backbone_needs_colour_and_size() -> None:
    grey = only_error(shapes.analyse(spec_of([64, 64, 1], {"type": "MobileNetV2", "weights": None})))
    assert "3 channels but gets 1" in grey.message and "RGB" in grey.message
    small = only_error(shapes.analyse(spec_of([16, 16, 3], {"type": "ResNet50", "weights": None})))
    assert "at least 32x32" in small.message and "16x16" in small.message


def test_last_layer_width_must_match_classes() -> None:
    model = spec_of([8, 8, 1], FLATTEN, {"type": "Dense", "units": 7, "activation": "softmax"})
    problem = only_error(shapes.analyse(model, num_classes=10))
    assert problem.layer == 2
    assert "outputs 7 values but the dataset has 10 classes" in problem.message
    assert "units=10" in problem.message


def test_last_layer_needs_the_activation_the_loss_expects() -> None:
    model = spec_of([8, 8, 1], FLATTEN, {"type": "Dense", "units": 10})
    problem = only_error(shapes.analyse(model, num_classes=10))
    assert "'linear'" in problem.message and "softmax" in problem.message
    binary = spec_of([8, 8, 1], FLATTEN, {"type": "Dense", "units": 1, "activation": "sigmoid"})
    assert shapes.analyse(binary, num_classes=2).ok
    relu = spec_of([8, 8, 1], FLATTEN, {"type": "Dense", "units": 1, "activation": "relu"})
    assert "sigmoid" in only_error(shapes.analyse(relu, num_classes=2)).message


@pytest.mark.parametrize(
    ("last", "loss"),
    [
        ({"type": "Dense", "units": 1, "activation": "sigmoid"}, "binary_crossentropy"),
        ({"type": "Dense", "units": 2, "activation": "sigmoid"}, "sparse_categorical_crossentropy"),
        ({"type": "Dense", "units": 1, "activation": "relu"}, "sparse_categorical_crossentropy"),
        ({"type": "Dense", "units": 3, "activation": "softmax"}, "sparse_categorical_crossentropy"),
    ],
)
def test_loss_is_read_from_the_output_layer(last: dict, loss: str) -> None:
    assert shapes.loss_for(spec_of([8, 8, 1], FLATTEN, last, {"type": "Dropout", "rate": 0.1})) == loss


def test_output_activation_looks_past_dropout_only() -> None:
    dense = {"type": "Dense", "units": 3, "activation": "softmax"}
    assert checks.output_activation(spec_of([8, 8, 1], FLATTEN, dense, {"type": "Dropout", "rate": 0.1})) == (
        "softmax"
    )
    assert checks.output_activation(spec_of([8, 8, 1], FLATTEN, dense, FLATTEN)) == "linear"


def test_model_ending_in_a_feature_map() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], CONV3), num_classes=10))
    assert "6x6x4" in problem.message and "Dense(10, activation='softmax')" in problem.message


def test_input_shape_must_match_the_dataset() -> None:
    model = presets.get("mnist_minimal").spec
    problem = only_error(shapes.analyse(model, dataset_input_shape=(8, 8, 1), num_classes=10))
    assert problem.layer == 0
    assert "28x28x1" in problem.message and "8x8x1" in problem.message and "[8, 8, 1]" in problem.message
    assert checks.input_problems(model, (28, 28, 1)) == []


def test_budget_gives_the_numbers() -> None:
    model = presets.get("mnist_simple").spec
    analysis = shapes.analyse(model)
    budget = checks.Budget(
        max_parameters=analysis.total_parameters - 1, max_activation_megabytes=0.5, batch_size=64
    )
    messages = [problem.message for problem in shapes.analyse(model, budget=budget).errors]
    megabytes = analysis.activation_bytes(64) / 2**20
    assert any(
        f"{analysis.total_parameters:,} parameters" in message and f"{budget.max_parameters:,}" in message
        for message in messages
    )
    assert any(
        f"64 images needs {megabytes:,.0f} MB" in message and "0 MB" in message for message in messages
    )
    at_the_limit = checks.Budget(
        max_parameters=analysis.total_parameters, max_activation_megabytes=megabytes, batch_size=64
    )
    assert shapes.analyse(model, budget=at_the_limit).ok
    assert shapes.analyse(model, budget=checks.Budget()).ok


def test_check_raises_with_every_error() -> None:
    with pytest.raises(ArchitectureError) as raised:
        shapes.check(
            spec_of([8, 8, 1], FLATTEN, {"type": "Dropout", "rate": 2}, {"type": "Dense", "units": 0})
        )
    assert len(raised.value.problems) == 2
    assert str(raised.value).count("\n") == 1
