"""The time left on the Train page: from training time only, never a pause, nor the first compiled step.

The timings below were recorded by a real default digits run of 8 epochs through the worker's
callbacks (`worker.run_job` with `training.run`), paused for 8 s in epoch 3; the tests write them
into a store as the worker does and read them back as the page does.
"""

from __future__ import annotations

import pytest

from cnnlab.runs.views import time_left
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.made_runs import make_run, reached

# epoch: (wall seconds, seconds paused in it, seconds of its validation pass and snapshots)
RECORDED_EPOCHS = {
    1: (1.735, 0.0, 0.816),
    2: (0.672, 0.0, 0.201),
    3: (9.882, 8.059, 0.479),
    4: (1.049, 0.0, 0.354),
    5: (0.621, 0.0, 0.205),
    6: (1.235, 0.0, 0.138),
    7: (0.755, 0.0, 0.272),
    8: (1.618, 0.0, 0.412),
}
# The first epoch's recorded batches (batch, when it ended): batch 1 holds the first compiled step.
RECORDED_FIRST_BATCHES = ((1, 1796578210.372), (36, 1796578210.626), (40, 1796578210.668))
PLANNED = len(RECORDED_EPOCHS)


def record(store: Store, epochs_done: int) -> str:
    """A running run with the recorded timings of its first `epochs_done` epochs in `store`."""
    run_id = reached(store, make_run(store, epochs=PLANNED).id, Status.RUNNING).id
    rows = [
        {"epoch": 1, "batch": batch, "step": batch, "loss": 1.0, "time": when}
        for batch, when in RECORDED_FIRST_BATCHES
    ]
    store.add_batch_metrics(run_id, rows)
    for epoch in range(1, epochs_done + 1):
        seconds, paused, telemetry = RECORDED_EPOCHS[epoch]
        row = {"epoch": epoch, "loss": 1.0, "epoch_seconds": seconds, "paused_seconds": paused}
        store.add_epoch_metrics(run_id, {**row, "telemetry_seconds": telemetry})
    return run_id


def estimate(store: Store, epochs_done: int) -> float:
    run_id = record(store, epochs_done)
    epochs, first_batches = time_left.recorded_timings(
        store.epoch_metrics(run_id), store.batch_metrics(run_id)
    )
    left = time_left.seconds_left(epochs, PLANNED, first_batches)
    assert left is not None
    return left


def truth(epochs_done: int) -> float:
    """The training seconds the run really took after `epochs_done` epochs, its pause left out."""
    return sum(seconds - paused for seconds, paused, _ in list(RECORDED_EPOCHS.values())[epochs_done:])


def test_from_the_third_epoch_the_estimate_is_within_twice_the_truth(store: Store) -> None:
    for done in range(3, PLANNED):
        ratio = estimate(store, done) / truth(done)
        assert 0.5 <= ratio <= 2.0, (done, ratio)


def test_a_pause_does_not_make_the_estimate_jump(store: Store) -> None:
    before, after = estimate(store, 2) / (PLANNED - 2), estimate(store, 3) / (PLANNED - 3)
    assert after <= 2 * before
    # Counting the pause (the old estimate: the mean wall seconds of the last epochs) would have jumped.
    counted = (RECORDED_EPOCHS[2][0] + RECORDED_EPOCHS[3][0]) / 2
    assert counted > 4 * before


def test_the_first_estimate_leaves_out_the_first_compiled_step(store: Store) -> None:
    first = estimate(store, 1) / (PLANNED - 1)
    steady = truth(1) / (PLANNED - 1)
    assert first < RECORDED_EPOCHS[1][0]  # Not the first epoch's wall time...
    assert 0.5 <= first / steady <= 2.0  # ...but the pace of the epochs that follow.


def test_a_long_first_step_does_not_set_the_first_estimate() -> None:
    """In the app the first compiled step took seconds: "3:49 left" for a 50 s run."""
    first = time_left.EpochTiming(1, seconds=14.0, telemetry_seconds=0.5)
    batches = [
        time_left.BatchTiming(1, 100.0),
        time_left.BatchTiming(20, 100.95),
        time_left.BatchTiming(40, 101.95),
    ]
    per_epoch = time_left.seconds_per_epoch([first], batches)
    assert per_epoch == pytest.approx(1.95 / 39 * 40 + 0.5)
    # Once a second epoch is timed, the first is no longer used at all.
    second = time_left.EpochTiming(2, seconds=2.5)
    assert time_left.seconds_per_epoch([first, second], batches) == pytest.approx(2.5)


def test_a_run_with_nothing_timed_has_no_estimate_and_the_words_read_as_a_countdown() -> None:
    assert time_left.seconds_left([], 10) is None
    assert time_left.seconds_left([time_left.EpochTiming(1, float("nan"))], 10) is None
    assert time_left.describe(65.4) == "about 1:05 left"
    assert time_left.describe(3725) == "about 1 h 02 min left"


def test_before_the_first_epoch_ends_the_pace_of_its_batches_after_the_first_gives_the_time_left() -> None:
    # The first batch ends with the compiled step at 5 s; then 10 batches a second.
    batches = [time_left.BatchTiming(1, 5.0), time_left.BatchTiming(11, 6.0), time_left.BatchTiming(21, 7.0)]
    assert time_left.seconds_left_in_first_epoch(
        batches, steps_per_epoch=50, epochs_planned=2
    ) == pytest.approx(7.9)
    assert time_left.seconds_left_in_first_epoch(batches[:1], steps_per_epoch=50, epochs_planned=2) is None
