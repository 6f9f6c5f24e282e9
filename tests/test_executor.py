"""The local executor: cold, warm and reused worker processes, how they ended, and whether a pid is a worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from waiting import wait_until

from cnnlab import specs
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import LocalProcessExecutor, process_alive
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.runs.worker import threads
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

TESTS = Path(__file__).resolve().parent
SPEC = specs.ModelSpec((8, 8, 1), (specs.LayerSpec("Flatten"), specs.LayerSpec("Dense", {"units": 2})))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    return Store(tmp_path / "home")


def _claimed_run(store: Store, epochs: int = 1) -> str:
    """A run in `starting`, as the scheduler hands it to an executor."""
    run = store.create_run(
        RunRequest(
            spec=SPEC,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=epochs),
        )
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
        worker_like.kill()
        # Killed but not yet reaped, it is a zombie: its pid exists, yet no worker runs there.
        wait_until(
            lambda: psutil.Process(worker_like.pid).status() == psutil.STATUS_ZOMBIE,
            "the killed worker to exit",
        )
        assert not process_alive(worker_like.pid)
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


@pytest.mark.parametrize(
    ("setting", "lower_by"), [(None, threads.WORKER_NICENESS), ("0", 0), ("3", 3), ("many", 0)]
)
def test_a_worker_trains_at_a_lower_cpu_priority_than_the_server(
    store: Store, monkeypatch: pytest.MonkeyPatch, setting: str | None, lower_by: int
) -> None:
    # The server's pages and the browser on its machine go first when they want a core a worker uses;
    # a bad setting leaves the worker at the server's priority and says so in the run's log.
    if setting is None:
        monkeypatch.delenv("CNNLAB_WORKER_NICENESS", raising=False)
    else:
        monkeypatch.setenv("CNNLAB_WORKER_NICENESS", setting)
    executor = LocalProcessExecutor(store.home, entry="fake_jobs:counting_job", threads=1, warm=False)
    run_id = _claimed_run(store)
    executor.submit(run_id)
    wait_until(lambda: not executor.alive(run_id), "the worker exited")
    results = store.get_run(run_id).results
    assert results is not None and results["niceness"] == min(19, os.nice(0) + lower_by)
    log = (store.run_folder(run_id) / "worker.log").read_text()
    assert ("CNNLAB_WORKER_NICENESS must be a whole number from 0 to 19; got 'many'" in log) == (
        setting == "many"
    )


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


def _events(store: Store, run_id: str) -> list[str]:
    return [str(message) for message in store.events(run_id)["message"]]


def test_queued_runs_are_taken_one_after_another_by_the_worker_that_is_already_warm(store: Store) -> None:
    # Three runs queue behind one slot; the worker that ends a run takes the next without a restart,
    # each run's output goes to its own log, and its events say the job was loaded before it came.
    executor = LocalProcessExecutor(store.home, entry="fake_jobs:counting_job", threads=1, reuse=True)
    target = Scheduler(store, executor, max_workers=1, poll_seconds=0.1)
    runs = [
        target.store.create_run(
            RunRequest(
                spec=SPEC,
                data_settings=specs.DataSettings(),
                training_settings=specs.TrainingSettings(epochs=1),
            )
        )
        for _ in range(3)
    ]
    target.start()
    try:
        for run in runs:
            assert target.wait(run.id, timeout=60).status == Status.COMPLETED
        first_pid = store.get_run(runs[0].id).worker_pid
        assert first_pid is not None
        for order, run in enumerate(runs):
            finished = store.get_run(run.id)
            assert finished.worker_pid == first_pid and finished.results["pid"] == first_pid  # type: ignore[index]  # results set by the job
            assert f"worker process {first_pid} took the run (warm" in "\n".join(_events(store, run.id))
            assert f"run {order + 1} of it" in "\n".join(_events(store, run.id))
            assert (store.run_folder(run.id) / "worker.log").exists()
        wait_until(lambda: executor.warm_process_id == first_pid, "the worker waits for a fourth run")
    finally:
        target.shutdown()
    wait_until(lambda: not process_alive(first_pid), "the let-go worker exited")


def test_a_reused_worker_is_killed_only_for_its_current_run_and_ends_after_a_failure(store: Store) -> None:
    executor = LocalProcessExecutor(store.home, entry="fake_jobs:counting_job", threads=1, reuse=True)
    first = _claimed_run(store)
    pid = executor.submit(first)  # No warm worker yet: a fresh one is started and handed the run.
    wait_until(lambda: not executor.alive(first), "the first run ended")
    assert "finished the run" in executor.describe_exit(first)
    executor.cancel(first)  # The worker has moved on from that run: it is not killed for it.
    assert executor.warm_process_id == pid and process_alive(pid)
    long_run = _claimed_run(store, epochs=500)
    assert executor.submit(long_run) == pid
    wait_until(lambda: store.get_run(long_run).status == Status.RUNNING, "the long run is running")
    executor.cancel(long_run)
    assert not executor.alive(long_run) and executor.describe_exit(long_run) == "killed by SIGKILL"
    store.set_status(long_run, Status.STOPPED, reason="Killed by the test.")  # As the scheduler would.
    # Crash isolation: a failed run ends its process, so the next run gets a fresh one.
    failing_executor = LocalProcessExecutor(store.home, entry="fake_jobs:failing_job", threads=1, reuse=True)
    failing = _claimed_run(store)
    failed_pid = failing_executor.submit(failing)
    wait_until(lambda: not failing_executor.alive(failing), "the failing run ended")
    assert store.get_run(failing).status == Status.FAILED
    wait_until(lambda: not process_alive(failed_pid), "the worker of the failed run exited")
    assert failing_executor.warm_process_id is None


@pytest.mark.slow
def test_a_reused_worker_trains_the_same_run_to_the_same_numbers_as_a_fresh_one(tmp_path: Path) -> None:
    # The oracle for "nothing leaks between runs": one real worker trains two identical seeded runs in
    # a row (the second after clearing Keras's state) and records the same losses for both.
    store = Store(tmp_path / "home")
    executor = LocalProcessExecutor(store.home, threads=1, reuse=True)
    target = Scheduler(store, executor, max_workers=1, poll_seconds=0.1)
    settings = specs.TrainingSettings(epochs=1, batch_size=64, seed=3)
    layers = (
        specs.LayerSpec("Conv2D", {"filters": 4, "kernel_size": 3, "activation": "relu"}),
        specs.LayerSpec("Flatten"),
        specs.LayerSpec("Dense", {"units": 10, "activation": "softmax"}),
    )
    runs = [
        store.create_run(
            RunRequest(
                spec=specs.ModelSpec((8, 8, 1), layers),
                data_settings=specs.DataSettings(subset=240, seed=3),
                training_settings=settings,
            )
        )
        for _ in range(2)
    ]
    target.start()
    try:
        ended = [target.wait(run.id, timeout=300) for run in runs]
    finally:
        target.shutdown()
    assert [run.status for run in ended] == [Status.COMPLETED, Status.COMPLETED], ended[0].traceback
    assert ended[0].worker_pid == ended[1].worker_pid  # The same process trained both.
    first, second = (store.batch_metrics(run.id)["loss"].tolist() for run in ended)
    assert len(first) > 1 and first == pytest.approx(second, rel=1e-5)
