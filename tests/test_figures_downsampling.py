"""Long curves downsampled for the browser: few enough points, the first and the last kept, steady."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnnlab.figures import downsampling, training


@pytest.mark.parametrize("length", [0, 1, 2, 999, 1_000, 1_001, 1_998, 1_999, 2_000, 2_001, 12_345, 120_000])
def test_at_most_the_limit_with_first_and_last(length: int) -> None:
    kept = downsampling.keep_indices(length)
    assert len(kept) <= downsampling.MAX_POINTS
    if length:
        assert kept[0] == 0 and kept[-1] == length - 1
        assert np.all(np.diff(kept) > 0)  # in order, no row twice
    if length <= downsampling.MAX_POINTS:
        assert kept.tolist() == list(range(length))  # a short curve is left whole
    else:
        assert len(kept) > downsampling.MAX_POINTS // 2  # and a long one is not thinned more than needed


def test_every_limit_is_kept_for_every_length() -> None:
    for max_points in (2, 3, 7, 50):
        for length in range(0, 400):
            kept = downsampling.keep_indices(length, max_points)
            assert len(kept) <= max_points, (length, max_points)
            assert length == 0 or kept[-1] == length - 1


def test_a_growing_curve_keeps_the_same_points() -> None:
    # A live curve grows by a few rows per refresh: the points already drawn stay where they were
    # (all but the newest, which moves to the new last row), until the stride has to grow.
    before = downsampling.keep_indices(5_000)
    after = downsampling.keep_indices(5_003)
    assert downsampling.stride(5_000) == downsampling.stride(5_003)
    assert set(before[:-1]) <= set(after)


def test_downsample_keeps_rows_and_their_order() -> None:
    table = pd.DataFrame({"step": np.arange(3_000), "loss": np.linspace(2.0, 0.1, 3_000)})
    short = downsampling.downsample(table, 100)
    assert len(short) <= 100
    assert short["step"].iloc[0] == 0 and short["step"].iloc[-1] == 2_999
    # Each kept row is the table's own row, unchanged.
    pd.testing.assert_frame_equal(short, table.loc[short.index])
    assert len(downsampling.downsample(table.head(50), 100)) == 50


def test_a_limit_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="got 1"):
        downsampling.keep_indices(10, 1)


def test_the_batch_curve_is_downsampled_and_ends_at_the_newest_batch() -> None:
    epochs, per_epoch = 30, 200
    steps = np.arange(epochs * per_epoch)
    batches = pd.DataFrame(
        {"epoch": steps // per_epoch + 1, "batch": steps % per_epoch, "step": steps, "loss": 1 / (steps + 1)}
    )
    figure = training.curves(pd.DataFrame(), batches, "loss")
    (trace,) = figure.data
    assert len(trace.x) <= downsampling.MAX_POINTS
    # The newest batch is the last point, at the end of the last epoch on the epoch axis.
    assert trace.x[-1] == pytest.approx(epochs) and trace.y[-1] == pytest.approx(1 / len(steps))
    assert trace.x[0] == pytest.approx(1 / per_epoch)
