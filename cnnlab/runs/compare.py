"""Side-by-side comparison of runs: their settings and architectures as one table of differences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cnnlab.model import shapes
from cnnlab.runs.records import RunRecord


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, into)
    else:
        into[prefix] = value


def _describe(run: RunRecord) -> dict[str, Any]:
    """Everything worth comparing about a run, as flat "section.key" entries."""
    spec = run.model_spec()
    analysis = shapes.analyse(spec)
    values: dict[str, Any] = {
        "model.name": spec.name,
        "model.input_shape": "×".join(str(size) for size in spec.input_shape),
        "model.parameters": analysis.total_parameters,
    }
    shapes_by_layer = {row.index: "×".join(str(size) for size in row.output_shape) for row in analysis.rows}
    for index, layer in enumerate(spec.layers, 1):
        shape = shapes_by_layer.get(index)
        values[f"layer {index:02d}"] = shapes.describe(layer) + (f" → {shape}" if shape else "")
    _flatten("data", run.data_settings, values)
    _flatten("training", run.training_settings, values)
    results = run.results or {}
    for key in ("val_accuracy", "test_accuracy", "test_loss", "epochs"):
        if key in results:
            values[f"result.{key}"] = results[key]
    return values


def differences(runs: Sequence[RunRecord], only_different: bool = True) -> pd.DataFrame:
    """One row per setting or layer, one column per run (named by run name and id).

    With `only_different`, rows where every run has the same value are left out.
    """
    described = [_describe(run) for run in runs]
    keys: list[str] = []
    for values in described:
        keys += [key for key in values if key not in keys]
    table = pd.DataFrame(
        {
            f"{run.name} ({run.id[-4:]})": [_text(values.get(key)) for key in keys]
            for run, values in zip(runs, described, strict=True)
        },
        index=keys,
    )
    if only_different and len(runs) > 1:
        table = table[table.nunique(axis=1) > 1]
    return table


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
