"""TensorFlow thread counts per worker: the cores shared out among the workers allowed at once."""

from __future__ import annotations

import os

import pytest

from cnnlab.errors import RunError
from cnnlab.runs.queue import capacity
from cnnlab.runs.worker import threads

THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*THREAD_VARIABLES, "CNNLAB_MAX_WORKERS", "CNNLAB_WORKER_THREADS"):
        monkeypatch.delenv(name, raising=False)


def test_default_concurrency_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert capacity.default_max_workers() == max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "3")
    assert capacity.default_max_workers() == 3
    for bad in ("zero", "0", "-2"):
        monkeypatch.setenv("CNNLAB_MAX_WORKERS", bad)
        with pytest.raises(
            RunError, match=f"CNNLAB_MAX_WORKERS must be a whole number of at least 1; got '{bad}'"
        ):
            capacity.default_max_workers()


def test_the_cores_are_shared_among_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert [capacity.default_threads(workers) for workers in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "4")
    assert capacity.default_threads() == 2


def test_configure_sets_tensorflow_and_openmp_before_tensorflow_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert threads.configure_threads(3) == 3
    assert [os.environ[name] for name in THREAD_VARIABLES] == ["3", "2", "3"]
    monkeypatch.setenv("CNNLAB_WORKER_THREADS", "1")
    assert threads.configure_threads() == 1
    assert [os.environ[name] for name in THREAD_VARIABLES] == ["1", "1", "1"]
    monkeypatch.setenv("CNNLAB_WORKER_THREADS", "many")  # Ignored: the shared-cores rule applies.
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "2")
    assert threads.configure_threads() == 2
