"""Light job functions for the worker and scheduler tests: they obey the job contract of
`cnnlab.runs.worker.main` (status running, batch metrics, `Control`) without importing TensorFlow, so
process tests take a second instead of seven. `cnnlab.runs.worker.training.run` is tested for real in
tests/test_training.py and end to end in tests/test_scheduler.py.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from cnnlab.errors import DatasetUnavailable
from cnnlab.runs.queue.job import Control, Outcome
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

BATCHES_PER_EPOCH = 10
WARM_MARKER = "CNNLAB_TEST_WARM_MARKER"
RELEASE_FILE = "release"  # lets `gated_stop_job` end its run once stopped


def warm_up() -> None:
    """What a warm worker calls before it reads a run id: touch the file `$CNNLAB_TEST_WARM_MARKER`."""
    marker = os.environ.get(WARM_MARKER)
    if marker:
        Path(marker).touch()


def _record_batch(store: Store, run_id: str, step: int) -> None:
    """Wait 20 ms, then record batch `step` (and its epoch, after an epoch's last batch)."""
    time.sleep(0.02)
    epoch, batch = divmod(step, BATCHES_PER_EPOCH)
    store.add_batch_metrics(
        run_id, [{"epoch": epoch + 1, "batch": batch, "step": step, "loss": 1 / (step + 1)}]
    )
    if batch == BATCHES_PER_EPOCH - 1:
        store.add_epoch_metrics(run_id, {"epoch": epoch + 1, "loss": 1 / (step + 1)})


def counting_job(run_id: str, store: Store, control: Control) -> Outcome:
    """Record a batch every 20 ms for `epochs` epochs; stop, pause and resume between batches."""
    store.set_status(run_id, Status.RUNNING)
    epochs = store.get_run(run_id).training().epochs
    for step in range(epochs * BATCHES_PER_EPOCH):
        _record_batch(store, run_id, step)
        if control.should_stop():
            return Outcome(Status.STOPPED, reason="Stopped by the user.")
    store.set_results(
        run_id,
        {"pid": os.getpid(), "threads": os.environ.get("TF_NUM_INTRAOP_THREADS"), "niceness": os.nice(0)},
    )
    return Outcome()


def until_stopped_job(run_id: str, store: Store, control: Control) -> Outcome:
    """Like `counting_job`, but with no end of its own: it records a batch every 0.2 s until it is
    stopped, so a browser test can look at a live run (and stop it) for as long as it needs, on a busy
    machine too."""
    store.set_status(run_id, Status.RUNNING)
    step = 0
    while not control.should_stop():
        time.sleep(0.18)  # With the 20 ms in `_record_batch`: a batch every 0.2 s, as a small model's.
        _record_batch(store, run_id, step)
        step += 1
    return Outcome(Status.STOPPED, reason="Stopped by the user.")


def gated_stop_job(run_id: str, store: Store, control: Control) -> Outcome:
    """Like `counting_job`, but a stop ends the run only once the file `release` exists in the run's
    folder: its last batch lasts until the test says, so the page's "Stopping" can be looked at."""
    store.set_status(run_id, Status.RUNNING)
    for step in range(10**6):
        _record_batch(store, run_id, step)
        if control.should_stop():
            release = store.run_folder(run_id) / RELEASE_FILE
            deadline = time.monotonic() + 120
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            return Outcome(Status.STOPPED, reason="Stopped by the user.")
    return Outcome()


def failing_job(run_id: str, store: Store, control: Control) -> Outcome:
    """Start running, then hit a bug."""
    store.set_status(run_id, Status.RUNNING)
    raise ValueError("bad value 42")


def unavailable_job(run_id: str, store: Store, control: Control) -> Outcome:
    """Fail the way a user-caused problem fails, before running."""
    raise DatasetUnavailable("MNIST is not available offline; place mnist.npz in ~/.keras/datasets.")


def diverging_job(run_id: str, store: Store, control: Control) -> Outcome:
    """End as diverged with a hint."""
    store.set_status(run_id, Status.RUNNING)
    return Outcome(Status.DIVERGED, reason="The loss became NaN at epoch 1.", hint="Lower the learning rate.")


def every_batch_job(run_id: str, store: Store, control: Control) -> Outcome:
    """Like `counting_job`, but asks the store for a stop after every batch (no poll interval)."""
    store.set_status(run_id, Status.RUNNING)
    for step in range(store.get_run(run_id).training().epochs * BATCHES_PER_EPOCH):
        time.sleep(0.02)
        store.add_batch_metrics(run_id, [{"epoch": 1, "batch": step, "step": step, "loss": 1.0}])
        if control.should_stop(force_poll=True):
            return Outcome(Status.STOPPED, reason="Stopped by the user.")
    return Outcome()


BEST_LEARNING_RATE = 1e-3  # where `sweep_trial_job`'s validation accuracy peaks
TRIAL_EPOCH_SECONDS = 0.6  # how long one epoch of `sweep_trial_job` lasts


def trial_quality(learning_rate: float) -> float:
    """The validation accuracy `sweep_trial_job` converges to at `learning_rate`: 0.95 at 1e-3, 0.25 less
    per decade away from it (the batch size and everything else make no difference)."""
    return 0.95 - 0.25 * abs(math.log10(learning_rate / BEST_LEARNING_RATE))


def trial_val_accuracy(learning_rate: float, epoch: int) -> float:
    """`sweep_trial_job`'s validation accuracy at `epoch`: its quality times 1 - 2^-epoch."""
    return trial_quality(learning_rate) * (1 - 0.5**epoch)


def sweep_trial_job(run_id: str, store: Store, control: Control) -> Outcome:
    """A sweep's trial without TensorFlow: `TRIAL_EPOCH_SECONDS` an epoch, its validation accuracy set by its
    learning rate alone (`trial_val_accuracy`); ends `pruned` with its sweep's reason when pruned."""
    store.set_status(run_id, Status.RUNNING)
    settings = store.get_run(run_id).training()
    for epoch in range(1, settings.epochs + 1):
        for batch in range(BATCHES_PER_EPOCH):
            time.sleep(TRIAL_EPOCH_SECONDS / BATCHES_PER_EPOCH)
            step = (epoch - 1) * BATCHES_PER_EPOCH + batch
            store.add_batch_metrics(
                run_id, [{"epoch": epoch, "batch": batch, "step": step, "loss": 1 / (step + 1)}]
            )
            if control.should_stop():
                status = Status.PRUNED if control.prune_requested else Status.STOPPED
                return Outcome(status, reason=store.prune_reason(run_id) or "Stopped by the user.")
        score = trial_val_accuracy(settings.learning_rate, epoch)
        store.add_epoch_metrics(
            run_id,
            {
                "epoch": epoch,
                "loss": 1 - score,
                "accuracy": score,
                "val_loss": 1 - score,
                "val_accuracy": score,
            },
        )
    store.set_results(
        run_id, {"best_val_accuracy": trial_val_accuracy(settings.learning_rate, settings.epochs)}
    )
    return Outcome()
