"""Tables the pages show, as pandas DataFrames, and the one way numbers in them are written."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.model import catalogue, shapes
from cnnlab.trained import evaluation

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.
    from pandas.io.formats.style import Styler

# The ends of the confusion table's colour scale (plotly's "Blues", as the Train page's chart): empty
# cells are nearly white, the fullest dark blue; text turns white where the cell is dark.
EMPTY_CELL_RGB = (247, 251, 255)
FULL_CELL_RGB = (8, 48, 107)
WHITE_TEXT_FROM = 0.55


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


def confusion_table(matrix: np.ndarray, class_names: Sequence[str], normalise: bool = False) -> Styler:
    """A confusion matrix as a table: one row per true class, one column per predicted class, each cell
    its count (or, normalised, its share of the row) on a colour as dark as the cell is full.

    A table, not a chart, so the Evaluate page needs no plotly in the browser (its code is slow to
    load), and a click selects a cell (`st.dataframe(..., selection_mode="single-cell")`).
    """
    import pandas as pd

    values = evaluation.row_shares(matrix) if normalise else np.asarray(matrix, dtype=np.float64)
    names = [str(name) for name in class_names]
    table = pd.DataFrame(values, index=names, columns=names)
    shares = values / max(float(values.max()), 1e-12)
    empty, full = np.array(EMPTY_CELL_RGB, dtype=np.float64), np.array(FULL_CELL_RGB, dtype=np.float64)
    colours = np.rint(empty + (full - empty) * shares[..., np.newaxis]).astype(int)
    styles = pd.DataFrame(
        [
            [
                f"background-color: rgb({red}, {green}, {blue}); color: {'white' if share >= WHITE_TEXT_FROM else 'black'}"
                for (red, green, blue), share in zip(colour_row, share_row, strict=True)
            ]
            for colour_row, share_row in zip(colours, shares, strict=True)
        ],
        index=names,
        columns=names,
    )
    return table.style.apply(lambda _: styles, axis=None).format("{:.0%}" if normalise else "{:,.0f}")
