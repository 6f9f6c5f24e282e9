"""The scheduler: queue and limit, warm workers, SIGKILL detection, reconciliation after a restart.

Worker processes are real (`python -m cnnlab.runs.worker.main`, a fresh interpreter) and run the light
jobs of tests/fake_jobs.py; tests/test_training.py runs the real training job through it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from made_runs import make_run
from waiting import wait_until

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import executor_choice
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import DIED, Scheduler
from cnnlab.store import statuses
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

SPEC = specs.ModelSpec.from_dict(
    {
        "name": "tiny",
        "input_shape": [8, 8, 1],
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}],
    }
)
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    return Store()


def _scheduler(
    store: Store, *, warm: bool = False, entry: str = "fake_jobs:counting_job", **options: float
) -> Scheduler:
    executor = LocalProcessExecutor(store.home, entry=entry, threads=1, warm=warm)
    return Scheduler(store, executor, poll_seconds=0.1, **options)


def _submit(target: Scheduler, epochs: int = 1, **details: str) -> RunRecord:
    return target.submit(
        RunRequest(spec=SPEC, training_settings=specs.TrainingSettings(epochs=epochs), **details)
    )


def test_two_runs_at_once_wait_their_turn_under_the_limit(store: Store) -> None:
    target = _scheduler(store, max_workers=1).start()
    try:
        first = _submit(target, epochs=3, owner="ada")
        second = _submit(target, epochs=1, owner="bob")
        assert store.get_run(first.id).status in statuses.LIVE
        assert second.status == Status.QUEUED and second.queue_position == 1
        third = _submit(target)
        assert third.queue_position == 2
        target.stop(third.id)
        assert store.get_run(third.id).status == Status.STOPPED
        for run in (first, second):
            assert target.wait(run.id, timeout=30).status == Status.COMPLETED
        first, second = store.get_run(first.id), store.get_run(second.id)
        assert first.ended_at is not None and second.started_at is not None
        assert second.started_at >= first.ended_at  # Never two at once under a limit of one.
        assert first.results is not None and first.results["threads"] == "1"
    finally:
        target.shutdown()


def test_a_stop_ends_a_running_worker_after_at_most_one_more_batch(store: Store) -> None:
    target = _scheduler(store, entry="fake_jobs:every_batch_job").start()
    try:
        run = _submit(target, epochs=500)
        wait_until(lambda: len(store.batch_metrics(run.id)) >= 3, "the worker recorded three batches")
        target.stop(run.id)
        # The request is in the store now; the worker may finish the batch it is in, no more.
        recorded_after_request = len(store.batch_metrics(run.id))
        wait_until(lambda: store.get_run(run.id).is_ended, "the stopped run ended")
        stopped = store.get_run(run.id)
        assert (stopped.status, stopped.reason) == (Status.STOPPED, "Stopped by the user.")
        assert len(store.batch_metrics(run.id)) <= recorded_after_request + 1
        assert stopped.control is None  # The request was answered.
    finally:
        target.shutdown()


def test_a_sigkilled_worker_is_marked_interrupted_and_keeps_its_metrics(store: Store) -> None:
    target = _scheduler(store).start()
    try:
        run = _submit(target, epochs=500)
        wait_until(lambda: len(store.batch_metrics(run.id)) >= 20, "the worker recorded 20 batches")
        pid = store.get_run(run.id).worker_pid
        assert pid is not None
        recorded = store.batch_metrics(run.id)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: store.get_run(run.id).is_ended, "the killed worker's run ended")
        failed = store.get_run(run.id)
        assert failed.status == Status.INTERRUPTED  # Not the run's fault: it can be continued.
        assert failed.reason == "The worker process died (killed by SIGKILL)."
        assert failed.hint is not None and "continue it from its last complete epoch" in failed.hint
        after = store.batch_metrics(run.id)
        assert len(after) >= len(recorded)
        assert list(after["step"][: len(recorded)]) == list(recorded["step"])
        assert f"{DIED} (killed by SIGKILL)" in list(store.events(run.id)["message"])
    finally:
        target.shutdown()


def test_a_warm_worker_takes_the_next_run(store: Store) -> None:
    target = _scheduler(store, warm=True).start()
    try:
        executor = target.executor
        assert isinstance(executor, LocalProcessExecutor)
        warm = executor._warm_process
        assert warm is not None and warm.poll() is None and executor.warm_process_id == warm.pid
        run = _submit(target)
        assert store.get_run(run.id).worker_pid == warm.pid  # Handed over, no new process started.
        finished = target.wait(run.id, timeout=60)
        assert finished.status == Status.COMPLETED
        assert finished.results is not None and finished.results["pid"] == warm.pid  # The job ran in it.
        # A new warm worker is made ready once the slot is free again.
        wait_until(lambda: executor.warm_process_id not in (None, warm.pid), "a new warm worker was started")
    finally:
        target.shutdown()
    assert warm.poll() is not None


def test_the_workers_run_the_job_cnnlab_worker_entry_names(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The setting the browser tests start their servers with: the server's scheduler (no executor
    given) hands its runs, and its warm worker, the job named, here the light one of fake_jobs.py."""
    monkeypatch.setenv(executor_choice.ENTRY_VARIABLE, "fake_jobs:counting_job")
    target = Scheduler(store, poll_seconds=0.1).start()
    try:
        run = _submit(target)
        finished = target.wait(run.id, timeout=60)
        assert finished.status == Status.COMPLETED
        assert finished.results is not None and finished.results["pid"] == finished.worker_pid
        assert store.batch_metrics(run.id)["step"].tolist() == list(range(10))  # One epoch of the light job.
    finally:
        target.shutdown()
    monkeypatch.setenv(executor_choice.ENTRY_VARIABLE, "fake_jobs")
    with pytest.raises(RunError, match="module:function; got 'fake_jobs'"):
        Scheduler(store)


def test_a_worker_that_cannot_start_fails_the_run(store: Store) -> None:
    target = _scheduler(store, entry="fake_jobs:no_such_job").start()
    try:
        run = _submit(target)
        failed = target.wait(run.id, timeout=60)
        assert failed.status == Status.FAILED
        assert failed.reason is not None and "fake_jobs:no_such_job" in failed.reason
    finally:
        target.shutdown()


def _create(store: Store) -> RunRecord:
    return make_run(store, spec=SPEC)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_restart_marks_runs_without_a_worker_interrupted(store: Store) -> None:
    # A run whose worker is alive, launched by a scheduler (not watching) that is still around.
    first = _scheduler(store, max_workers=5)
    alive = _submit(first, epochs=300)
    try:
        wait_until(lambda: len(store.batch_metrics(alive.id)) > 0, "the live worker recorded a batch")
        # A run whose worker process is gone, and one whose worker stopped beating long ago.
        gone = _create(store)
        claimed = store.claim_next_queued(5)
        assert claimed is not None and claimed.id == gone.id
        store.set_status(gone.id, Status.RUNNING)
        store.heartbeat(gone.id, _dead_pid())
        silent = _create(store)
        store.claim_next_queued(5)
        with store.database.transaction() as connection:
            connection.execute("UPDATE runs SET heartbeat_at = 0 WHERE id = ?", (silent.id,))
        queued = _create(store)

        restarted = _scheduler(store, max_workers=5, stale_seconds=60.0)
        interrupted = restarted.reconcile()
        assert sorted(interrupted) == sorted([gone.id, silent.id])
        for run_id in interrupted:
            run = store.get_run(run_id)
            assert run.status == Status.INTERRUPTED
            assert run.reason is not None and "restarted" in run.reason
            assert run.hint is not None and "Continue" in run.hint
        assert store.get_run(alive.id).status == Status.RUNNING
        assert store.get_run(queued.id).status == Status.QUEUED
        # An interrupted run can be continued: it goes back to the queue.
        store.set_status(gone.id, Status.QUEUED)
        assert [run.id for run in store.queued_runs()] == [queued.id, gone.id]
    finally:
        first.stop(alive.id)
        assert first.wait(alive.id, timeout=10).status == Status.STOPPED


def test_a_scheduler_notices_a_foreign_worker_dying(store: Store) -> None:
    launcher = _scheduler(store).start()
    watcher = _scheduler(store).start()
    try:
        run = _submit(launcher, epochs=500)
        wait_until(lambda: len(store.batch_metrics(run.id)) > 0, "the worker recorded a batch")
        launcher.shutdown()  # The launcher goes away; its worker carries on.
        pid = store.get_run(run.id).worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        launcher.executor.alive(run.id)  # Reap the child so it is not left a zombie.
        wait_until(lambda: store.get_run(run.id).is_ended, "the other scheduler ended the run")
        failed = store.get_run(run.id)
        assert failed.status == Status.INTERRUPTED
        assert failed.reason == f"The worker process died (its process {pid} has exited)."
    finally:
        watcher.shutdown()
        launcher.shutdown()


def test_kill_ends_a_worker_at_once(store: Store) -> None:
    target = _scheduler(store).start()
    try:
        run = _submit(target, epochs=500)
        wait_until(lambda: len(store.batch_metrics(run.id)) > 0, "the worker recorded a batch")
        target.kill(run.id)
        stopped = store.get_run(run.id)
        assert stopped.status == Status.STOPPED and stopped.reason == "Killed by the user."
        assert not target.executor.alive(run.id)
    finally:
        target.shutdown()
