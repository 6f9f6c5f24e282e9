"""The Keras callback that diagnoses a fit as it runs (`cnnlab.runs.views.diagnosis` holds the rules).

`Diagnose` reads what the recording callbacks before it already put in the logs (the loss and
accuracy Keras computed, the validation figures `TelemetrySnapshots` added, the learning rate)
and the dead ReLU shares telemetry measured in the same validation pass, so it costs no extra
pass over any data. Its place in the order is set out in `cnnlab.runs.worker.training.recording_callbacks`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import keras

from cnnlab.runs.views import diagnosis
from cnnlab.runs.worker.callbacks import FitProgress, learning_rate
from cnnlab.store.run_store import Store


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(float(value)) else None


class Diagnose(keras.callbacks.Callback):
    """Judge every whole epoch by the rules of `cnnlab.runs.views.diagnosis` and log what they find.

    Each kind of diagnosis is logged once per fit, as an event of the run (level `error` for a
    divergence, `warning` otherwise). A divergence also stops the fit after the epoch and is kept
    in `divergence`, for the job to end the run `diverged` with its cause as the reason. A NaN
    or infinite loss (`StopOnDivergence`) becomes a divergence diagnosis too, naming the learning rate.
    Put it after `EpochMetrics` (the epoch's row is queued before the event) and before `ControlRequests`.

    Args:
        store: The run store.
        run_id: The run being trained.
        progress: The fit's `FitProgress` (whole epochs, where a NaN loss happened).
        facts: The classes and the chance accuracy (`diagnosis.RunFacts`; its `first_loss` is
            filled in from the fit's first batch when the fit starts from a fresh model, at epoch 0,
            and its `batches_per_epoch` from the fit's steps per epoch when it starts).
        dead_shares: A function giving the latest dead ReLU share of each ReLU layer (from
            telemetry), or None.

    Attributes:
        found: Every diagnosis logged in this fit, in order.
        divergence: The divergence diagnosis that stopped the fit, or None.

    Example:

    >>> progress = FitProgress()
    >>> facts = diagnosis.RunFacts(num_classes=10, chance_accuracy=0.1)
    >>> doctor = Diagnose(store, run_id, progress, facts)
    >>> model.fit(x, y, epochs=5, callbacks=[progress, StopOnDivergence(progress), doctor])
    >>> [found.kind for found in doctor.found]
    ['not learning']
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        progress: FitProgress,
        facts: diagnosis.RunFacts,
        dead_shares: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__()
        self.store, self.run_id, self.progress = store, run_id, progress
        self.facts, self.dead_shares = facts, dead_shares
        self.history: list[diagnosis.EpochFigures] = []
        self.found: list[diagnosis.Diagnosis] = []
        self.divergence: diagnosis.Diagnosis | None = None
        self.fresh_model: bool | None = None

    def _report(self, found: diagnosis.Diagnosis) -> None:
        self.found.append(found)
        self.store.add_diagnosis(self.run_id, found)
        if found.kind == diagnosis.DIVERGED:
            self.divergence = found
            self.model.stop_training = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        steps = (self.params or {}).get("steps")
        if isinstance(steps, int) and steps > 0 and not self.facts.batches_per_epoch:
            self.facts = dataclasses.replace(self.facts, batches_per_epoch=steps)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.fresh_model is None:
            # A continued or forked fit starts from trained weights: its first loss is no start.
            self.fresh_model = epoch == 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.fresh_model and math.isnan(self.facts.first_loss):
            loss = _number((logs or {}).get("loss"))
            if loss is not None:
                self.facts = dataclasses.replace(self.facts, first_loss=loss)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        where = self.progress.divergence
        if where is not None and self.divergence is None:
            self._report(
                diagnosis.not_finite(where.loss, where.epoch, where.batch, learning_rate(self.model))
            )
            return
        loss = _number(logs.get("loss"))
        if not self.progress.epoch_is_whole() or loss is None:
            return
        self.history.append(
            diagnosis.EpochFigures(
                epoch=epoch + 1,
                loss=loss,
                accuracy=_number(logs.get("accuracy")),
                val_loss=_number(logs.get("val_loss")),
                val_accuracy=_number(logs.get("val_accuracy")),
                learning_rate=learning_rate(self.model),
            )
        )
        reported = {found.kind for found in self.found}
        shares = dict(self.dead_shares()) if self.dead_shares is not None else None
        for found in diagnosis.examine(self.history, self.facts, reported, shares):
            self._report(found)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        # A NaN in the last epoch's batches: Keras still calls on_epoch_end, but be sure.
        where = self.progress.divergence
        if where is not None and self.divergence is None:
            self._report(
                diagnosis.not_finite(where.loss, where.epoch, where.batch, learning_rate(self.model))
            )
