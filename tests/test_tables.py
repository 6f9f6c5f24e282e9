"""Tables the pages show: the model table's numbers and the confusion table's cells."""

from __future__ import annotations

import re

import numpy as np

from cnnlab.model import presets, shapes
from cnnlab.ui.widgets.tables import (
    ANALYSIS_COLUMNS,
    EMPTY_CELL_RGB,
    FULL_CELL_RGB,
    analysis_table,
    confusion_table,
)


def test_the_model_table_holds_numbers_the_browser_writes() -> None:
    analysis = shapes.analyse(presets.get("digits_default").spec)
    table = analysis_table(analysis)
    # Whole numbers, not text, so the column sorts by size; `ANALYSIS_COLUMNS` says how to write them.
    assert list(table["Parameters"]) == [row.parameters for row in analysis.rows]
    assert list(table["FLOPs"]) == [row.flops for row in analysis.rows]
    assert str(table["Parameters"].dtype) == str(table["FLOPs"].dtype) == "Int64"
    formats = {name: column["type_config"].get("format") for name, column in ANALYSIS_COLUMNS.items()}
    assert (formats["Parameters"], formats["FLOPs"]) == ("localized", "compact")
    # A long problem is cut to a medium column (its whole message is above the table), so the table
    # fits a 1280-pixel screen.
    assert ANALYSIS_COLUMNS["Problem"]["width"] == "medium"


def _cell_styles(html: str) -> dict[tuple[int, int], str]:
    """Each cell's (row, column) and its CSS, from the Styler's HTML (a rule may name several cells)."""
    styles = {}
    for selectors, style in re.findall(r"([^{}]+)\{([^}]*)\}", html):
        for row, column in re.findall(r"_row(\d+)_col(\d+)", selectors):
            styles[(int(row), int(column))] = " ".join(style.split())
    return styles


def test_the_confusion_table_writes_counts_or_shares_on_a_colour_as_dark_as_the_cell_is_full() -> None:
    matrix = np.array([[8, 2, 0], [1, 4, 0], [0, 0, 0]])
    counts = confusion_table(matrix, ["cat", "dog", "fox"])
    assert list(counts.data.index) == list(counts.data.columns) == ["cat", "dog", "fox"]
    html = counts.to_html()
    assert ">8<" in html and ">2<" in html
    styles = _cell_styles(html)
    assert styles[(0, 0)] == f"background-color: rgb{FULL_CELL_RGB}; color: white;"
    assert styles[(2, 2)] == f"background-color: rgb{EMPTY_CELL_RGB}; color: black;"
    darkness = [
        sum(int(part) for part in re.findall(r"\d+", styles[cell])[:3]) for cell in ((0, 0), (1, 1), (0, 1))
    ]
    assert darkness == sorted(darkness)  # 8, then 4, then 2: the fuller, the darker.

    shares = confusion_table(matrix, ["cat", "dog", "fox"], normalise=True)
    assert np.allclose(shares.data.to_numpy()[:2].sum(axis=1), 1.0)
    assert np.allclose(shares.data.to_numpy()[2], 0.0)  # A class with no images: no division by zero.
    assert ">80%<" in shares.to_html() and ">20%<" in shares.to_html()
