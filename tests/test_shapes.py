"""Shape inference and validation: exact numbers, and messages that name the layer and the fix."""

import subprocess
import sys

import pytest

from cnnlab.errors import ArchitectureError
from cnnlab.model import presets, shapes
from cnnlab.specs import ModelSpec


def spec_of(input_shape: list[int], *layers: dict) -> ModelSpec:
    return ModelSpec.from_dict({"input_shape": input_shape, "layers": list(layers)})


CONV3 = {"type": "Conv2D", "filters": 4, "kernel_size": 3}
FLATTEN = {"type": "Flatten"}
SOFTMAX10 = {"type": "Dense", "units": 10, "activation": "softmax"}


def only_error(analysis: shapes.Analysis) -> shapes.Problem:
    assert len(analysis.errors) == 1, analysis.errors
    return analysis.errors[0]


def test_importing_shapes_does_not_import_tensorflow() -> None:
    code = "import cnnlab.model.shapes, cnnlab.model.presets, cnnlab.model.codegen, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_seed_models_have_keras_totals() -> None:
    assert shapes.analyse(presets.get("mnist_minimal").spec).total_parameters == 34_826
    assert shapes.analyse(presets.get("cifar10").spec).total_parameters == 122_570


def test_flops_and_receptive_field_of_a_small_model() -> None:
    analysis = shapes.analyse(spec_of([8, 8, 1], CONV3, {"type": "MaxPooling2D"}, CONV3))
    conv, pool, second = analysis.rows
    assert conv.flops == 2 * 6 * 6 * 9 * 1 * 4
    assert pool.flops == 3 * 3 * 4 * 4
    assert (conv.receptive_field, pool.receptive_field, second.receptive_field) == ((3, 3), (4, 4), (8, 8))
    assert analysis.activation_bytes(2) == 2 * 4 * (64 + 144 + 36 + 4)


def test_output_size_of_zero_names_layer_and_fix() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], CONV3, CONV3, CONV3, CONV3)))
    assert problem.layer == 4
    assert "Layer 4 (Conv2D 3x3, padding='valid')" in problem.message
    assert "2x2 input" in problem.message and "would output 0x0" in problem.message
    assert "remove a pooling" in problem.message


def test_kernel_larger_than_input_even_with_same_padding() -> None:
    big = {"type": "Conv2D", "filters": 4, "kernel_size": 5, "padding": "same"}
    problem = only_error(shapes.analyse(spec_of([4, 4, 1], big)))
    assert problem.layer == 1
    assert "smaller than its 5x5 kernel" in problem.message
    assert "at most 4" in problem.message


def test_pool_output_of_zero() -> None:
    pool = {"type": "MaxPooling2D", "pool_size": 2}
    problem = only_error(shapes.analyse(spec_of([2, 2, 1], pool, pool)))
    assert problem.layer == 2 and "1x1 input" in problem.message and "pool window" in problem.message


def test_dense_on_a_feature_map_says_what_keras_would_do() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], CONV3, SOFTMAX10)))
    assert problem.layer == 2
    assert "6x6x4" in problem.message
    assert "Keras would apply it to each of the 36 pixels" in problem.message
    assert "Add Flatten or GlobalAveragePooling2D before it" in problem.message


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
    assert shapes.loss_for(binary) == "binary_crossentropy"
    relu = spec_of([8, 8, 1], FLATTEN, {"type": "Dense", "units": 1, "activation": "relu"})
    assert "sigmoid" in only_error(shapes.analyse(relu, num_classes=2)).message


def test_model_ending_in_a_feature_map() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], CONV3), num_classes=10))
    assert "6x6x4" in problem.message and "Dense(10, activation='softmax')" in problem.message


def test_input_shape_must_match_the_dataset() -> None:
    model = presets.get("mnist_minimal").spec
    problem = only_error(shapes.analyse(model, dataset_input_shape=(8, 8, 1), num_classes=10))
    assert problem.layer == 0
    assert "28x28x1" in problem.message and "8x8x1" in problem.message and "[8, 8, 1]" in problem.message


def test_budget_gives_the_numbers() -> None:
    model = presets.get("mnist_simple").spec
    budget = shapes.Budget(max_parameters=100_000, max_activation_megabytes=0.5, batch_size=64)
    messages = [problem.message for problem in shapes.analyse(model, budget=budget).errors]
    assert any("542,230 parameters" in message and "100,000" in message for message in messages)
    assert any("64 images needs" in message and "0 MB" in message for message in messages)
    assert shapes.analyse(model, budget=shapes.Budget()).ok


def test_conv_after_flatten_is_explained() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], FLATTEN, CONV3)))
    assert "vector of 64" in problem.message and "Move it before the Flatten" in problem.message


def test_unknown_parameter_lists_the_known_ones() -> None:
    problem = only_error(
        shapes.analyse(spec_of([8, 8, 1], {"type": "Conv2D", "filters": 4, "kernal_size": 3}))
    )
    assert "kernal_size" in problem.message and "kernel_size" in problem.message


def test_backbone_needs_colour_and_size() -> None:
    grey = only_error(shapes.analyse(spec_of([64, 64, 1], {"type": "MobileNetV2", "weights": None})))
    assert "3 channels but gets 1" in grey.message
    small = only_error(shapes.analyse(spec_of([16, 16, 3], {"type": "ResNet50", "weights": None})))
    assert "at least 32x32" in small.message


def test_check_raises_with_every_error() -> None:
    with pytest.raises(ArchitectureError) as raised:
        shapes.check(
            spec_of([8, 8, 1], FLATTEN, {"type": "Dropout", "rate": 2}, {"type": "Dense", "units": 0})
        )
    assert len(raised.value.problems) == 2
