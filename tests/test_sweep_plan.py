"""Planning sweeps: grids, random samples, layer parameters, and values refused before anything is queued."""

from __future__ import annotations

import itertools
import random

import pytest

from cnnlab.errors import SweepError
from cnnlab.model import presets, shapes
from cnnlab.runs.queue import sweep_plan
from cnnlab.runs.queue.sweep_plan import axis, layer_axis, plan
from cnnlab.specs import LayerSpec, ModelSpec, TrainingSettings

TWO_DROPOUTS = ModelSpec(
    (8, 8, 1),
    (
        LayerSpec("Conv2D", {"filters": 4, "kernel_size": 3, "activation": "relu"}),
        LayerSpec("Dropout", {"rate": 0.1}),
        LayerSpec("Flatten"),
        LayerSpec("Dense", {"units": 16, "activation": "relu"}),
        LayerSpec("Dropout", {"rate": 0.1}),
        LayerSpec("Dense", {"units": 10, "activation": "softmax"}),
    ),
)
BASE = TrainingSettings(epochs=3, learning_rate=0.001, batch_size=32, l2=0.0001)


def test_a_grid_has_every_combination_once_and_keeps_the_other_settings() -> None:
    axes = [axis("learning_rate", "1e-3, 3e-3,1e-2"), axis("batch-size", "16,64")]
    planned = plan(TWO_DROPOUTS, BASE, axes, num_classes=10, dataset_input_shape=(8, 8, 1))
    assert planned.grid_size == len(planned.runs) == 6
    combinations = [(run.training.learning_rate, run.training.batch_size) for run in planned.runs]
    assert combinations == list(itertools.product([0.001, 0.003, 0.01], [16, 64]))
    for run in planned.runs:
        assert (run.training.epochs, run.training.l2, run.spec) == (3, 0.0001, TWO_DROPOUTS)
        assert run.values == {
            "learning_rate": run.training.learning_rate,
            "batch_size": run.training.batch_size,
        }
    assert planned.runs[0].label() == "learning_rate=0.001, batch_size=16"


def test_a_sample_of_a_grid_of_billions_takes_its_runs_by_index_in_grid_order() -> None:
    # 200**4 = 1.6 billion combinations: walking them to reach the sampled ones would not end.
    learning_rates = ",".join(f"{index}e-5" for index in range(1, 201))
    axes = [
        axis("learning_rate", learning_rates),
        axis("seed", ",".join(str(index) for index in range(200))),
        axis("l2", ",".join(f"{index}e-6" for index in range(200))),
        axis("epochs", ",".join(str(index) for index in range(1, 201))),
    ]
    planned = plan(TWO_DROPOUTS, BASE, axes, sample=4, seed=3)
    assert planned.grid_size == 200**4
    chosen = sorted(random.Random(3).sample(range(200**4), 4))
    # The grid's n-th combination, as `itertools.product` orders it: the last axis varies fastest.
    expected = [
        {item.setting: item.values[index // 200 ** (3 - place) % 200] for place, item in enumerate(axes)}
        for index in chosen
    ]
    assert [dict(run.values) for run in planned.runs] == expected


def test_a_grid_too_large_to_index_is_refused_with_its_size() -> None:
    hundred = ",".join(str(index) for index in range(1, 101))
    shares = ",".join(f"{index / 100}" for index in range(100))
    axes = [
        axis("learning_rate", ",".join(f"{index}e-5" for index in range(1, 101))),
        axis("seed", hundred),
        axis("epochs", hundred),
        axis("early_stopping_patience", hundred),
        axis("schedule_step_epochs", hundred),
        axis("momentum", shares),
        axis("dropout", shares),
        axis("l2", ",".join(f"{index}e-6" for index in range(100))),
        axis("weight_decay", ",".join(f"{index}e-6" for index in range(100))),
        axis("minimum_learning_rate", ",".join(f"{index}e-8" for index in range(1, 101))),
    ]  # 100**10 = 1e20 combinations, beyond 64-bit indices.
    with pytest.raises(
        SweepError, match=r"A grid of 1e\+20 combinations \(100 x 100 x .*\) is too large to sample"
    ):
        plan(TWO_DROPOUTS, BASE, axes, sample=2)


def test_values_are_read_as_the_setting_s_type() -> None:
    assert axis("optimizer", "adam, sgd").values == ("adam", "sgd")
    assert axis("early_stopping", "true,no").values == (True, False)
    assert axis("epochs", "5, 1e1").values == (5, 10)
    assert axis("learning_rate", "1e-3,0.001,1e-2").values == (0.001, 0.01)  # repeats removed
    assert layer_axis("3.filters=16,32").values == (16, 32)
    assert layer_axis("1.padding=same,valid").values == ("same", "valid")


def test_a_random_sample_is_reproducible_by_its_seed_and_comes_from_the_grid() -> None:
    axes = [axis("learning_rate", "1,2,3,4,5,6,7,8,9"), axis("batch_size", "1,2,3,4,5,6,7,8")]
    first = plan(TWO_DROPOUTS, BASE, axes, sample=5, seed=7)
    again = plan(TWO_DROPOUTS, BASE, axes, sample=5, seed=7)
    other = plan(TWO_DROPOUTS, BASE, axes, sample=5, seed=8)
    picked = [dict(run.values) for run in first.runs]
    assert picked == [dict(run.values) for run in again.runs]
    assert picked != [dict(run.values) for run in other.runs]
    assert (first.grid_size, first.sample, len(picked)) == (72, 5, 5)
    assert len({tuple(values.items()) for values in picked}) == 5
    grid = set(itertools.product(axes[0].values, axes[1].values))
    assert {(values["learning_rate"], values["batch_size"]) for values in picked} <= grid
    assert sweep_plan.planned_count(axes, 5) == 5 and sweep_plan.planned_count(axes) == 72


def test_dropout_sets_every_dropout_layer_and_nothing_else() -> None:
    planned = plan(TWO_DROPOUTS, BASE, [axis("dropout", "0.2,0.5")])
    for run, rate in zip(planned.runs, (0.2, 0.5), strict=True):
        assert [layer.get("rate") for layer in run.spec.layers] == [None, rate, None, None, rate, None]
        assert [layer.type for layer in run.spec.layers] == [layer.type for layer in TWO_DROPOUTS.layers]
        assert run.spec.layers[0] == TWO_DROPOUTS.layers[0] and run.spec.layers[3] == TWO_DROPOUTS.layers[3]


def test_a_layer_axis_changes_that_layer_only_and_its_parameter_count() -> None:
    planned = plan(TWO_DROPOUTS, BASE, [layer_axis("1.filters=2,8")])
    for run, filters in zip(planned.runs, (2, 8), strict=True):
        assert run.spec.layers[0].get("filters") == filters
        assert run.spec.layers[1:] == TWO_DROPOUTS.layers[1:]
        # Conv 3x3 on one channel: 10 per filter; 6x6xfilters into 16 units; 16 into 10.
        expected = 10 * filters + (36 * filters + 1) * 16 + 17 * 10
        assert shapes.analyse(run.spec).total_parameters == expected
        assert sweep_plan.Axis("layer 1.filters", (2, 8)).value_of(run.spec, run.training) == filters


@pytest.mark.parametrize(
    ("axes", "named"),
    [
        (lambda: [axis("learning_rate", "1e-3,abc")], "'abc' for learning_rate is not a number"),
        (lambda: [axis("batch_size", "32,6.5")], "'6.5' for batch_size is not a whole number"),
        (lambda: [axis("learning_rate", "1e-3,-1")], "'-1' for learning_rate is refused"),
        (lambda: [axis("optimizer", "adam,adagrad")], "'adagrad' for optimizer is refused"),
        (
            lambda: [axis("dropout", "0.2,1.5")],
            "'1.5' for dropout is refused: Layer 2 (Dropout) has rate=1.5",
        ),
        (lambda: [layer_axis("1.filters=4,0")], "'0' for layer 1.filters is refused"),
        (lambda: [layer_axis("9.filters=4")], "the model has 6 layers, counted from 1; got layer 9"),
        (lambda: [layer_axis("4.filters=4")], "layer 4 is a Dense. Dense has no parameter 'filters'"),
        (lambda: [layer_axis("1.kernel_size=3,9")], "The run with layer 1.kernel_size=9 cannot be trained"),
        (lambda: [axis("colour", "1,2")], "'colour' is not a setting a sweep can vary"),
        (lambda: [layer_axis("filters=4")], "--layer takes POSITION.PARAMETER=VALUES"),
        (
            lambda: [axis("epochs", "1,2,3,4,5,6,7,8,9"), axis("batch_size", "1,2,3,4,5,6,7,8")],
            "72 runs (9 x 8)",
        ),
        (lambda: [], "at least one setting"),
    ],
)
def test_a_refused_value_is_named_before_anything_is_queued(axes, named: str) -> None:
    with pytest.raises(SweepError) as refused:
        plan(TWO_DROPOUTS, BASE, axes(), num_classes=10, dataset_input_shape=(8, 8, 1))
    assert named in str(refused.value)


def test_a_model_without_dropout_and_an_oversized_sample_are_refused() -> None:
    spec = presets.get("mnist_minimal").spec
    with pytest.raises(SweepError, match="no Dropout layer"):
        plan(spec, BASE, [axis("dropout", "0.2")])
    with pytest.raises(
        SweepError, match="random sample of 9 runs needs at least 9 combinations; the grid has 4"
    ):
        plan(spec, BASE, [axis("batch_size", "16,32,64,128")], sample=9)
    with pytest.raises(SweepError, match="1 to 64 runs; got 65"):
        plan(spec, BASE, [axis("batch_size", ",".join(str(size) for size in range(1, 100)))], sample=65)
