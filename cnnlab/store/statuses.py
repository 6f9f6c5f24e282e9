"""The life of a training run: its statuses and the transitions allowed between them.

```
queued -> starting -> running <-> paused
                        |
                        +-> completed | stopped | pruned | diverged | failed | interrupted
completed, stopped, pruned, interrupted -> queued   (continue for more epochs)
```

A run waiting in the queue can be stopped (cancelled) or fail (its settings cannot be read).
A run of a sweep that falls behind the sweep's other trials is `pruned`: its sweep asked it to
stop (as Stop does) and the reason says why ("Pruned at epoch 4: ..."); it can be continued.
A run whose worker process disappears (killed, out of memory, or gone when the server
restarted) becomes `interrupted`: its settings were not at fault, so it can be continued. `diverged` and `failed` are final:
change the settings and fork a new run instead.

`Status` is a `str` Enum, so a status compares equal to its text (`Status.QUEUED == "queued"`),
is stored in SQLite and JSON as that text, and prints as it.
"""

from __future__ import annotations

from enum import Enum

from cnnlab.errors import RunError


class Status(str, Enum):
    """Where a run is in its life; the value is the text stored and shown."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    PRUNED = "pruned"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        # Python 3.10 and 3.11 print a mixed-in Enum as "Status.QUEUED"; users read "queued".
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.STARTING, Status.STOPPED, Status.FAILED}),
    Status.STARTING: frozenset(
        {Status.RUNNING, Status.STOPPED, Status.PRUNED, Status.FAILED, Status.INTERRUPTED}
    ),
    Status.RUNNING: frozenset(
        {
            Status.PAUSED,
            Status.COMPLETED,
            Status.STOPPED,
            Status.PRUNED,
            Status.DIVERGED,
            Status.FAILED,
            Status.INTERRUPTED,
        }
    ),
    Status.PAUSED: frozenset(
        {Status.RUNNING, Status.STOPPED, Status.PRUNED, Status.FAILED, Status.INTERRUPTED}
    ),
    Status.COMPLETED: frozenset({Status.QUEUED}),
    Status.STOPPED: frozenset({Status.QUEUED}),
    Status.PRUNED: frozenset({Status.QUEUED}),
    Status.INTERRUPTED: frozenset({Status.QUEUED}),
    Status.DIVERGED: frozenset(),
    Status.FAILED: frozenset(),
}

# A worker process exists (or is being started) for runs in these statuses.
LIVE: frozenset[Status] = frozenset({Status.STARTING, Status.RUNNING, Status.PAUSED})
# Runs in these statuses still need the scheduler or a worker.
ACTIVE: frozenset[Status] = frozenset({Status.QUEUED}) | LIVE
# Runs in these statuses have ended; nothing will change them except a continue.
ENDED: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.STOPPED, Status.PRUNED, Status.DIVERGED, Status.FAILED, Status.INTERRUPTED}
)
# Runs in these statuses can be continued for more epochs from their latest checkpoint.
CONTINUABLE: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.STOPPED, Status.PRUNED, Status.INTERRUPTED}
)
# Runs in these statuses hold a slot under the concurrency limit (a paused run uses no CPU).
OCCUPYING: frozenset[Status] = frozenset({Status.STARTING, Status.RUNNING})

# "prune" is a stop asked by the run's sweep: the run ends `pruned`, not `stopped`.
CONTROL_ACTIONS: tuple[str, ...] = ("stop", "pause", "resume", "prune")


def check_status(status: str) -> Status:
    """The `Status` named by `status` (a `Status` or its text), else RunError naming the known ones."""
    try:
        return Status(status)
    except ValueError:
        known = ", ".join(item.value for item in Status)
        raise RunError(f"Unknown run status {status!r}; the statuses are {known}.") from None


def _advice(current: Status, new: Status) -> str:
    """What a user can do instead of the refused change from `current` to `new`."""
    if not TRANSITIONS[current]:
        return "It has ended for good: fork a new run from one of its saved epochs, with changed settings."
    if new == Status.QUEUED and current in ACTIVE:
        return "It is still queued or training: wait for it to end (or stop it), then continue it."
    if current in ENDED:
        return "It has ended: continue it (back to queued) or fork it from a saved epoch."
    return "Read its status again (`python -m cnnlab runs`): another process may have changed it."


def check_transition(current: str, new: str, run_id: str = "") -> None:
    """Raise RunError unless a run may go from status `current` to status `new`.

    The message names the run, both statuses, where it can go instead and what to do.
    """
    current_status, new_status = check_status(current), check_status(new)
    if new_status in TRANSITIONS[current_status]:
        return
    allowed = ", ".join(sorted(item.value for item in TRANSITIONS[current_status])) or "nothing"
    which = f"Run {run_id}" if run_id else "A run"
    raise RunError(
        f"{which} cannot go from {current_status.value!r} to {new_status.value!r}; "
        f"from {current_status.value!r} it can go to {allowed}. {_advice(current_status, new_status)}"
    )


def check_control(action: str) -> str:
    """Return `action` if it is a control request a worker understands, else raise RunError."""
    if action not in CONTROL_ACTIONS:
        raise RunError(f"Unknown control request {action!r}; use one of {', '.join(CONTROL_ACTIONS)}.")
    return action
