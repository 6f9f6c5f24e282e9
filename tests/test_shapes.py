"""Shape inference: output shapes, parameters, FLOPs and receptive fields, and window errors.

Parameter counts and output shapes are checked against Keras itself in `test_build.py`; the
numbers here are worked out by hand from the layer arithmetic.
"""

import subprocess
import sys

import pytest

from cnnlab.model import checks, shapes
from cnnlab.specs import ModelSpec


def spec_of(input_shape: list[int], *layers: dict) -> ModelSpec:
    return ModelSpec.from_dict({"input_shape": input_shape, "layers": list(layers)})


CONV3 = {"type": "Conv2D", "filters": 4, "kernel_size": 3}
FLATTEN = {"type": "Flatten"}


def only_error(analysis: shapes.Analysis) -> checks.Problem:
    assert len(analysis.errors) == 1, analysis.errors
    return analysis.errors[0]


def test_importing_the_model_package_does_not_import_tensorflow() -> None:
    code = (
        "import sys; import cnnlab.model.shapes, cnnlab.model.checks, cnnlab.model.presets, "
        "cnnlab.model.codegen, cnnlab.model.catalogue, cnnlab.model.backbones; "
        "assert not {'tensorflow', 'keras'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_flops_and_receptive_field_of_a_small_model() -> None:
    analysis = shapes.analyse(spec_of([8, 8, 1], CONV3, {"type": "MaxPooling2D"}, CONV3))
    conv, pool, second = analysis.rows
    assert conv.flops == 2 * 6 * 6 * 9 * 1 * 4
    assert pool.flops == 3 * 3 * 4 * 4
    assert (conv.receptive_field, pool.receptive_field, second.receptive_field) == ((3, 3), (4, 4), (8, 8))
    assert analysis.activation_bytes(2) == 2 * 4 * (64 + 144 + 36 + 4)
    assert analysis.flops == conv.flops + pool.flops + second.flops


def test_parameters_of_each_layer_kind() -> None:
    analysis = shapes.analyse(
        spec_of(
            [10, 10, 3],
            {"type": "Conv2D", "filters": 8, "kernel_size": [3, 5], "use_bias": False},
            {"type": "SeparableConv2D", "filters": 6, "kernel_size": 3, "depth_multiplier": 2},
            {"type": "DepthwiseConv2D", "kernel_size": 2},
            {"type": "BatchNormalization"},
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": 4},
        )
    )
    conv, separable, depthwise, norm, pooled, dense = analysis.rows
    assert (conv.output_shape, conv.parameters) == ((8, 6, 8), 3 * 5 * 3 * 8)
    assert (separable.output_shape, separable.parameters) == ((6, 4, 6), 3 * 3 * 8 * 2 + 8 * 2 * 6 + 6)
    assert (depthwise.output_shape, depthwise.parameters) == ((5, 3, 6), 2 * 2 * 6 + 6)
    assert (norm.trainable_parameters, norm.non_trainable_parameters) == (12, 12)
    assert (pooled.output_shape, dense.output_shape, dense.parameters) == ((6,), (4,), 6 * 4 + 4)
    assert analysis.non_trainable_parameters == 12
    assert analysis.total_parameters == sum(row.parameters for row in analysis.rows)


def test_strides_and_same_padding_round_up() -> None:
    conv = {"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}
    pool = {"type": "MaxPooling2D", "pool_size": 3, "strides": 2}
    analysis = shapes.analyse(spec_of([9, 7, 1], conv, pool))
    assert [row.output_shape for row in analysis.rows] == [(5, 4, 2), (2, 1, 2)]
    assert analysis.rows[0].description == "Conv2D 3x3, strides=2, padding='same'"


def test_names_follow_keras() -> None:
    spec = spec_of([8, 8, 1], CONV3, {**CONV3, "name": "edges"}, CONV3, {"type": "MaxPooling2D"}, FLATTEN)
    assert shapes.layer_names(spec) == ["conv2d_1", "edges", "conv2d_3", "max_pooling2d_1", "flatten_1"]
    assert shapes.snake_case("SeparableConv2D") == "separable_conv2d"


def test_output_size_of_zero_names_layer_and_fix() -> None:
    problem = only_error(shapes.analyse(spec_of([8, 8, 1], CONV3, CONV3, CONV3, CONV3)))
    assert problem.layer == 4
    assert "Layer 4 (Conv2D 3x3, padding='valid')" in problem.message
    assert "2x2 input" in problem.message and "would output 0x0" in problem.message
    assert "remove a pooling" in problem.message


def test_rows_stop_at_the_first_layer_that_fails() -> None:
    analysis = shapes.analyse(spec_of([8, 8, 1], CONV3, CONV3, CONV3, CONV3, FLATTEN))
    assert len(analysis.rows) == 3 and not analysis.ok
    assert analysis.output_shape == (2, 2, 4)


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


@pytest.mark.parametrize(("pooling", "output"), [(None, (3, 3, 1280)), ("avg", (1280,))])
def test_backbone_output_follows_its_stride_steps(pooling: str | None, output: tuple[int, ...]) -> None:
    analysis = shapes.analyse(
        spec_of([75, 75, 3], {"type": "MobileNetV2", "weights": None, "pooling": pooling})
    )
    assert analysis.output_shape == output
    assert analysis.rows[0].trainable_parameters == 0
