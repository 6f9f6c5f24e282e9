"""The scheduler: queue and limit, warm workers, SIGKILL detection, reconciliation after a restart.

Worker processes are real (`python -m cnnlab.runs.worker`, a fresh interpreter) and run the light
jobs of tests/fake_jobs.py; tests/test_training.py runs the real training job through it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.runs import statuses, threads
from cnnlab.runs.scheduler import LocalProcessExecutor, Scheduler
from cnnlab.runs.store import Store

SPEC = {
    "name": "tiny",
    "input_shape": [8, 8, 1],
    "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}],
}
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    return Store()


def _scheduler(
    store: Store, *, warm: bool = False, entry: str = "fake_jobs:counting_job", **options
) -> Scheduler:
    executor = LocalProcessExecutor(store.home, entry=entry, threads=1, warm=warm)
    return Scheduler(store, executor, poll_seconds=0.1, **options)


def _submit(target: Scheduler, epochs: int = 1, **details):
    return target.submit(
        spec=SPEC,
        data_settings=specs.DataSettings(),
        training_settings=specs.TrainingSettings(epochs=epochs),
        **details,
    )


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_default_concurrency_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_MAX_WORKERS", raising=False)
    assert threads.default_max_workers() == max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "3")
    assert threads.default_max_workers() == 3
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "zero")
    with pytest.raises(RunError, match="CNNLAB_MAX_WORKERS"):
        threads.default_max_workers()


def test_two_runs_at_once_wait_their_turn_under_the_limit(store: Store) -> None:
    target = _scheduler(store, max_workers=1).start()
    try:
        first = _submit(target, epochs=3, owner="ada")
        second = _submit(target, epochs=1, owner="bob")
        assert store.get_run(first.id).status in statuses.LIVE
        assert second.status == statuses.QUEUED and second.queue_position == 1
        third = _submit(target)
        assert third.queue_position == 2
        target.stop(third.id)
        assert store.get_run(third.id).status == statuses.STOPPED
        for run in (first, second):
            assert target.wait(run.id, timeout=30).status == statuses.COMPLETED
        first, second = store.get_run(first.id), store.get_run(second.id)
        assert second.started_at >= first.ended_at
        assert first.results["threads"] == "1"
    finally:
        target.shutdown()


def test_stop_reaches_a_running_worker_within_two_seconds(store: Store) -> None:
    target = _scheduler(store).start()
    try:
        run = _submit(target, epochs=500)
        _wait_for(lambda: len(store.batch_metrics(run.id)) > 0)
        requested = time.monotonic()
        target.stop(run.id)
        _wait_for(lambda: store.get_run(run.id).is_ended, timeout=5)
        assert time.monotonic() - requested < 2.0
        assert store.get_run(run.id).status == statuses.STOPPED
    finally:
        target.shutdown()


def test_a_sigkilled_worker_is_marked_failed_and_keeps_its_metrics(store: Store) -> None:
    target = _scheduler(store).start()
    try:
        run = _submit(target, epochs=500)
        _wait_for(lambda: len(store.batch_metrics(run.id)) >= 20)
        pid = store.get_run(run.id).worker_pid
        recorded = store.batch_metrics(run.id)
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        _wait_for(lambda: store.get_run(run.id).is_ended, timeout=5)
        assert time.monotonic() - killed < 3.0
        failed = store.get_run(run.id)
        assert failed.status == statuses.FAILED
        assert failed.reason == "The worker process died (killed by SIGKILL)."
        after = store.batch_metrics(run.id)
        assert len(after) >= len(recorded)
        assert list(after["step"][: len(recorded)]) == list(recorded["step"])
        assert "the worker process died" in " ".join(store.events(run.id)["message"])
    finally:
        target.shutdown()


def test_a_warm_worker_takes_the_next_run(store: Store) -> None:
    target = _scheduler(store, warm=True).start()
    try:
        warm = target.executor._warm_process
        assert warm is not None and warm.poll() is None
        time.sleep(1.0)  # Let it finish importing.
        submitted = time.monotonic()
        run = _submit(target)
        _wait_for(lambda: len(store.batch_metrics(run.id)) > 0)
        latency = time.monotonic() - submitted
        assert store.get_run(run.id).worker_pid == warm.pid
        assert latency < 5.0  # About 0.1 s here; benchmarks/first_metric_latency.py measures the real job.
        assert target.wait(run.id, timeout=30).status == statuses.COMPLETED
        # A new warm worker is made ready once the slot is free again.
        _wait_for(lambda: target.executor._warm_process not in (None, warm))
    finally:
        target.shutdown()
    assert warm.poll() is not None


def test_a_worker_that_cannot_start_fails_the_run(store: Store) -> None:
    target = _scheduler(store, entry="fake_jobs:no_such_job").start()
    try:
        run = _submit(target)
        failed = target.wait(run.id, timeout=30)
        assert failed.status == statuses.FAILED
        assert "AttributeError" in failed.reason
    finally:
        target.shutdown()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_restart_marks_runs_without_a_worker_interrupted(store: Store) -> None:
    # A run whose worker is alive, launched by a scheduler (not watching) that is still around.
    first = _scheduler(store, max_workers=5)
    alive = _submit(first, epochs=300)
    try:
        _wait_for(lambda: len(store.batch_metrics(alive.id)) > 0)
        # A run whose worker process is gone, and one whose worker stopped beating long ago.
        gone = store.create_run(spec=SPEC, data_settings={}, training_settings={})
        store.set_status(store.claim_next_queued(5).id, statuses.RUNNING)
        store.heartbeat(gone.id, _dead_pid())
        silent = store.create_run(spec=SPEC, data_settings={}, training_settings={})
        store.claim_next_queued(5)
        with store._transaction() as connection:
            connection.execute("UPDATE runs SET heartbeat_at = 0 WHERE id = ?", (silent.id,))
        queued = store.create_run(spec=SPEC, data_settings={}, training_settings={})

        restarted = _scheduler(store, max_workers=5, stale_seconds=60.0)
        interrupted = restarted.reconcile()
        assert sorted(interrupted) == sorted([gone.id, silent.id])
        for run_id in interrupted:
            run = store.get_run(run_id)
            assert run.status == statuses.INTERRUPTED
            assert "restarted" in run.reason and "Continue" in run.hint
        assert store.get_run(alive.id).status == statuses.RUNNING
        assert store.get_run(queued.id).status == statuses.QUEUED
        # An interrupted run can be continued: it goes back to the queue.
        store.set_status(gone.id, statuses.QUEUED)
        assert [run.id for run in store.queued_runs()] == [queued.id, gone.id]
    finally:
        first.stop(alive.id)
        assert first.wait(alive.id, timeout=10).status == statuses.STOPPED


def test_a_scheduler_notices_a_foreign_worker_dying(store: Store) -> None:
    launcher = _scheduler(store).start()
    watcher = _scheduler(store).start()
    try:
        run = _submit(launcher, epochs=500)
        _wait_for(lambda: len(store.batch_metrics(run.id)) > 0)
        launcher.shutdown()  # The launcher goes away; its worker carries on.
        pid = store.get_run(run.id).worker_pid
        os.kill(pid, signal.SIGKILL)
        launcher.executor.alive(run.id)  # Reap the child so it is not left a zombie.
        _wait_for(lambda: store.get_run(run.id).is_ended, timeout=5)
        assert store.get_run(run.id).status == statuses.FAILED
        assert store.get_run(run.id).reason.startswith("The worker process died")
    finally:
        watcher.shutdown()
        launcher.shutdown()


def test_kill_ends_a_worker_at_once(store: Store) -> None:
    target = _scheduler(store).start()
    try:
        run = _submit(target, epochs=500)
        _wait_for(lambda: len(store.batch_metrics(run.id)) > 0)
        target.kill(run.id)
        stopped = store.get_run(run.id)
        assert stopped.status == statuses.STOPPED and stopped.reason == "Killed by the user."
        assert not target.executor.alive(run.id)
    finally:
        target.shutdown()
