"""The one way a run's status changes in the database: checked, written and logged in the caller's transaction.

`Store.set_status` (every status change the scheduler, the worker and the Ray bridge ask for) and
`Store.claim_next_queued` (queued to starting) both call `change_status`, which reads the current
status under the write lock, refuses a change the transition table (`cnnlab.store.statuses`) does
not allow, sets the timestamps each status implies, writes the row through
`cnnlab.store.database.update_run` and appends `old -> new` to the event log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cnnlab.errors import RunError
from cnnlab.store import database, statuses
from cnnlab.store.statuses import Status


def _names(wanted: str | Iterable[str]) -> str:
    """Statuses as words for a message: 'running' or 'starting', 'running' or 'paused'."""
    names = [wanted] if isinstance(wanted, str) else sorted(wanted)
    return " or ".join(repr(str(name)) for name in names)


def change_status(
    connection: database.Connection,
    run_id: str,
    status: Status,
    now: float,
    *,
    reason: str | None = None,
    hint: str | None = None,
    traceback: str | None = None,
    expected: Status | Iterable[Status] | None = None,
    also: Mapping[str, object] | None = None,
) -> Status:
    """Move run `run_id` to `status` inside the caller's write transaction; return the status it left.

    RunError when there is no such run, when `expected` (the status or statuses the caller believes
    the run is in) no longer holds, or when the transition table forbids the change. `also` sets
    further columns in the same UPDATE (a claim's heartbeat time).
    """
    row = connection.execute("SELECT status, started_at FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunError(f"There is no run {run_id!r}; `python -m cnnlab runs` lists them.")
    current = statuses.check_status(str(row["status"]))
    status = statuses.check_status(status)
    if expected is not None and current not in ([expected] if isinstance(expected, str) else expected):
        raise RunError(
            f"Run {run_id} is {current.value!r}, not {_names(expected)} as expected; another "
            "process changed it meanwhile. Read it again before changing it."
        )
    statuses.check_transition(current, status, run_id)
    values: dict[str, object] = {"status": status.value}
    if status == Status.QUEUED:
        values.update(queued_at=now, ended_at=None, reason=None, hint=None, traceback=None, control=None)
    if status == Status.RUNNING:
        values["started_at"] = row["started_at"] if row["started_at"] is not None else now
    if status in statuses.ENDED:
        values.update(ended_at=now, control=None)
    for name, value in (("reason", reason), ("hint", hint), ("traceback", traceback)):
        if value is not None:
            values[name] = value
    values.update(also or {})
    database.update_run(connection, run_id, values)
    level = "error" if status in (Status.FAILED, Status.DIVERGED) else "info"
    database.add_event(
        connection, run_id, level, f"{current} -> {status}" + (f": {reason}" if reason else ""), now
    )
    return current
