"""The local executor: cold and warm worker processes, how they ended, and whether a pid is a worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from waiting import wait_until

from cnnlab import specs
from cnnlab.runs.executor import LocalProcessExecutor, process_alive
from cnnlab.runs.statuses import Status
from cnnlab.runs.store import Store

TESTS = Path(__file__).resolve().parent
SPEC = specs.ModelSpec((8, 8, 1), (specs.LayerSpec("Flatten"), specs.LayerSpec("Dense", {"units": 2})))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    return Store(tmp_path / "home")


def _claimed_run(store: Store, epochs: int = 1) -> str:
    """A run in `starting`, as the scheduler hands it to an executor."""
    run = store.create_run(
        spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings(epochs=epochs)
    )
    claimed = store.claim_next_queued(1)
    assert claimed is not None and claimed.id == run.id
    return run.id


def test_process_alive_knows_cnnlab_processes_from_others_and_the_dead() -> None:
    # A process whose command line names cnnlab counts; after it is killed and reaped it does not.
    worker_like = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "cnnlab"], stdin=subprocess.PIPE
    )
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert process_alive(worker_like.pid)
        assert not process_alive(other.pid)  # A reused pid of another program is not our worker.
    finally:
        for process in (worker_like, other):
            process.kill()
            process.wait()
    assert not process_alive(worker_like.pid)


def test_a_cold_worker_runs_a_job_and_tells_how_it_ended(store: Store) -> None:
    executor = LocalProcessExecutor(store.home, entry="fake_jobs:counting_job", threads=1, warm=False)
    executor.prepare()
    assert executor.warm_process_id is None  # Warm workers are off.
    run_id = _claimed_run(store)
    pid = executor.submit(run_id)
    assert executor.alive(run_id)
    wait_until(lambda: not executor.alive(run_id), "the worker exited")
    assert executor.describe_exit(run_id) == "exit code 0"
    finished = store.get_run(run_id)
    assert finished.status == Status.COMPLETED and finished.results is not None
    assert finished.results["pid"] == pid
    assert (store.run_folder(run_id) / "worker.log").exists()
    executor.forget(run_id)
    assert executor.describe_exit(run_id) == "not started here" and not executor.alive(run_id)


def test_cancel_kills_a_worker_at_once(store: Store) -> None:
    executor = LocalProcessExecutor(store.home, entry="fake_jobs:counting_job", threads=1, warm=False)
    run_id = _claimed_run(store, epochs=500)
    executor.submit(run_id)
    assert executor.describe_exit(run_id) == "still running"
    executor.cancel(run_id)
    assert not executor.alive(run_id)
    assert executor.describe_exit(run_id) == "killed by SIGKILL"


def test_a_warm_worker_waits_takes_one_run_and_is_let_go(store: Store) -> None:
    executor = LocalProcessExecutor(store.home, entry="fake_jobs:counting_job", threads=1, warm=True)
    executor.prepare()
    warm_pid = executor.warm_process_id
    assert warm_pid is not None
    executor.prepare()  # One warm worker at a time.
    assert executor.warm_process_id == warm_pid
    run_id = _claimed_run(store)
    assert executor.submit(run_id) == warm_pid
    assert executor.warm_process_id is None  # It is no longer waiting.
    wait_until(lambda: not executor.alive(run_id), "the warm worker finished the run")
    assert store.get_run(run_id).status == Status.COMPLETED
    executor.prepare()
    spare = executor._warm_process
    assert spare is not None and spare.pid != warm_pid
    executor.shutdown()  # Closing its input lets the spare go.
    assert spare.poll() is not None and executor.warm_process_id is None
