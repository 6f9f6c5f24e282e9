"""The model table's compact numbers."""

from __future__ import annotations

from cnnlab.ui.tables import compact_number


def test_compact_numbers_for_the_model_table() -> None:
    assert [compact_number(value) for value in (950, 12_345, 2_664_960, 15.5e9)] == [
        "950",
        "12.3 k",
        "2.66 M",
        "15.5 G",
    ]
