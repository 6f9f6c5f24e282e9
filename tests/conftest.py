"""Shared test settings: keep TensorFlow quiet and every run's files inside a temporary home."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home with one run really trained on digits for one epoch, shared by the tests that only
    read it (evaluation, Evaluate and Predict pages): (home, run id)."""
    from trained_runs import train_digits_run

    home = tmp_path_factory.mktemp("trained_home")
    return home, train_digits_run(home)
