"""Run statuses: what they look like to users and which changes a real store allows or refuses."""

from __future__ import annotations

import json

import pytest
from made_runs import make_run

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.store import statuses
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

SPEC = specs.ModelSpec((8, 8, 1), (specs.LayerSpec("Flatten"), specs.LayerSpec("Dense", {"units": 2})))


def _queued(store: Store) -> RunRecord:
    return make_run(store, spec=SPEC, epochs=1)


def _walk(store: Store, run_id: str, *path: Status) -> RunRecord:
    run = store.get_run(run_id)
    for status in path:
        run = store.set_status(run_id, status)
    return run


def test_a_status_reads_writes_and_prints_as_its_text(store: Store) -> None:
    assert Status.RUNNING == "running" and Status("running") is Status.RUNNING
    assert f"{Status.PAUSED}" == "paused" and str(Status.PAUSED) == "paused"
    assert f"{Status.FAILED:>8}" == "  failed"
    assert json.dumps({"status": Status.STOPPED}) == '{"status": "stopped"}'
    run = _walk(store, _queued(store).id, Status.STARTING)
    assert run.status is Status.STARTING  # Read back from SQLite as the enum, not as text.
    assert [item.id for item in store.list_runs(status="starting")] == [run.id]
    with pytest.raises(RunError, match="Unknown run status 'exploded'; the statuses are queued, starting"):
        store.list_runs(status="exploded")


def test_a_whole_life_with_a_pause_and_a_continue(store: Store) -> None:
    run = _queued(store)
    life = [Status.STARTING, Status.RUNNING, Status.PAUSED, Status.RUNNING, Status.COMPLETED, Status.QUEUED]
    seen = [_walk(store, run.id, status).status for status in life]
    assert seen == life
    messages = list(store.events(run.id)["message"])
    assert messages[-len(life) :] == [
        "queued -> starting",
        "starting -> running",
        "running -> paused",
        "paused -> running",
        "running -> completed",
        "completed -> queued",
    ]


@pytest.mark.parametrize(
    ("path", "refused", "advice"),
    [
        ((), Status.RUNNING, "read its status again"),  # A queued run must be started by the scheduler.
        (
            (Status.STARTING, Status.RUNNING),
            Status.QUEUED,
            "wait for it to end (or stop it), then continue it",
        ),
        ((Status.STARTING, Status.RUNNING, Status.COMPLETED), Status.RUNNING, "continue it"),
        ((Status.FAILED,), Status.QUEUED, "fork a new run"),
        ((Status.STARTING, Status.RUNNING, Status.DIVERGED), Status.RUNNING, "fork a new run"),
    ],
)
def test_a_refused_change_names_the_run_the_statuses_and_what_to_do(
    store: Store, path: tuple[Status, ...], refused: Status, advice: str
) -> None:
    run = _walk(store, _queued(store).id, *path)
    with pytest.raises(RunError) as raised:
        store.set_status(run.id, refused)
    message = str(raised.value)
    assert f"Run {run.id} cannot go from '{run.status}' to '{refused}'" in message
    assert advice in message.lower()
    assert store.get_run(run.id).status == run.status  # Nothing changed.
    assert store.events(run.id)["message"].iloc[-1] != f"{run.status} -> {refused}"


def test_final_statuses_allow_nothing_and_say_so(store: Store) -> None:
    failed = _walk(store, _queued(store).id, Status.FAILED)
    for status in Status:
        with pytest.raises(RunError, match="it can go to nothing"):
            store.set_status(failed.id, status)


def test_the_groups_agree_with_what_a_store_allows(store: Store) -> None:
    # Every ended status but the two final ones can be continued through a real store.
    for ending in (Status.COMPLETED, Status.STOPPED, Status.INTERRUPTED):
        run = _walk(store, _queued(store).id, Status.STARTING, Status.RUNNING, ending)
        assert run.is_ended and not run.is_active and ending in statuses.CONTINUABLE
        assert _walk(store, run.id, Status.QUEUED).queue_position is not None
    # A paused run keeps its worker but frees its slot: another run can be claimed.
    paused = _walk(store, _queued(store).id, Status.STARTING, Status.RUNNING, Status.PAUSED)
    assert paused.is_active and paused.status in statuses.LIVE
    waiting = _queued(store)
    claimed = store.claim_next_queued(max_occupying=1)
    assert claimed is not None and claimed.status is Status.STARTING
    assert store.get_run(waiting.id).status in (Status.QUEUED, Status.STARTING)


def test_control_requests_are_checked() -> None:
    assert [statuses.check_control(action) for action in ("stop", "pause", "resume")] == [
        "stop",
        "pause",
        "resume",
    ]
    with pytest.raises(RunError, match="Unknown control request 'explode'; use one of stop, pause, resume"):
        statuses.check_control("explode")
