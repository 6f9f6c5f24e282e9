"""Following a run the CLI trains (`train`, `continue`, `fork`): its progress, then its summary.

On a terminal one line is redrawn: the epoch, a bar, the batch's loss and accuracy, the last
epoch's validation figures, the best validation accuracy with its epoch, and the time left. Not on a
terminal (a log file, CI, a pipe) each whole epoch prints one line with its training and validation
metrics, and each status change one line. The time left is `cnnlab.runs.views.time_left`'s (the
Train page's): training time only, the first epoch's compiled step and any pause left out.
The summary is the one JSON line `train` always ended with.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from cnnlab.cli import output
from cnnlab.runs.views import time_left
from cnnlab.store.statuses import Status

if TYPE_CHECKING:
    import pandas as pd

    from cnnlab.runs.queue.scheduler import Scheduler
    from cnnlab.store.reader import RunReader
    from cnnlab.store.records import RunRecord

POLL_SECONDS = 0.5
BAR_WIDTH = 24


def _steps_per_epoch(run: RunRecord) -> int | None:
    images = run.train_images()
    return math.ceil(images / run.training().batch_size) if images else None


def seconds_left(run: RunRecord, epochs: pd.DataFrame, batches: pd.DataFrame) -> float | None:
    """The training seconds the run has left, from its recorded timings; None before there is a pace."""
    planned, steps = run.training().epochs, _steps_per_epoch(run)
    timings, first_batches = time_left.recorded_timings(epochs, batches)
    per_epoch = time_left.seconds_per_epoch(timings, first_batches)
    if per_epoch is None:
        if steps is None or batches.empty or "time" not in batches:
            return None
        first = batches[batches["epoch"] == batches["epoch"].min()]
        recorded = [
            time_left.BatchTiming(int(batch), float(when))
            for batch, when in zip(first["batch"], first["time"], strict=True)
        ]
        return time_left.seconds_left_in_first_epoch(recorded, steps, planned)
    done = max((timing.epoch for timing in timings), default=0)
    in_epoch = 0.0
    if steps and not batches.empty:
        latest = batches.iloc[-1]
        if int(latest["epoch"]) == done + 1:
            in_epoch = min(float(latest["batch"]) / steps, 1.0)
    return max(planned - done - in_epoch, 0.0) * per_epoch


def _figures(row: Any, names: tuple[str, ...]) -> str:
    shown = []
    for name in names:
        value = row.get(name) if hasattr(row, "get") else None
        if value is not None and isinstance(value, int | float) and math.isfinite(value):
            shown.append(f"{name} {value:.4f}")
    return " ".join(shown)


def _best_text(store: RunReader, run: RunRecord) -> str:
    found = output.best_validation(store, run)
    if found["best_validation_accuracy"] is None:
        return ""
    return f"best val_accuracy {found['best_validation_accuracy']:.4f} (epoch {found['best_epoch']})"


def _left_text(left: float | None) -> str:
    return "" if left is None else time_left.describe(left)


def epoch_line(store: RunReader, run: RunRecord, row: Any, left: float | None) -> str:
    """One whole epoch: `epoch 3/10: loss 0.31 accuracy 0.91, val_loss 0.30 val_accuracy 0.90; best
    val_accuracy 0.91 (epoch 2); about 0:07 left`."""
    parts = [
        _figures(row, ("loss", "accuracy")),
        _figures(row, ("val_loss", "val_accuracy")),
    ]
    tail = "; ".join(text for text in (_best_text(store, run), _left_text(left)) if text)
    head = f"epoch {int(row['epoch'])}/{run.training().epochs}: " + ", ".join(part for part in parts if part)
    return head + (f"; {tail}" if tail else "")


def live_line(store: RunReader, run: RunRecord, epochs: pd.DataFrame, batches: pd.DataFrame) -> str:
    """The redrawn terminal line: `epoch 3/10 [#####...] 41% loss 0.31 accuracy 0.91 | val_accuracy
    0.90 | best val_accuracy 0.91 (epoch 2) | about 0:07 left`; the status before the first batch."""
    if run.status == Status.QUEUED:
        return f"queued (position {run.queue_position})"
    steps = _steps_per_epoch(run)
    if batches.empty or not steps:
        return f"{run.status}..."
    latest = batches.iloc[-1]
    fraction = min(1.0, float(latest["batch"]) / steps)
    filled = int(fraction * BAR_WIDTH)
    parts = [
        f"epoch {int(latest['epoch'])}/{run.training().epochs} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
        f"{fraction:4.0%} {_figures(latest, ('loss', 'accuracy'))}"
    ]
    if not epochs.empty:
        parts.append(_figures(epochs.iloc[-1], ("val_accuracy",)))
    parts += [_best_text(store, run), _left_text(seconds_left(run, epochs, batches))]
    return " | ".join(part for part in parts if part)


def follow(runner: Scheduler, run: RunRecord, stream: TextIO | None = None) -> RunRecord:
    """Print the run's progress on `stream` (stderr) until it ends; Ctrl-C stops it. Its last record."""
    stream = stream or sys.stderr
    terminal = stream.isatty()
    store = runner.store
    shown_epoch = int(store.epoch_metrics(run.id)["epoch"].max() or 0) if run.last_epoch else 0
    shown_status: str | None = None
    try:
        while True:
            epochs, batches = store.epoch_metrics(run.id), store.batch_metrics(run.id)
            if terminal:
                print(f"\r{live_line(store, run, epochs, batches):<120}", end="", file=stream, flush=True)
            else:
                if run.status != shown_status and not run.is_ended:
                    print(f"{run.status}...", file=stream, flush=True)
                    shown_status = run.status
                for _, row in epochs[epochs["epoch"] > shown_epoch].iterrows():
                    left = seconds_left(run, epochs[epochs["epoch"] <= row["epoch"]], batches)
                    print(epoch_line(store, run, row, left), file=stream, flush=True)
                    shown_epoch = int(row["epoch"])
            if run.is_ended:
                break
            time.sleep(POLL_SECONDS)
            run = store.get_run(run.id)
    except KeyboardInterrupt:
        runner.stop(run.id)
        run = runner.wait(run.id, timeout=60)
    if terminal:
        print(file=stream)
    return run


def summary(store: RunReader, run: RunRecord) -> dict[str, object]:
    """The JSON line a trained run ends with: id, status, epochs, the best validation accuracy and
    its epoch, the last epoch's training figures, the test figures, the reason, the diagnoses."""
    from cnnlab.runs.views import diagnosis

    results = run.results or {}
    found = diagnosis.read(store, run.id)
    for item in found:
        print(f"{item.title} (epoch {item.epoch}): {item.cause}\n  Fix: {item.fix}", file=sys.stderr)
    described: dict[str, object] = {
        "run_id": run.id,
        "status": run.status.value,
        "epochs": results.get("epochs", 0),
        **output.best_validation(store, run),
        "train_accuracy": results.get("accuracy"),
        "train_loss": results.get("loss"),
        "test_accuracy": results.get("test_accuracy"),
        "test_loss": results.get("test_loss"),
    }
    if run.reason:
        described["reason"] = run.reason
    described["diagnoses"] = [item.message() for item in found]
    return described


def exit_code(run: RunRecord) -> int:
    """0 for a run that completed or was stopped, 1 for one that failed, diverged or was interrupted."""
    return 0 if run.status in (Status.COMPLETED, Status.STOPPED) else 1
