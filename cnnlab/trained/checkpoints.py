"""A run's checkpoints: finding one ("best", "latest" or epoch N) and loading it with Keras.

The worker writes checkpoints through the store (`Store.save_checkpoint`): `best` and `latest` are
whole models (`.keras`), and each epoch's layer weights are kept apart (`epoch_0003.weights.npz`,
enough to fork from, not a model Keras can load). Everything the server does with a trained run's
model starts here: `find` says which file a request names, or raises `CheckpointError` saying what
was asked and which checkpoints exist; `load` opens a whole-model checkpoint in Keras safe mode.

"Best" follows `cnnlab.store.best`: the epoch with the highest validation accuracy (else training
accuracy), earliest on ties. `best_epoch` reads it from the run's epoch metrics and `describe`
labels a checkpoint with its epoch's score, so the run card, Evaluate, Predict and the run pickers
show the epoch and the number of the checkpoint they load.

Finding a checkpoint never imports Keras (the Learn page lists checkpoints before TensorFlow
starts); only `load` does. An ended run's scores are read from its results (`recorded_score`), so
the pickers label its checkpoints without reading its metrics table (and without pandas).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from cnnlab.errors import RunError
from cnnlab.store import best
from cnnlab.store.reader import RunReader
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import ENDED

if TYPE_CHECKING:
    import keras
    import pandas as pd

TrainedModel: TypeAlias = "keras.Model"
"""A model loaded from a checkpoint, named so code that never imports Keras can annotate one."""

BEST, LATEST = "best", "latest"
MODELS = (BEST, LATEST)
"""The checkpoints that hold a whole model, in the order the pickers offer them."""

EPOCH_PREFIX = "epoch_"


class CheckpointError(RunError):
    """A run has no checkpoint of the kind asked for, or the request does not name a checkpoint."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint file of a run: its name ("best", "latest", "epoch_0003"), epoch and path."""

    run_id: str
    name: str
    epoch: int
    path: Path

    @property
    def is_model(self) -> bool:
        """True for a whole model Keras can load ("best", "latest"), False for an epoch's weights."""
        return self.name in MODELS

    @property
    def modified(self) -> int:
        """The file's modification time in nanoseconds: it changes when the worker rewrites it."""
        return self.path.stat().st_mtime_ns


@dataclass(frozen=True)
class EpochScore:
    """How one epoch of a run scored by the measure "best" is judged by (`cnnlab.store.best`)."""

    epoch: int
    monitor: str  # "val_accuracy", or "accuracy" for a run without a validation split
    value: float | None  # None when the epoch has no such metric recorded

    def describe(self) -> str:
        """For a picker or a caption: "epoch 3, val. accuracy 91.2%"."""
        if self.value is None:
            return f"epoch {self.epoch}"
        label = "val. accuracy" if self.monitor == best.MONITOR else "accuracy"
        return f"epoch {self.epoch}, {label} {self.value:.1%}"


def checkpoint_name(which: str | int) -> str:
    """The store's name for a request: "best", "latest", or "epoch_0003" for 3 or "epoch_0003"."""
    if isinstance(which, str) and which.startswith(EPOCH_PREFIX) and which[len(EPOCH_PREFIX) :].isdigit():
        which = int(which[len(EPOCH_PREFIX) :])
    if isinstance(which, int) and not isinstance(which, bool) and which >= 0:
        return f"{EPOCH_PREFIX}{which:04d}"
    if which in MODELS:
        return str(which)
    raise CheckpointError(
        f"A checkpoint is 'best', 'latest' or an epoch number (0 or more); got {which!r}. "
        "Ask for one of those."
    )


def _describe_saved(saved: dict[str, int]) -> str:
    if not saved:
        return "it has none yet (one is saved at the end of each epoch)"
    names = [
        f"{name} (epoch {epoch})" if name in MODELS else f"epoch {epoch}" for name, epoch in saved.items()
    ]
    return "it has " + ", ".join(names)


def available(store: RunReader, run_id: str) -> dict[str, int]:
    """The run's checkpoints whose files exist: name ("best", "latest", "epoch_0003") to epoch."""
    return {
        name: epoch
        for name, epoch in store.checkpoints(run_id).items()
        if store.checkpoint_path(run_id, name).is_file()
    }


def find(store: RunReader, run_id: str, which: str | int = BEST) -> Checkpoint:
    """Run `run_id`'s checkpoint `which` ("best", "latest" or an epoch number).

    Raises CheckpointError naming what was asked and the checkpoints the run has when it is not
    saved (yet), or when `which` names no checkpoint.
    """
    name = checkpoint_name(which)
    saved = available(store, run_id)
    if name not in saved:
        asked = name if name in MODELS else f"epoch {int(name[len(EPOCH_PREFIX) :])}"
        raise CheckpointError(
            f"Run {run_id} has no {asked!r} checkpoint: {_describe_saved(saved)}. "
            "Choose one it has, or wait for the run's next epoch to end."
        )
    return Checkpoint(run_id, name, saved[name], store.checkpoint_path(run_id, name))


def models(store: RunReader, run_id: str) -> list[Checkpoint]:
    """The run's whole-model checkpoints whose files exist, "best" before "latest"."""
    saved = store.checkpoints(run_id)
    found = [
        Checkpoint(run_id, name, saved[name], store.checkpoint_path(run_id, name))
        for name in MODELS
        if name in saved
    ]
    return [checkpoint for checkpoint in found if checkpoint.path.is_file()]


def load(checkpoint: Checkpoint) -> TrainedModel:
    """The checkpoint's model in Keras safe mode, not compiled (for predictions and inspection).

    Raises CheckpointError for an epoch's weights, which are not a whole model.
    """
    if not checkpoint.is_model:
        raise CheckpointError(
            f"Checkpoint {checkpoint.name} of run {checkpoint.run_id} holds layer weights only, not a model "
            f"Keras can load; load {BEST!r} or {LATEST!r}, or fork the run from epoch {checkpoint.epoch}."
        )
    import keras  # Here, not at the top: finding checkpoints must not start TensorFlow.

    try:
        return keras.saving.load_model(checkpoint.path, compile=False, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
        # A damaged or half-copied file is a fact about the user's run, not a bug of ours.
        # Named by its file only (Keras's message names the whole path): the server's folders stay off pages.
        said = str(error).replace(str(checkpoint.path), checkpoint.path.name)
        raise CheckpointError(
            f"Checkpoint {checkpoint.name!r} of run {checkpoint.run_id} ({checkpoint.path.name}) cannot be "
            f"loaded: {said}. Choose another checkpoint, or train the run again."
        ) from error


def _score(metrics: pd.DataFrame, epoch: int) -> EpochScore:
    rows = metrics.loc[metrics["epoch"] == epoch].to_dict("records") if len(metrics) else []
    for monitor in (best.MONITOR, best.FALLBACK_MONITOR):
        value = best.monitored_value({monitor: rows[0].get(monitor)}) if rows else None
        if value is not None:
            return EpochScore(epoch, monitor, value)
    return EpochScore(epoch, best.MONITOR, None)


def epoch_score(store: RunReader, run_id: str, epoch: int) -> EpochScore:
    """How epoch `epoch` of the run scored (its validation accuracy, else its accuracy)."""
    return _score(store.epoch_metrics(run_id), epoch)


def best_epoch(store: RunReader, run_id: str) -> EpochScore | None:
    """The run's best epoch by `cnnlab.store.best` and its score, from its epoch metrics; None before
    its first epoch. The worker saves that epoch's model as the `best` checkpoint."""
    metrics = store.epoch_metrics(run_id)
    epoch = best.best_epoch(metrics)
    return None if epoch is None else _score(metrics, epoch)


def _results_are_current(run: RunRecord) -> bool:
    """True when the run has ended and its results describe its last recorded epoch (no epoch since)."""
    return run.status in ENDED and run.last_epoch > 0 and run.result("epochs") == run.last_epoch


def recorded_score(run: RunRecord, epoch: int) -> EpochScore | None:
    """How `epoch` scored, as an ended run's results recorded it (its best epoch's monitored value, or
    its last epoch's metrics), the same figures `epoch_score` reads from the table; None when the
    results do not say (a live run, or an epoch that is neither)."""
    if not _results_are_current(run):
        return None
    if run.result("best_epoch") == epoch:
        for monitor, name in ((best.MONITOR, "best_val_accuracy"), (best.FALLBACK_MONITOR, "best_accuracy")):
            value = run.result(name)
            if value is not None:
                return EpochScore(epoch, monitor, value)
    if run.result("epochs") == epoch:
        for monitor in (best.MONITOR, best.FALLBACK_MONITOR):
            value = best.monitored_value({monitor: run.result(monitor)})
            if value is not None:
                return EpochScore(epoch, monitor, value)
    return None


def recorded_best(run: RunRecord) -> EpochScore | None:
    """The best epoch and its score as an ended run's results recorded them, or None (`recorded_score`)."""
    epoch = run.result("best_epoch")
    return None if epoch is None else recorded_score(run, int(epoch))


def describe(store: RunReader, checkpoint: Checkpoint, run: RunRecord | None = None) -> str:
    """A checkpoint for a picker: "best (epoch 3, val. accuracy 91.2%)", "latest (epoch 5, ...)".

    Given the run, an ended run's score comes from its results (`recorded_score`), not its table."""
    score = None if run is None else recorded_score(run, checkpoint.epoch)
    if score is None:
        score = epoch_score(store, checkpoint.run_id, checkpoint.epoch)
    return f"{checkpoint.name} ({score.describe()})"
