"""Comparing runs: the table shows what differs, with parameter counts from the shape inference."""

from __future__ import annotations

from made_runs import make_run

from cnnlab import specs
from cnnlab.classroom import exercises
from cnnlab.model import shapes
from cnnlab.runs.views import compare
from cnnlab.store.run_store import Store

SMALL = specs.ModelSpec(
    (8, 8, 1),
    (
        specs.LayerSpec("Conv2D", {"filters": 4, "kernel_size": 3, "activation": "relu"}),
        specs.LayerSpec("Flatten"),
        specs.LayerSpec("Dense", {"units": 10, "activation": "softmax"}),
    ),
    name="small",
)


def _run(store: Store, name: str, spec: specs.ModelSpec = SMALL, **training: float) -> str:
    return make_run(store, spec=spec, training=specs.TrainingSettings(**training), name=name).id


def test_two_runs_that_differ_in_learning_rate_show_exactly_that(store: Store) -> None:
    first = store.get_run(_run(store, "slow", learning_rate=0.001))
    second = store.get_run(_run(store, "fast", learning_rate=0.01))
    table = compare.differences([first, second])
    assert list(table.index) == ["training.learning_rate"]
    assert list(table.columns) == [f"slow ({first.id[-4:]})", f"fast ({second.id[-4:]})"]
    assert list(table.iloc[0]) == ["0.001", "0.01"]


def test_one_run_shows_everything_with_the_inferred_parameter_count(store: Store) -> None:
    run = store.get_run(_run(store, "only"))
    table = compare.differences([run])
    column = table.columns[0]
    assert table.loc["model.parameters", column] == str(shapes.analyse(SMALL).total_parameters)
    assert table.loc["model.input_shape", column] == "8×8×1"
    assert table.loc["layer 01", column].endswith("→ 6×6×4")  # 3x3 'valid' on 8x8
    assert table.loc["data.dataset", column] == "digits"
    assert "training.augmentation.flip" in table.index  # Nested settings are spread out.


def test_different_architectures_and_missing_results(store: Store) -> None:
    wider = SMALL.replace_layers(
        [SMALL.layers[0].with_params(filters=8), *SMALL.layers[1:], specs.LayerSpec("Dropout", {"rate": 0.5})]
    )
    first = _run(store, "narrow")
    second = _run(store, "wide", spec=wider)
    store.set_results(first, {"test_accuracy": 0.91234, "best_val_accuracy": 0.9956})
    table = compare.differences([store.get_run(first), store.get_run(second)])
    assert {"model.parameters", "layer 01", "layer 04", "result.test_accuracy"} <= set(table.index)
    assert table.loc["layer 04"].iloc[0] == "—"  # The narrow model has three layers.
    assert table.loc["layer 04"].iloc[1].startswith("Dropout 0.5")
    # A percentage, as every table writes an accuracy (Home's "best val. accuracy" too).
    assert list(table.loc["result.test_accuracy"]) == ["91.23%", "—"]
    assert list(table.loc["result.best_val_accuracy"]) == ["99.56%", "—"]
    assert "model.name" not in table.index  # Both are called "small".
    everything = compare.differences([store.get_run(first), store.get_run(second)], only_different=False)
    assert "model.name" in everything.index and len(everything) > len(table)


def test_what_an_exercise_hides_shows_as_hidden_never_its_value(store: Store) -> None:
    """The viewer's hidden fields of one run (its learning rate, its layers) say `HIDDEN` in that run's
    column only; the other run's column keeps its values."""
    first = store.get_run(_run(store, "hidden", learning_rate=0.001))
    second = store.get_run(_run(store, "open", learning_rate=0.01))
    hidden = {first.id: exercises.fields_of({"learning_rate", "model_layers"})}
    table = compare.differences([first, second], only_different=False, hidden=hidden)
    hidden_column, open_column = table.columns
    assert table.loc["training.learning_rate"].tolist() == [compare.HIDDEN, "0.01"]
    assert table.loc["training.schedule", hidden_column] == compare.HIDDEN
    assert table.loc["model.name"].tolist() == [compare.HIDDEN, "small"]
    assert table.loc["layer 01"].tolist() == ["—", "Conv2D 3x3, padding='valid' → 6×6×4"]
    assert table.loc["training.batch_size", hidden_column] == table.loc["training.batch_size", open_column]
