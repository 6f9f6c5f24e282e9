"""The worker: final statuses, failures with tracebacks, control between batches, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import fake_jobs
import pytest

from cnnlab import specs
from cnnlab.runs import statuses, threads, worker
from cnnlab.runs.store import Store

SPEC = {
    "name": "tiny",
    "input_shape": [8, 8, 1],
    "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}],
}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    return Store()


def _claimed_run(store: Store, epochs: int = 1) -> str:
    run = store.create_run(
        spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings(epochs=epochs)
    )
    store.set_status(run.id, statuses.STARTING)
    return run.id


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_job_that_returns_completes_with_a_heartbeat(store: Store) -> None:
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, fake_jobs.counting_job) == statuses.COMPLETED
    run = store.get_run(run_id)
    assert run.status == statuses.COMPLETED
    assert run.worker_pid == os.getpid() and run.heartbeat_at is not None
    assert len(store.batch_metrics(run_id)) == fake_jobs.BATCHES_PER_EPOCH


def test_a_bug_fails_the_run_with_its_traceback(store: Store) -> None:
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, fake_jobs.failing_job) == statuses.FAILED
    run = store.get_run(run_id)
    assert run.status == statuses.FAILED
    assert run.reason == "Training failed with ValueError: bad value 42"
    assert "bug" in run.hint
    assert "Traceback" in run.traceback and "failing_job" in run.traceback


def test_a_user_error_fails_with_its_own_message(store: Store) -> None:
    run_id = _claimed_run(store)
    worker.run_job(run_id, store, fake_jobs.unavailable_job)
    run = store.get_run(run_id)
    assert run.status == statuses.FAILED
    assert run.reason.startswith("MNIST is not available offline")
    assert run.traceback and run.hint is None


def test_a_diverged_outcome_keeps_its_hint(store: Store) -> None:
    run_id = _claimed_run(store)
    worker.run_job(run_id, store, fake_jobs.diverging_job)
    run = store.get_run(run_id)
    assert (run.status, run.hint) == (statuses.DIVERGED, "Lower the learning rate.")


def test_a_job_can_be_named_by_module_and_function(store: Store) -> None:
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, "fake_jobs:diverging_job") == statuses.DIVERGED
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, "no_such_module:run") == statuses.FAILED
    assert "ModuleNotFoundError" in store.get_run(run_id).reason


def test_pause_resume_and_stop_between_batches(store: Store) -> None:
    run_id = _claimed_run(store, epochs=200)
    thread = threading.Thread(target=worker.run_job, args=(run_id, store, fake_jobs.counting_job))
    thread.start()
    _wait_for(lambda: len(store.batch_metrics(run_id)) >= 3)
    store.request_control(run_id, "pause")
    _wait_for(lambda: store.get_run(run_id).status == statuses.PAUSED)
    paused_count = len(store.batch_metrics(run_id))
    time.sleep(0.5)
    assert len(store.batch_metrics(run_id)) == paused_count
    assert store.pending_control(run_id) is None
    store.request_control(run_id, "resume")
    _wait_for(lambda: len(store.batch_metrics(run_id)) > paused_count + 2)
    assert store.get_run(run_id).status == statuses.RUNNING
    requested = time.monotonic()
    store.request_control(run_id, "stop")
    thread.join(timeout=10)
    assert time.monotonic() - requested < 2.0
    run = store.get_run(run_id)
    assert run.status == statuses.STOPPED and run.control is None
    messages = list(store.events(run_id)["message"])
    assert "running -> paused" in messages and "paused -> running" in messages


def test_stop_while_paused(store: Store) -> None:
    run_id = _claimed_run(store, epochs=200)
    thread = threading.Thread(target=worker.run_job, args=(run_id, store, fake_jobs.counting_job))
    thread.start()
    _wait_for(lambda: len(store.batch_metrics(run_id)) >= 1)
    store.request_control(run_id, "pause")
    _wait_for(lambda: store.get_run(run_id).status == statuses.PAUSED)
    store.request_control(run_id, "stop")
    thread.join(timeout=10)
    assert store.get_run(run_id).status == statuses.STOPPED


def test_configure_threads_sets_tensorflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
        "TF_CPP_MIN_LOG_LEVEL",
        "OMP_NUM_THREADS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CNNLAB_WORKER_THREADS", "")
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "1")
    assert threads.configure_threads() == (os.cpu_count() or 1)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert threads.configure_threads(3) == 3
    assert (os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"]) == ("3", "2")


def _worker_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "cnnlab.runs.worker", *arguments]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def test_the_worker_runs_as_its_own_process(store: Store) -> None:
    run_id = _claimed_run(store)
    command = _worker_command(
        run_id, "--home", str(store.home), "--entry", "fake_jobs:counting_job", "--threads", "1"
    )
    completed = subprocess.run(command, env=_environment(), capture_output=True, timeout=60)
    assert completed.returncode == 0, completed.stderr.decode()
    run = store.get_run(run_id)
    assert run.status == statuses.COMPLETED
    assert run.results["threads"] == "1" and run.results["pid"] != os.getpid()


def test_a_failing_worker_process_exits_non_zero(store: Store) -> None:
    run_id = _claimed_run(store)
    command = _worker_command(run_id, "--home", str(store.home), "--entry", "fake_jobs:failing_job")
    completed = subprocess.run(command, env=_environment(), capture_output=True, timeout=60)
    assert completed.returncode == 1
    assert store.get_run(run_id).status == statuses.FAILED


def test_a_warm_worker_waits_for_a_run_id_on_stdin(store: Store) -> None:
    run_id = _claimed_run(store)
    command = _worker_command("--warm", "--home", str(store.home), "--entry", "fake_jobs:counting_job")
    process = subprocess.Popen(command, env=_environment(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    assert process.poll() is None
    process.communicate(f"{run_id}\n".encode(), timeout=60)
    assert process.returncode == 0
    assert store.get_run(run_id).status == statuses.COMPLETED
    assert (store.run_folder(run_id) / "worker.log").exists()
    # A warm worker whose input closes without a run exits quietly.
    idle = subprocess.run(command, env=_environment(), input=b"", capture_output=True, timeout=60)
    assert idle.returncode == 0
