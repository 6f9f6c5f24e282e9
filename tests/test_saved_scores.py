"""The test scores a worker saves for each checkpoint when training ends (`cnnlab.trained.saved_scores`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import datasets
from cnnlab.store.run_store import Store
from cnnlab.trained import checkpoints, evaluation, saved_scores

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow


def test_best_and_latest_of_different_epochs_each_get_their_own_scores(
    peaked_home: tuple[Path, str],
) -> None:
    """With "best" an earlier epoch than "latest", each checkpoint's saved scores are Keras's
    predictions of that checkpoint's file (the worker reused its in-memory model only for "latest")."""
    home, run_id = peaked_home
    store = Store(home)
    run = store.get_run(run_id)
    test_images = datasets.load(run.data()).x_test
    found = {checkpoint.name: checkpoint for checkpoint in checkpoints.models(store, run_id)}
    assert found["best"].epoch < found["latest"].epoch
    saved = {}
    for name, checkpoint in found.items():
        scores = evaluation.load_scores(saved_scores.path(home, checkpoint, "test", run.data_settings))
        assert scores is not None, name
        expected = checkpoints.load(checkpoint).predict(test_images, verbose=0)
        np.testing.assert_allclose(scores.probabilities, expected, atol=1e-5)
        saved[name] = scores.probabilities
    assert not np.allclose(saved["best"], saved["latest"])


def test_no_test_images_saves_nothing(trained_home: tuple[Path, str]) -> None:
    """A run without a test split has nothing to save (the page predicts the validation split)."""
    home, run_id = trained_home
    data = datasets.load(Store(home).get_run(run_id).data())
    empty = dataclasses.replace(data, x_test=data.x_test[:0], y_test=data.y_test[:0])
    assert saved_scores.save_after_training(Store(home), run_id, empty) == []
