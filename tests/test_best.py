"""The one definition of a run's best epoch."""

from __future__ import annotations

import math

import pandas as pd

from cnnlab.store import best


def test_best_epoch_is_the_highest_validation_accuracy_earliest_on_ties() -> None:
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4],
            "val_loss": [0.9, 0.5, 0.4, 0.6],
            "val_accuracy": [0.5, 0.8, 0.8, 0.7],
            "accuracy": [0.5, 0.9, 0.95, 0.99],
        }
    )
    # Epoch 3 has the lowest validation loss, but "best" is judged by validation accuracy.
    assert best.best_epoch(history) == 2


def test_without_validation_the_training_accuracy_decides() -> None:
    history = pd.DataFrame({"epoch": [1, 2, 3], "val_accuracy": [math.nan] * 3, "accuracy": [0.4, 0.7, 0.6]})
    assert best.best_epoch(history) == 2


def test_no_epochs_means_no_best() -> None:
    assert best.best_epoch(pd.DataFrame({"epoch": []})) is None


def test_improvement_rules() -> None:
    assert best.is_improvement(0.5, None)
    assert best.is_improvement(0.6, 0.5)
    assert not best.is_improvement(0.5, 0.5)
    assert not best.is_improvement(None, 0.5)
    assert best.monitored_value({"val_accuracy": float("nan"), "accuracy": 0.3}) == 0.3
