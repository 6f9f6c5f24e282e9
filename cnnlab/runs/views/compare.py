"""Side-by-side comparison of runs: their settings and architectures as one table of differences.

Each run becomes flat "section.key" entries (model name, input shape, parameter count, one entry
per layer with its output shape, every data and training setting, the headline results); the
table has one row per entry and one column per run, and by default keeps only the rows where the
runs differ, so two runs that differ in their learning rate show exactly that row. What a run's
exercise hides from the viewer (its layers, a setting) shows as `HIDDEN`, never its value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import pandas as pd

from cnnlab.model import catalogue, shapes
from cnnlab.store.records import JsonValue, RunRecord

# The results worth a row of their own, in this order.
RESULT_KEYS = ("best_val_accuracy", "test_accuracy", "test_loss", "epochs")
HIDDEN = "hidden by the exercise"


def _flatten(prefix: str, value: JsonValue, into: dict[str, JsonValue]) -> None:
    """Spread nested JSON objects into `into` as "prefix.key.subkey" entries."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, item, into)
    else:
        into[prefix] = value


def describe_run(run: RunRecord, hidden: Collection[tuple[str, str]] = ()) -> dict[str, JsonValue]:
    """Everything worth comparing about a run, as flat "section.key" entries in a stable order.

    `hidden` holds the (section, field) pairs the viewer may not see (`cnnlab.classroom.exercises.fields_of`):
    their entries say `HIDDEN`; ("model", "") hides the model's name and its layers (one "layers" entry).
    """
    spec = run.model_spec()
    analysis = shapes.analyse(spec)
    values: dict[str, JsonValue] = {
        "model.name": spec.name,
        "model.input_shape": "×".join(str(size) for size in spec.input_shape),
        "model.parameters": analysis.total_parameters,
    }
    if ("model", "") in hidden:
        values["model.name"] = values["layers"] = HIDDEN
    else:
        shapes_by_layer = {
            row.index: "×".join(str(size) for size in row.output_shape) for row in analysis.rows
        }
        for index, layer in enumerate(spec.layers, 1):
            shape = shapes_by_layer.get(index)
            values[f"layer {index:02d}"] = catalogue.describe(layer) + (f" → {shape}" if shape else "")
    settings: dict[str, JsonValue] = {}
    _flatten("data", run.data_settings, settings)
    _flatten("training", run.training_settings, settings)
    for key, value in settings.items():
        section, _, rest = key.partition(".")
        field = rest.split(".")[0]
        values[key] = HIDDEN if (section, field) in hidden else value
    results = run.results or {}
    for key in RESULT_KEYS:
        if key in results:
            values[f"result.{key}"] = results[key]
    return values


def differences(
    runs: Sequence[RunRecord],
    only_different: bool = True,
    hidden: Mapping[str, Collection[tuple[str, str]]] | None = None,
) -> pd.DataFrame:
    """One row per setting or layer, one column per run (named by run name and the end of its id).

    With `only_different`, rows where every run has the same value are left out (a single run
    keeps every row). A value a run does not have shows as "—". `hidden` maps a run's id to the
    (section, field) pairs its exercise hides from the viewer (see `describe_run`).
    """
    described = [describe_run(run, (hidden or {}).get(run.id, ())) for run in runs]
    keys: list[str] = []
    for values in described:
        keys += [key for key in values if key not in keys]
    table = pd.DataFrame(
        {
            f"{run.name} ({run.id[-4:]})": [_text(values.get(key), key) for key in keys]
            for run, values in zip(runs, described, strict=True)
        },
        index=keys,
    )
    if only_different and len(runs) > 1:
        table = table[table.nunique(axis=1) > 1]
    return table


def _text(value: JsonValue, key: str = "") -> str:
    """A value as the table shows it: "—" for none, an accuracy as a percentage (99.56%, as every
    table writes it), four significant digits for another float."""
    if value is None:
        return "—"
    if key.endswith("accuracy") and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
