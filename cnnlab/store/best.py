"""What "the best epoch" of a run means, defined once.

The best epoch is the one with the highest validation accuracy (the metric a learner compares
runs by); without a validation split, the highest training accuracy. Ties go to the earliest
epoch. The worker keeps that epoch's model as the run's `best` checkpoint, the run's results
record its number and accuracy, and the run card, Evaluate, Predict and the run pickers all show
that same epoch, so the numbers a user sees agree.

Ours, not Keras's `MonitorCallback` rule: the store may not import Keras; the rule is the one
`ModelCheckpoint(monitor="val_accuracy", mode="max", save_best_only=True)` applies (strictly
greater, so the earliest epoch wins a tie), checked against it in `tests/test_callbacks.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

MONITOR = "val_accuracy"
FALLBACK_MONITOR = "accuracy"


def monitored_value(logs: Mapping[str, object]) -> float | None:
    """The value "best" is judged by in one epoch's logs (higher is better), or None if absent."""
    for name in (MONITOR, FALLBACK_MONITOR):
        value = logs.get(name)
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def is_improvement(value: float | None, best_so_far: float | None) -> bool:
    """True if an epoch whose monitored value is `value` replaces `best_so_far` as the best."""
    if value is None:
        return best_so_far is None
    return best_so_far is None or value > best_so_far


def best_epoch(epoch_metrics: pd.DataFrame) -> int | None:
    """The best epoch of a run's epoch metrics (columns `epoch` and the monitored ones), or None."""
    best: tuple[int, float | None] | None = None
    for record in epoch_metrics.to_dict("records"):
        row = {str(key): value for key, value in record.items()}
        value = monitored_value(row)
        if best is None or is_improvement(value, best[1]):
            best = (int(row["epoch"]), value)
    return None if best is None else best[0]
