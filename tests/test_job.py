"""`Control`, the job's view of stop, pause and resume, against a real store.

A pause is tested from a second thread: the job's thread blocks in `should_stop()`, and the test
waits (`waiting.wait_until`) for the status that proves it, never for a time.
"""

from __future__ import annotations

import threading

from made_runs import make_run
from waiting import DEADLINE_SECONDS, wait_until

from cnnlab.runs.queue.job import Control, Outcome
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status


def _run(store: Store, status: Status = Status.RUNNING) -> str:
    run = make_run(store)
    store.set_status(run.id, Status.STARTING)
    if status == Status.RUNNING:
        store.set_status(run.id, Status.RUNNING)
    return run.id


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _ask_in_thread(control: Control) -> tuple[threading.Thread, list[bool]]:
    answers: list[bool] = []
    thread = threading.Thread(target=lambda: answers.append(control.should_stop(force_poll=True)))
    thread.start()
    return thread, answers


def _join(thread: threading.Thread) -> None:
    thread.join(timeout=DEADLINE_SECONDS)
    assert not thread.is_alive(), "should_stop() still blocks"


def test_an_outcome_is_completed_unless_told() -> None:
    assert Outcome().status == Status.COMPLETED and Outcome().reason is None


def test_nothing_requested_means_carry_on(store: Store) -> None:
    run_id = _run(store)
    assert Control(store, run_id).should_stop(force_poll=True) is False


def test_a_stop_is_seen_and_then_sticks_without_reading_the_store(store: Store) -> None:
    run_id = _run(store)
    control = Control(store, run_id, poll_seconds=0.0)
    store.request_control(run_id, "stop")
    assert control.should_stop() and control.stop_requested
    store.clear_control(run_id, "stop")  # Even if the request disappears from the store...
    assert store.pending_control(run_id) is None
    assert control.should_stop() and control.should_stop(force_poll=True)  # ...the stop stands.


def test_polling_is_rate_limited_unless_forced(store: Store) -> None:
    run_id = _run(store)
    clock = Clock()
    control = Control(store, run_id, poll_seconds=10.0, clock=clock)
    assert control.should_stop() is False  # The first call reads the store.
    store.request_control(run_id, "stop")
    clock.now = 9.9
    assert control.should_stop() is False  # Too soon to read the store again.
    assert control.should_stop(force_poll=True) is True  # The end of an epoch forces a read.
    second = Control(store, run_id, poll_seconds=10.0, clock=clock)
    clock.now = 20.0
    assert second.should_stop() is True
    clock.now = 25.0
    assert second.should_stop() is True  # A stop once seen needs no read.


def test_a_pause_blocks_until_resume(store: Store) -> None:
    run_id = _run(store)
    control = Control(store, run_id, poll_seconds=0.0)
    store.request_control(run_id, "pause")
    thread, answers = _ask_in_thread(control)
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the run to be paused")
    assert store.pending_control(run_id) is None  # The pause was answered...
    assert thread.is_alive() and answers == []  # ...and the job waits inside should_stop().
    store.request_control(run_id, "resume")
    _join(thread)
    assert answers == [False] and not control.stop_requested
    assert control.paused_seconds > 0  # Kept for the epoch's row: the time left leaves it out.
    run = store.get_run(run_id)
    assert run.status == Status.RUNNING and run.control is None


def test_a_second_pause_while_paused_is_answered_and_resume_still_works(store: Store) -> None:
    """A pause click replayed by a rerun reached a paused run: left pending, the page said
    "Pausing…" for ever and offered no Resume."""
    run_id = _run(store)
    control = Control(store, run_id, poll_seconds=0.0)
    store.request_control(run_id, "pause")
    thread, answers = _ask_in_thread(control)
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the run to be paused")
    store.request_control(run_id, "pause")
    wait_until(lambda: store.pending_control(run_id) is None, "the second pause to be answered")
    assert thread.is_alive() and store.get_run(run_id).status == Status.PAUSED
    store.request_control(run_id, "resume")
    _join(thread)
    assert answers == [False] and store.get_run(run_id).status == Status.RUNNING


def test_a_stop_ends_a_pause(store: Store) -> None:
    run_id = _run(store)
    control = Control(store, run_id, poll_seconds=0.0)
    store.request_control(run_id, "pause")
    thread, answers = _ask_in_thread(control)
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the run to be paused")
    store.request_control(run_id, "stop")
    _join(thread)
    assert answers == [True] and control.stop_requested
    assert store.get_run(run_id).status == Status.PAUSED  # The worker records the final status.


def test_a_pause_while_starting_waits_until_the_run_is_running(store: Store) -> None:
    run_id = _run(store, Status.STARTING)
    control = Control(store, run_id, poll_seconds=0.0)
    store.request_control(run_id, "pause")
    assert control.should_stop() is False  # It does not block a run that is not running yet.
    assert store.pending_control(run_id) == "pause" and store.get_run(run_id).status == Status.STARTING
    store.set_status(run_id, Status.RUNNING)
    thread, _ = _ask_in_thread(control)
    wait_until(lambda: store.get_run(run_id).status == Status.PAUSED, "the pause to take effect")
    store.request_control(run_id, "stop")
    _join(thread)


def test_a_resume_without_a_pause_is_answered(store: Store) -> None:
    run_id = _run(store)
    store.request_control(run_id, "resume")
    assert Control(store, run_id).should_stop(force_poll=True) is False
    assert store.pending_control(run_id) is None


def test_a_prune_stops_like_a_stop_and_carries_its_sweeps_reason(store: Store) -> None:
    run_id = _run(store)
    control = Control(store, run_id, poll_seconds=0.0)
    store.request_prune(run_id, "Pruned at epoch 2: below the median of earlier trials (80.0%).")
    assert control.should_stop() and control.stop_requested and control.prune_requested
    assert store.prune_reason(run_id) == "Pruned at epoch 2: below the median of earlier trials (80.0%)."
    store.set_status(run_id, Status.PRUNED, reason=store.prune_reason(run_id))
    assert store.get_run(run_id).is_ended
