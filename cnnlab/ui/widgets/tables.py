"""Tables the pages show, as pandas DataFrames, and the one way numbers in them are written.

Tables hold numbers and times, not text made from them, and `st.column_config` writes them in the
browser: counts with thousands separators, accuracies as percentages, times as local date and time.
The columns stay numbers, so a click on a header sorts 9,000 before 10,000 and 9% before 10%.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from cnnlab.model import catalogue, shapes
from cnnlab.trained import evaluation

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.
    from pandas.io.formats.style import Styler
    from streamlit.elements.lib.column_types import ColumnConfig

# The ends of the confusion table's colour scale (plotly's "Blues", as the Train page's chart): empty
# cells are nearly white, the fullest dark blue; text turns white where the cell is dark.
EMPTY_CELL_RGB = (247, 251, 255)
FULL_CELL_RGB = (8, 48, 107)
WHITE_TEXT_FROM = 0.55


TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"  # momentJS, as `DatetimeColumn` takes it: 2025-05-01 14:03:07


# Wide enough for the longest status ("interrupted"): the grid sizes a column on the rows it first
# draws, and a live table first drawn with "running" clipped "completed" once the run ended.
STATUS_PIXELS = 100


def status_column(label: str | None = None) -> ColumnConfig:
    """A column of run statuses, as wide as the longest one whatever the rows first drawn."""
    return st.column_config.TextColumn(label, width=STATUS_PIXELS)


def count_column(label: str | None = None) -> ColumnConfig:
    """A column of counts (parameters, images), all digits with the reader's thousands separator (151,306)."""
    return st.column_config.NumberColumn(label, format="localized")


def compact_column(label: str | None = None) -> ColumnConfig:
    """A column of large counts (FLOPs) in a few characters: 950, 12.3K, 2.66M, 15.5B."""
    return st.column_config.NumberColumn(label, format="compact")


def share_column(label: str | None = None) -> ColumnConfig:
    """A column of shares between 0 and 1 (accuracies) as percentages: 0.9956 as 99.56%."""
    return st.column_config.NumberColumn(label, format="percent")


def time_column(label: str | None = None) -> ColumnConfig:
    """A column of local date and time, to the second (2025-05-01 14:03:07)."""
    return st.column_config.DatetimeColumn(label, format=TIME_FORMAT)


def count_text(count: int) -> str:
    """A count as `count_column` writes it (151,306), as text.

    For a table whose columns mix kinds (the Runs page's comparison, one row per setting), where
    `st.column_config`, which formats whole columns, cannot write one row's numbers.
    """
    return f"{int(count):,}"


def local_times(seconds: Iterable[float]) -> list[datetime.datetime]:
    """Times stored as seconds since the epoch, as this server's local date and time (for `time_column`)."""
    return [datetime.datetime.fromtimestamp(float(value)) for value in seconds]


EVENT_LOG_COLUMNS = {
    "time": time_column(),
    # Wide, not as wide as the longest message: the column stays on screen at 1280 pixels.
    "message": st.column_config.TextColumn(width="large"),
}


# The level of technical events (which worker process took the run, warm starts): shown apart.
TECHNICAL_LEVEL = "debug"


def event_log(events: pd.DataFrame, technical: bool = False) -> pd.DataFrame:
    """A run's event log (time in epoch seconds, level, message) with local times, for `EVENT_LOG_COLUMNS`:
    the learner's events (info, warnings, errors), or with `technical` the technical details."""
    readable = events.copy()
    if "level" in readable:
        readable = readable[(readable["level"] == TECHNICAL_LEVEL) == technical].reset_index(drop=True)
    if "time" in readable:
        import pandas as pd

        readable["time"] = pd.to_datetime(local_times(readable["time"]))
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
                "Parameters": row.parameters,
                "FLOPs": row.flops,
                "Receptive field": f"{field[0]}×{field[1]}" if field else "whole image",
                "Problem": problems.get(row.index, ""),
            }
        )
    for layer, message in problems.items():
        if layer and layer > len(analysis.rows):
            rows.append(
                {"#": layer, "Layer": catalogue.describe(analysis.spec.layers[layer - 1]), "Problem": message}
            )
    table = pd.DataFrame(rows)
    for column in ("Parameters", "FLOPs"):
        if column in table:
            table[column] = table[column].astype("Int64")  # Whole numbers, empty where a layer has no row.
    return table


ANALYSIS_COLUMNS = {
    "Parameters": count_column(),
    "FLOPs": compact_column(),
    # A problem's whole message is shown above the table; here it is cut to the column's width.
    "Problem": st.column_config.TextColumn(width="medium"),
}


def confusion_table(matrix: np.ndarray, class_names: Sequence[str], normalise: bool = False) -> Styler:
    """A confusion matrix as a table: one row per true class, one column per predicted class, each cell
    its count (or, normalised, its share of the row) on a colour as dark as the cell is full.

    A table, not a chart, so the Evaluate page needs no plotly in the browser (its code is slow to
    load), and a click selects a cell (`st.dataframe(..., selection_mode="single-cell")`).
    The Styler writes the cells, not `st.column_config`: its "percent" keeps two decimals (12.50%),
    too wide for cells sized for "100%", and the Styler already carries the colours.
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
