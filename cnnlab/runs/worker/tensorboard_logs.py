"""TensorBoard logs of a run, written live during the fit by Keras's own `keras.callbacks.TensorBoard`.

Each run's logs go to `runs/<run id>/tensorboard/` (`cnnlab.trained.exports.tensorboard_folder`),
with Keras's `train/` and `validation/` subfolders, so `tensorboard --logdir $CNNLAB_HOME/runs`
shows every run, named by its id, while it trains. The scalars are Keras's: `epoch_loss`,
`epoch_accuracy`, `epoch_learning_rate` and the other figures of the epoch's logs (the validation
figures that `cnnlab.runs.worker.artifact_callbacks.TelemetrySnapshots` puts there go to
`validation/`). A continued run adds its epochs to the same folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from cnnlab.runs.worker.callbacks import FitProgress
from cnnlab.store.run_store import Store
from cnnlab.trained import exports


def log_folder(store: Store, run_id: str) -> Path:
    """The run's TensorBoard log folder (see `cnnlab.trained.exports.tensorboard_folder`)."""
    return exports.tensorboard_folder(store, run_id)


class WholeEpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback that logs whole epochs only, numbered as the store numbers them.

    It writes epoch scalars only (no graph, no profiler, no per-batch scalars or per-batch hooks:
    those cost time in every fit on a shared machine and the batch curves are the store's). An epoch cut short by a stop
    or a diverged loss is not logged, as the other recording callbacks skip it, and the step of an
    epoch is its number in the store (the first epoch is 1; Keras would log it as 0).

    Args:
        folder: The log folder (`log_folder(store, run_id)`).
        progress: The fit's `FitProgress`.

    Example:

    >>> progress = FitProgress()
    >>> board = WholeEpochTensorBoard(log_folder(store, run_id), progress)
    >>> model.fit(x, y, epochs=2, callbacks=[progress, board])
    >>> sorted(path.name for path in log_folder(store, run_id).iterdir())
    ['train']
    """

    def __init__(self, folder: Path, progress: FitProgress) -> None:
        super().__init__(
            log_dir=str(folder),
            write_graph=False,
            write_steps_per_second=False,
            update_freq="epoch",
            profile_batch=0,
        )
        self.progress = progress

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Nothing: epochs only (Keras's version counts batches for per-batch summaries and tracing)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Nothing: Keras's version asks `tf.summary` for each batch figure even when it writes none,
        and its first call loads TensorBoard's summary code inside the fit's first batch."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.progress.epoch_is_whole():
            super().on_epoch_end(epoch + 1, logs)
