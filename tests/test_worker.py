"""The worker: final statuses, failures with tracebacks, control between batches, real processes.

No test here times anything: each waits for a condition (`waiting.wait_until`, whose deadline only
guards against a hang) and asserts what happened. `benchmarks/control_latency.py` measures how fast.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import fake_jobs
import pytest
from waiting import DEADLINE_SECONDS, wait_until

from cnnlab import specs
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import worker_messages
from cnnlab.runs.queue.job import Control, Outcome
from cnnlab.runs.worker import main as worker
from cnnlab.runs.worker import threads
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
ROOT = Path(__file__).resolve().parents[1]


def _claimed_run(store: Store, epochs: int = 1) -> str:
    run = store.create_run(
        RunRequest(
            spec=SPEC,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=epochs),
        )
    )
    store.set_status(run.id, Status.STARTING)
    return run.id


def _start_counting(store: Store, run_id: str) -> threading.Thread:
    thread = threading.Thread(target=worker.run_job, args=(run_id, store, fake_jobs.counting_job))
    thread.start()
    return thread


def _join(thread: threading.Thread) -> None:
    thread.join(timeout=DEADLINE_SECONDS)
    assert not thread.is_alive(), f"the job did not end within {DEADLINE_SECONDS:g} s"


def _pause(store: Store, run_id: str) -> int:
    """Ask for a pause, wait until the job is paused, and return how many batches it had recorded."""
    store.request_control(run_id, "pause")
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the run to be paused")
    return len(store.batch_metrics(run_id))


def test_a_job_that_returns_completes_with_a_heartbeat(store: Store) -> None:
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, fake_jobs.counting_job) == Status.COMPLETED
    run = store.get_run(run_id)
    assert run.status == Status.COMPLETED
    assert run.worker_pid == os.getpid() and run.heartbeat_at is not None
    assert len(store.batch_metrics(run_id)) == fake_jobs.BATCHES_PER_EPOCH
    # The learner reads "Training started"; the process id is a technical event, shown one click away.
    events = store.events(run_id)
    learner = events[events["level"] != worker.TECHNICAL]["message"].tolist()
    assert "Training started" in learner and not [
        message for message in learner if str(os.getpid()) in message
    ]
    technical = events[events["level"] == worker.TECHNICAL]["message"].tolist()
    assert technical == [
        f"worker process {os.getpid()} took the run (warm: the job was loaded before; run 1 of it)"
    ]


def test_a_bug_fails_the_run_with_its_traceback(store: Store) -> None:
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, fake_jobs.failing_job) == Status.FAILED
    run = store.get_run(run_id)
    assert run.status == Status.FAILED
    assert run.reason == "Training failed with ValueError: bad value 42"
    assert "bug" in run.hint
    assert "Traceback" in run.traceback and "failing_job" in run.traceback


def test_a_user_error_fails_with_its_own_message(store: Store) -> None:
    run_id = _claimed_run(store)
    worker.run_job(run_id, store, fake_jobs.unavailable_job)
    run = store.get_run(run_id)
    assert run.status == Status.FAILED
    assert run.reason.startswith("MNIST is not available offline")
    assert run.traceback and run.hint is None


def test_a_diverged_outcome_keeps_its_hint(store: Store) -> None:
    run_id = _claimed_run(store)
    worker.run_job(run_id, store, fake_jobs.diverging_job)
    run = store.get_run(run_id)
    assert (run.status, run.hint) == (Status.DIVERGED, "Lower the learning rate.")


def test_a_job_can_be_named_by_module_and_function(store: Store) -> None:
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, "fake_jobs:diverging_job") == Status.DIVERGED
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, "no_such_module:run") == Status.FAILED
    assert "ModuleNotFoundError" in store.get_run(run_id).reason
    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, "fake_jobs:BATCHES_PER_EPOCH") == Status.FAILED
    assert store.get_run(run_id).reason.startswith(
        "The job entry 'fake_jobs:BATCHES_PER_EPOCH' names no function"
    )


def test_pause_resume_and_stop_between_batches(store: Store) -> None:
    run_id = _claimed_run(store, epochs=200)
    thread = _start_counting(store, run_id)
    wait_until(lambda: len(store.batch_metrics(run_id)) >= 3, "three batches")
    paused_count = _pause(store, run_id)
    assert store.pending_control(run_id) is None  # The pause was answered.
    store.request_control(run_id, "resume")
    wait_until(lambda: len(store.batch_metrics(run_id)) > paused_count + 2, "batches after the resume")
    assert store.get_run(run_id).status == Status.RUNNING
    store.request_control(run_id, "stop")
    _join(thread)
    run = store.get_run(run_id)
    assert run.status == Status.STOPPED and run.control is None
    assert len(store.batch_metrics(run_id)) < 200 * fake_jobs.BATCHES_PER_EPOCH
    messages = list(store.events(run_id)["message"])
    assert "running -> paused" in messages and "paused -> running" in messages


def test_a_paused_job_records_nothing_more_and_a_stop_ends_it(store: Store) -> None:
    run_id = _claimed_run(store, epochs=200)
    thread = _start_counting(store, run_id)
    wait_until(lambda: len(store.batch_metrics(run_id)) >= 1, "the first batch")
    paused_count = _pause(store, run_id)
    store.request_control(run_id, "stop")
    _join(thread)
    # However long the pause lasted, at most the batch in flight was recorded after it.
    assert len(store.batch_metrics(run_id)) <= paused_count + 1
    run = store.get_run(run_id)
    assert run.status == Status.STOPPED and run.reason == "Stopped by the user."


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
    return [sys.executable, "-m", "cnnlab.runs.worker.main", *arguments]


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
    assert run.status == Status.COMPLETED
    assert run.results["threads"] == "1" and run.results["pid"] != os.getpid()


def test_a_failing_worker_process_exits_non_zero(store: Store) -> None:
    run_id = _claimed_run(store)
    command = _worker_command(run_id, "--home", str(store.home), "--entry", "fake_jobs:failing_job")
    completed = subprocess.run(command, env=_environment(), capture_output=True, timeout=60)
    assert completed.returncode == 1
    assert store.get_run(run_id).status == Status.FAILED


def test_a_warm_worker_waits_for_a_take_run_message_on_stdin(store: Store, tmp_path: Path) -> None:
    run_id = _claimed_run(store)
    marker = tmp_path / "warmed"
    environment = {**_environment(), fake_jobs.WARM_MARKER: str(marker)}
    command = _worker_command("--warm", "--home", str(store.home), "--entry", "fake_jobs:counting_job")
    process = subprocess.Popen(command, env=environment, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wait_until(marker.exists, "the warm worker to finish warming up")
        # Warmed up, it waits on its input: it has not exited and has not touched the run.
        assert process.poll() is None
        assert store.get_run(run_id).status == Status.STARTING and store.get_run(run_id).worker_pid is None
        process.communicate(worker_messages.encode(worker_messages.TakeRun(run_id)), timeout=DEADLINE_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert store.get_run(run_id).status == Status.COMPLETED
    assert (store.run_folder(run_id) / "worker.log").exists()
    # A warm worker whose input closes without a run exits quietly.
    idle = subprocess.run(command, env=_environment(), input=b"", capture_output=True, timeout=60)
    assert idle.returncode == 0


def test_a_warm_worker_handed_a_run_before_it_warms_up_starts_it_without_warming_up(
    store: Store, tmp_path: Path
) -> None:
    run_id = _claimed_run(store)
    marker = tmp_path / "warmed"
    environment = {**_environment(), fake_jobs.WARM_MARKER: str(marker)}
    command = _worker_command("--warm", "--home", str(store.home), "--entry", "fake_jobs:counting_job")
    # The run id is in the pipe before the worker has even imported its job.
    finished = subprocess.run(
        command, env=environment, input=worker_messages.encode(worker_messages.TakeRun(run_id)), timeout=60
    )
    assert finished.returncode == 0
    assert store.get_run(run_id).status == Status.COMPLETED
    assert not marker.exists()


class _BrokenHeartbeatStore(Store):
    """A store whose heartbeats fail after the first (as on a full disk), while everything else works."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.beats = 0

    def heartbeat(self, run_id: str, pid: int) -> None:
        self.beats += 1
        if self.beats > 1:
            raise sqlite3.OperationalError("database or disk is full")
        super().heartbeat(run_id, pid)


def test_failed_heartbeats_are_reported_and_end_the_run_saying_why(
    store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    broken = _BrokenHeartbeatStore(store.home)
    run_id = _claimed_run(store, epochs=500)
    thread = threading.Thread(target=worker.run_job, args=(run_id, broken, fake_jobs.counting_job))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker, "HEARTBEAT_SECONDS", 0.01)
        patch.setattr(worker, "FAILED_BEATS_LIMIT", 3)
        thread.start()
        _join(thread)
    run = store.get_run(run_id)
    assert run.status == Status.FAILED
    assert run.reason == (
        "The worker could not record its heartbeat 3 times in a row "
        "(last error: OperationalError: database or disk is full), so it stopped the run."
    )
    assert "free space" in (run.hint or "")
    events = store.events(run_id)
    warnings = events[events["level"] == "warning"]["message"].tolist()
    assert warnings == [
        "The heartbeat could not be recorded (OperationalError: database or disk is full); training carries on."
    ]
    assert len(store.batch_metrics(run_id)) > 0  # What the job recorded is kept.
    assert "heartbeat 1 in a row for run" in capfd.readouterr().err


def test_a_heartbeat_that_recovers_says_so_and_the_run_completes(store: Store) -> None:
    class Flaky(Store):
        beats = 0

        def heartbeat(self, run_id: str, pid: int) -> None:
            Flaky.beats += 1
            if Flaky.beats == 2:
                raise sqlite3.OperationalError("database is locked")
            super().heartbeat(run_id, pid)

    flaky = Flaky(store.home)
    run_id = _claimed_run(store, epochs=1)
    beat = worker.Heartbeat(flaky, run_id, interval=0.01).start()
    wait_until(lambda: Flaky.beats >= 4, "a few heartbeats")
    beat.stop()
    messages = store.events(run_id)["message"].tolist()
    assert (
        "The heartbeat could not be recorded (OperationalError: database is locked); training carries on."
        in (messages)
    )
    assert "The heartbeat was recorded again after 1 failed beat(s)." in messages
    assert beat.failure is None


def test_a_jobs_finishing_work_runs_after_its_status_is_recorded(store: Store) -> None:
    """A stopped run says so before the worker records its test figures (`Outcome.finish`); a failure
    in that work is said in the run's events and leaves the status as the job ended it."""
    seen: list[Status] = []

    def stopping_job(run_id: str, store: Store, control: Control) -> Outcome:
        store.set_status(run_id, Status.RUNNING)
        return Outcome(Status.STOPPED, reason="Stopped by the user.", finish=lambda: finish(run_id))

    def finish(run_id: str) -> None:
        seen.append(store.get_run(run_id).status)
        raise OSError("disk full")

    run_id = _claimed_run(store)
    assert worker.run_job(run_id, store, stopping_job) == Status.STOPPED
    assert seen == [Status.STOPPED]
    assert store.get_run(run_id).status == Status.STOPPED
    assert any("disk full" in message for message in store.events(run_id)["message"])
