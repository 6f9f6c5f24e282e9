"""Long curves made short for the browser: at most a fixed number of points per trace.

A run of 300 epochs of 400 batches records 120,000 batch losses; a chart 700 pixels wide shows no
more than about a thousand of them, and each point sent costs the server, the network and the
browser on every refresh of every viewer. `keep_indices` picks which rows to plot: every k-th row
from the first, with k the smallest stride that fits, and always the last row, so the newest
value is on screen. The stride changes only when the table crosses a multiple of the limit, so a
live curve keeps the same points from one refresh to the next instead of shimmering.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MAX_POINTS = 1_000


def stride(length: int, max_points: int = MAX_POINTS) -> int:
    """The step between kept rows so that `length` rows give at most `max_points` points (last included)."""
    if max_points < 2:
        raise ValueError(f"A downsampled curve keeps at least 2 points (first and last); got {max_points}.")
    if length <= max_points:
        return 1
    # Every k-th row from row 0 gives ceil(length / k) rows; the last row may be one more.
    return math.ceil((length - 1) / (max_points - 1))


def keep_indices(length: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """The row positions to plot out of `length`: every `stride`-th from the first, and the last."""
    if length <= 0:
        return np.zeros(0, dtype=np.int64)
    step = stride(length, max_points)
    kept = np.arange(0, length, step, dtype=np.int64)
    if kept[-1] != length - 1:
        kept = np.append(kept, length - 1)
    return kept


def downsample(table: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """At most `max_points` rows of `table` (in its order), always with its first and last row."""
    if len(table) <= max_points:
        return table
    return table.iloc[keep_indices(len(table), max_points)]
