"""The fair queue: runs start round-robin across owners, and each queued run shows its fair position.

Real SQLite store; claims are what the scheduler does to start a run (`Store.claim_next_queued`).
"""

from __future__ import annotations

import threading

import pytest
from made_runs import make_run

from cnnlab import specs
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

SPEC = specs.ModelSpec.from_dict(
    {"name": "tiny", "input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]}
)


def _queue(store: Store, owner: str, name: str) -> RunRecord:
    return make_run(store, spec=SPEC, owner=owner, name=name)


def _claim_all(store: Store) -> list[str]:
    """Start every queued run, one claim at a time, and return their names in the order they started."""
    started = []
    while (claimed := store.claim_next_queued(max_occupying=1000)) is not None:
        started.append(claimed.name)
    return started


def test_one_students_ten_runs_take_turns_with_the_others(store: Store) -> None:
    for number in range(1, 11):
        _queue(store, "hog", f"hog{number}")
    _queue(store, "bob", "bob1")
    _queue(store, "cy", "cy1")
    _queue(store, "cy", "cy2")
    by_position = sorted(store.queued_runs(), key=lambda run: run.queue_position or 0)
    assert [run.queue_position for run in by_position] == list(range(1, 14))
    shown = [run.name for run in by_position]
    started = _claim_all(store)
    # Turn 1: each owner's first run, in queued order; turn 2: the second runs; then hog's alone.
    expected = ["hog1", "bob1", "cy1", "hog2", "cy2"] + [f"hog{number}" for number in range(3, 11)]
    assert started == expected
    assert shown == expected  # The positions shown before said the order the runs started in.


def test_a_run_holding_a_slot_counts_as_its_owners_turn(store: Store) -> None:
    running = _queue(store, "ada", "ada running")
    assert store.claim_next_queued(max_occupying=1) is not None
    assert store.get_run(running.id).status == Status.STARTING
    waiting = _queue(store, "ada", "ada waiting")
    later = _queue(store, "bob", "bob later")
    assert (store.get_run(later.id).queue_position, store.get_run(waiting.id).queue_position) == (1, 2)
    assert store.claim_next_queued(max_occupying=1) is None  # The slot is taken.
    store.set_status(running.id, Status.RUNNING)
    store.set_status(running.id, Status.PAUSED)  # A paused run gives its slot (and its turn) back.
    assert store.get_run(waiting.id).queue_position == 1
    store.set_status(running.id, Status.RUNNING)
    assert _claim_all(store) == ["bob later", "ada waiting"]


def _finish(store: Store, run: RunRecord) -> None:
    store.set_status(run.id, Status.RUNNING)
    store.set_status(run.id, Status.COMPLETED)


def test_with_one_worker_a_finished_run_was_its_owners_turn(store: Store) -> None:
    """One run at a time, each finishing before the next starts: still round-robin, not first come first served."""
    for name in ("ada1", "ada2", "ada3"):
        _queue(store, "ada", name)
    _queue(store, "bob", "bob1")
    _queue(store, "bob", "bob2")
    started = []
    while (claimed := store.claim_next_queued(max_occupying=1)) is not None:
        started.append(claimed.name)
        _finish(store, claimed)
    assert started == ["ada1", "bob1", "ada2", "bob2", "ada3"]


def test_turns_taken_before_the_queue_formed_are_forgotten(store: Store) -> None:
    for name in ("ada earlier", "ada earlier again"):
        _queue(store, "ada", name)
        _finish(store, store.claim_next_queued(max_occupying=1) or pytest.fail("nothing to claim"))
    ada_now, bob_now = _queue(store, "ada", "ada now"), _queue(store, "bob", "bob now")
    assert (store.get_run(ada_now.id).queue_position, store.get_run(bob_now.id).queue_position) == (1, 2)
    stopped = _queue(store, "bob", "bob stopped in the queue")
    store.set_status(stopped.id, Status.STOPPED)  # Never started: not a turn taken.
    assert store.get_run(ada_now.id).queue_position == 1


def test_one_owner_keeps_first_come_first_served(store: Store) -> None:
    names = [_queue(store, "local", f"run{number}").name for number in range(5)]
    assert _claim_all(store) == names


def test_claims_from_several_schedulers_at_once_start_each_run_once(store: Store) -> None:
    for number in range(30):
        _queue(store, f"student{number % 4}", f"run{number}")
    claimed: list[list[str]] = [[] for _ in range(4)]

    def claim(into: list[str]) -> None:
        own_store = Store(store.home)  # Its own connection, as another process would have.
        while (run := own_store.claim_next_queued(max_occupying=1000)) is not None:
            into.append(run.id)

    threads = [threading.Thread(target=claim, args=(into,)) for into in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every_claim = [run_id for into in claimed for run_id in into]
    assert len(every_claim) == 30 and len(set(every_claim)) == 30
    assert store.count_runs([Status.QUEUED]) == 0
