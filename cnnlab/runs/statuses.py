"""The life of a training run: its statuses and the transitions allowed between them.

```
queued -> starting -> running <-> paused
                        |
                        +-> completed | stopped | diverged | failed | interrupted
completed, stopped, interrupted -> queued   (continue for more epochs)
```

A run waiting in the queue can be stopped (cancelled) or fail (its settings cannot be read).
A run whose worker process disappears becomes `failed` while the scheduler watches it and
`interrupted` when the scheduler finds it gone at start-up. `diverged` and `failed` are final:
change the settings and fork a new run instead.
"""

from __future__ import annotations

from cnnlab.errors import RunError

QUEUED = "queued"
STARTING = "starting"
RUNNING = "running"
PAUSED = "paused"
COMPLETED = "completed"
STOPPED = "stopped"
DIVERGED = "diverged"
FAILED = "failed"
INTERRUPTED = "interrupted"

ALL: tuple[str, ...] = (QUEUED, STARTING, RUNNING, PAUSED, COMPLETED, STOPPED, DIVERGED, FAILED, INTERRUPTED)

TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({STARTING, STOPPED, FAILED}),
    STARTING: frozenset({RUNNING, STOPPED, FAILED, INTERRUPTED}),
    RUNNING: frozenset({PAUSED, COMPLETED, STOPPED, DIVERGED, FAILED, INTERRUPTED}),
    PAUSED: frozenset({RUNNING, STOPPED, FAILED, INTERRUPTED}),
    COMPLETED: frozenset({QUEUED}),
    STOPPED: frozenset({QUEUED}),
    INTERRUPTED: frozenset({QUEUED}),
    DIVERGED: frozenset(),
    FAILED: frozenset(),
}

# A worker process exists (or is being started) for runs in these statuses.
LIVE: frozenset[str] = frozenset({STARTING, RUNNING, PAUSED})
# Runs in these statuses still need the scheduler or a worker.
ACTIVE: frozenset[str] = frozenset({QUEUED}) | LIVE
# Runs in these statuses have ended; nothing will change them except a continue.
ENDED: frozenset[str] = frozenset({COMPLETED, STOPPED, DIVERGED, FAILED, INTERRUPTED})
# Runs in these statuses can be continued for more epochs from their latest checkpoint.
CONTINUABLE: frozenset[str] = frozenset({COMPLETED, STOPPED, INTERRUPTED})
# Runs in these statuses hold a slot under the concurrency limit (a paused run uses no CPU).
OCCUPYING: frozenset[str] = frozenset({STARTING, RUNNING})

CONTROL_ACTIONS: tuple[str, ...] = ("stop", "pause", "resume")


def check_status(status: str) -> str:
    """Return `status` if it is a known status, else raise RunError naming the known ones."""
    if status not in TRANSITIONS:
        raise RunError(f"Unknown run status {status!r}; the statuses are {', '.join(ALL)}.")
    return status


def check_transition(current: str, new: str, run_id: str = "") -> None:
    """Raise RunError unless a run may go from status `current` to status `new`."""
    check_status(new)
    if new not in TRANSITIONS[check_status(current)]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
        which = f"Run {run_id}" if run_id else "A run"
        raise RunError(
            f"{which} cannot go from {current!r} to {new!r}; from {current!r} it can go to {allowed}."
        )


def check_control(action: str) -> str:
    """Return `action` if it is a control request a worker understands, else raise RunError."""
    if action not in CONTROL_ACTIONS:
        raise RunError(f"Unknown control request {action!r}; use one of {', '.join(CONTROL_ACTIONS)}.")
    return action
