"""How long a run has left, from the timings it recorded: training time only, never a pause.

The worker records each whole epoch's wall seconds (`epoch_seconds`, the validation pass and
telemetry included), the seconds it spent paused in it (`paused_seconds`) and, four times a
second, a batch with the time it ended. Two things make a naive "last epochs times epochs left"
wrong, and this module leaves both out:

- a pause: its seconds are in the epoch's wall time, and the estimate jumped after a resume;
- the start: the run's first epoch holds TensorFlow's first compiled step (seconds on a small
  model), so its wall time can be several epochs' worth. Once a later epoch is timed, the first
  is not used; until then, the first epoch is timed from its batches after the first one (the
  compiled step), plus its validation pass.


It is a pure function of the recorded figures (no store, no clock), so tests give it recorded
timings, pauses included. Nothing here imports streamlit or TensorFlow.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# The estimate follows the latest epochs (a run slows when another shares the cores) but averages
# a few, so that one slow or fast epoch on a busy machine does not swing it.
RECENT_EPOCHS = 3


@dataclass(frozen=True)
class EpochTiming:
    """One whole epoch's recorded seconds.

    Attributes:
        epoch: The epoch's number, from 1.
        seconds: Its wall seconds, pauses included (NaN when not recorded).
        paused_seconds: The seconds it spent paused (0 when none, or not recorded).
        telemetry_seconds: The seconds of its validation pass and snapshots (0 when not recorded).
    """

    epoch: int
    seconds: float
    paused_seconds: float = 0.0
    telemetry_seconds: float = 0.0

    @property
    def training_seconds(self) -> float:
        """The epoch's wall seconds without its pauses."""
        return max(self.seconds - self.paused_seconds, 0.0)


@dataclass(frozen=True)
class BatchTiming:
    """A recorded batch of the run's first epoch: its number in the epoch (from 1) and when it ended."""

    batch: int
    time: float


def seconds_per_epoch(
    epochs: Sequence[EpochTiming], first_batches: Sequence[BatchTiming] = ()
) -> float | None:
    """The training seconds one more epoch will take, or None when nothing usable is recorded yet.

    `epochs`: the whole epochs recorded, in order. `first_batches`: the batches recorded during
    the run's first epoch, in order (used while the first epoch is the only one timed).
    """
    timed = [epoch for epoch in epochs if math.isfinite(epoch.seconds)]
    if not timed:
        return None
    if len(timed) >= 2:
        later = [epoch for epoch in timed if epoch.epoch != timed[0].epoch]
        return statistics.fmean(epoch.training_seconds for epoch in later[-RECENT_EPOCHS:])
    return _first_epoch_seconds(timed[0], first_batches)


def _first_epoch_seconds(first: EpochTiming, batches: Sequence[BatchTiming]) -> float:
    """The first epoch's seconds without its first (compiled) batch: the pace of the batches after
    the first recorded one (which ends with the compiled step) over all of them, plus the
    validation pass. Without two recorded batches (an old run), the epoch's own training seconds."""
    if len(batches) >= 2:
        start, end = batches[0], batches[-1]
        span = end.time - start.time - first.paused_seconds
        if end.batch > start.batch and span > 0:
            estimate = span / (end.batch - start.batch) * end.batch + first.telemetry_seconds
            # It cannot be longer than the epoch itself took without its pauses.
            return min(estimate, first.training_seconds)
    return first.training_seconds


def seconds_left(
    epochs: Sequence[EpochTiming],
    epochs_planned: int,
    first_batches: Sequence[BatchTiming] = (),
) -> float | None:
    """The training seconds left for the epochs not yet done, or None while there is no estimate."""
    per_epoch = seconds_per_epoch(epochs, first_batches)
    if per_epoch is None:
        return None
    done = max((epoch.epoch for epoch in epochs), default=0)
    return max(epochs_planned - done, 0) * per_epoch


def seconds_left_in_first_epoch(
    batches: Sequence[BatchTiming], steps_per_epoch: int, epochs_planned: int
) -> float | None:
    """Before the first whole epoch is recorded: the pace of the first epoch's batches after the
    first recorded one (which ends with the compiled step), times the batches left in the run;
    None with fewer than two batches recorded (no pace yet). Validation passes are not in it."""
    if len(batches) < 2 or steps_per_epoch < 1:
        return None
    start, end = batches[0], batches[-1]
    if end.batch <= start.batch or end.time <= start.time:
        return None
    pace = (end.time - start.time) / (end.batch - start.batch)
    return max(steps_per_epoch * epochs_planned - end.batch, 0) * pace


def _column(table: pd.DataFrame, name: str, default: float) -> list[float]:
    if name not in table:
        return [default] * len(table)
    return [float(value) if math.isfinite(float(value)) else default for value in table[name]]


def recorded_timings(
    epoch_table: pd.DataFrame, batch_table: pd.DataFrame
) -> tuple[list[EpochTiming], list[BatchTiming]]:
    """The timings in the store's tables (`Store.epoch_metrics`, `Store.batch_metrics`): every
    whole epoch's, and the batches of the first epoch (empty once a later epoch is timed: unused)."""
    if epoch_table.empty or "epoch_seconds" not in epoch_table:
        return [], []
    epochs = [
        EpochTiming(int(epoch), float(seconds), paused, telemetry)
        for epoch, seconds, paused, telemetry in zip(
            epoch_table["epoch"],
            epoch_table["epoch_seconds"].astype(float),
            _column(epoch_table, "paused_seconds", 0.0),
            _column(epoch_table, "telemetry_seconds", 0.0),
            strict=True,
        )
    ]
    if len(epochs) != 1 or batch_table.empty or "time" not in batch_table:
        return epochs, []
    first = batch_table[batch_table["epoch"] == epochs[0].epoch]
    batches = [
        BatchTiming(int(batch), float(when))
        for batch, when in zip(first["batch"], first["time"], strict=True)
    ]
    return epochs, batches


def describe(seconds: float) -> str:
    """Seconds as a learner reads a countdown: "about 1:05 left", "about 1 h 02 min left"."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"about {hours} h {minutes:02d} min left"
    return f"about {minutes}:{secs:02d} left"
