"""The parallel-coordinates chart of a sweep: its swept settings against best validation accuracy.

One line per run that has a validation accuracy (a line needs a value on every axis), one axis per
swept setting and a last one for the accuracy, after TensorBoard's HParams dashboard. Numbers keep
their scale (a logarithmic one when they span a factor of ten or more, as learning rates do, with
the values as ticks); words and flags become evenly spaced ticks. The best run is drawn in red.

A sweep on Optuna also has Optuna's own charts of its study: the importance of each swept setting
(`importances`, fANOVA) and the optimization history (`history`: each trial's best validation
accuracy and the best so far), titled and sized like the parallel coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

if TYPE_CHECKING:
    import optuna

ACCURACY_COLUMN = "best val. accuracy"
BEST_COLOUR, OTHER_COLOUR = "#d62728", "#6baed6"
LOG_SPAN = 10.0  # positive numbers spanning this factor or more get a logarithmic axis


def _label(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def dimension(label: str, values: Sequence[object]) -> dict[str, object]:
    """One parcoords axis for a setting's values: numbers on a linear or log scale, anything else as ticks."""
    distinct = list(dict.fromkeys(values))
    if all(_is_number(value) for value in distinct):
        numbers = sorted(float(str(value)) for value in distinct)
        logarithmic = numbers[0] > 0 and numbers[-1] / numbers[0] >= LOG_SPAN
        place = math.log10 if logarithmic else float
        positions = [place(float(str(value))) for value in values]
        ticks = [place(number) for number in numbers]
        labels = [_label(value) for value in sorted(distinct, key=lambda value: float(str(value)))]
        if logarithmic:
            label = f"{label} (log scale)"
    else:
        ordered = sorted(distinct, key=_label)
        index = {_label(value): position for position, value in enumerate(ordered)}
        positions = [float(index[_label(value)]) for value in values]
        ticks = [float(position) for position in range(len(ordered))]
        labels = [_label(value) for value in ordered]
    low, high = min(ticks), max(ticks)
    margin = 0.5 if low == high else 0.0
    return {
        "label": label,
        "values": positions,
        "tickvals": ticks,
        "ticktext": labels,
        "range": [low - margin, high + margin],
    }


def parallel_coordinates(
    runs: pd.DataFrame, settings: Sequence[str], best_id: str | None = None, title: str = ""
) -> go.Figure:
    """Settings against best validation accuracy, one line per run of `runs` that has an accuracy.

    `runs` has a column per setting, `ACCURACY_COLUMN` and `id` (as `cnnlab.runs.queue.sweeps.table`
    makes it); the run `best_id` is drawn in red, the others in blue.
    """
    scored = runs[runs[ACCURACY_COLUMN].notna()] if not runs.empty else runs
    figure = go.Figure()
    if scored.empty:
        figure.add_annotation(
            text="No run of the sweep has a validation accuracy yet: lines appear after each run's first epoch.",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
        figure.update_layout(height=380, xaxis_visible=False, yaxis_visible=False, title=title or None)
        return figure
    # The best run last, so its line is drawn over the others.
    scored = pd.concat([scored[scored["id"] != best_id], scored[scored["id"] == best_id]])
    dimensions = [dimension(setting, list(scored[setting])) for setting in settings]
    accuracies = [float(value) for value in scored[ACCURACY_COLUMN]]
    low, high = min(accuracies), max(accuracies)
    dimensions.append(
        {
            "label": ACCURACY_COLUMN,
            "values": accuracies,
            "range": [low - 0.01, high + 0.01] if low == high else [low, high],
            "tickformat": ".1%",
        }
    )
    is_best = [1.0 if run_id == best_id else 0.0 for run_id in scored["id"]]
    figure.add_trace(
        go.Parcoords(
            dimensions=dimensions,
            line={
                "color": is_best,
                "colorscale": [[0.0, OTHER_COLOUR], [1.0, BEST_COLOUR]],
                "cmin": 0.0,
                "cmax": 1.0,
            },
            labelangle=0,
        )
    )
    top = 80 if title else 50  # Room for the axis labels above the axes (and the title above them).
    figure.update_layout(height=380, margin={"l": 60, "r": 60, "t": top, "b": 30}, title=title or None)
    return figure


def _sized(figure: go.Figure, title: str) -> go.Figure:
    figure.update_layout(height=340, margin={"l": 60, "r": 30, "t": 60, "b": 40}, title=title)
    return figure


def history(study: optuna.Study) -> go.Figure:
    """Optuna's optimization history: each finished trial's best validation accuracy and the best so far."""
    from optuna.visualization import plot_optimization_history

    figure = plot_optimization_history(study, target_name="best val. accuracy")
    figure.update_yaxes(tickformat=".0%")
    return _sized(figure, "Each trial and the best so far")


def importances(found: dict[str, float], finished: int) -> go.Figure:
    """The importance of each swept setting for the validation accuracy (Optuna's fANOVA, computed
    from `finished` trials), as Optuna's own importance chart draws it: bars, the largest on top."""
    ordered = sorted(found.items(), key=lambda item: item[1])
    figure = go.Figure(
        go.Bar(
            x=[value for _, value in ordered],
            y=[setting for setting, _ in ordered],
            orientation="h",
            text=[f"{value:.2f}" for _, value in ordered],
            textposition="outside",
            marker_color=OTHER_COLOUR,
        )
    )
    figure.update_xaxes(title="importance (fANOVA)", range=[0, 1.1])
    return _sized(figure, f"Which settings mattered (from {finished} finished trials)")
