"""Tables the pages show, as pandas DataFrames, and the one way numbers in them are written."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cnnlab.model import catalogue, shapes

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.


def compact_number(value: float) -> str:
    """A count in at most four significant characters: 950, 12.3 k, 2.66 M, 15.5 G."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g} {suffix}"
    return f"{value:g}"


def count_text(count: int) -> str:
    """A count of parameters (or images) as every page writes it: all digits, thousands separated (151,306)."""
    return f"{int(count):,}"


def local_time(seconds: float) -> str:
    """A time stored as seconds since the epoch, as this server's local date and time (2025-05-01 14:03:07)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def event_log(events: pd.DataFrame) -> pd.DataFrame:
    """A run's event log (time in epoch seconds, level, message) with readable local times."""
    readable = events.copy()
    if "time" in readable:
        readable["time"] = [local_time(float(seconds)) for seconds in readable["time"]]
    return readable


def analysis_table(analysis: shapes.Analysis) -> pd.DataFrame:
    """One row per layer: name, output shape, parameters, FLOPs, receptive field and any problem."""
    import pandas as pd

    problems = {problem.layer: problem.message for problem in analysis.problems}
    rows = []
    for row in analysis.rows:
        field = row.receptive_field
        rows.append(
            {
                "#": row.index,
                "Layer": row.description,
                "Output shape": " × ".join(str(size) for size in row.output_shape),
                "Parameters": count_text(row.parameters),
                "FLOPs": compact_number(row.flops),
                "Receptive field": f"{field[0]}×{field[1]}" if field else "whole image",
                "Problem": problems.get(row.index, ""),
            }
        )
    for layer, message in problems.items():
        if layer and layer > len(analysis.rows):
            rows.append(
                {"#": layer, "Layer": catalogue.describe(analysis.spec.layers[layer - 1]), "Problem": message}
            )
    return pd.DataFrame(rows)
