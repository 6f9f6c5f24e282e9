"""The fair order of the queue: runs start round-robin across their owners.

Each queued run gets a turn: the turns its owner has already taken, plus its rank among its
owner's queued runs (oldest first). Runs start in turn order, ties broken by the time they were
queued, then by id. So an owner's k-th queued run goes after every other owner's (k-1)-th, and one
student's ten runs do not block the class.

A turn taken is a run of the owner's that holds a slot now (`starting` or `running`; a paused
run holds none), or that held one and ended while the queue's oldest run was waiting (ended
after that run was queued). So with one worker, a student whose run just finished waits behind
the others who were waiting meanwhile; turns taken before the present queue formed are forgotten.

With a single owner (CNN Lab without sign-in) the turn order is the queued-time order, as before.
The SQL here is used by `cnnlab.store.run_store`: in its run query (the queue position each run
shows) and in its atomic claim of the next run (inside the claim's write transaction, so
several schedulers sharing one store still claim each run once).
"""

from __future__ import annotations

from cnnlab.store import statuses


def _quoted(wanted: frozenset[statuses.Status]) -> str:
    return ", ".join(f"'{status.value}'" for status in sorted(wanted))


_WAITING_SINCE = "(SELECT MIN(w.queued_at) FROM runs w WHERE w.status = 'queued')"
_TURNS_TAKEN = (
    "(SELECT COUNT(*) FROM runs o WHERE o.owner = q.owner AND o.heartbeat_at IS NOT NULL AND "
    f"(o.status IN ({_quoted(statuses.OCCUPYING)}) OR "
    f"(o.status IN ({_quoted(statuses.ENDED)}) AND o.ended_at >= {_WAITING_SINCE})))"
)
"""How many turns the owner of queued run `q` has taken (a claimed run has a heartbeat time)."""

TURNS = (
    f"SELECT q.id, q.queued_at, {_TURNS_TAKEN} "
    "+ ROW_NUMBER() OVER (PARTITION BY q.owner ORDER BY q.queued_at, q.id) AS turn "
    "FROM runs q WHERE q.status = 'queued'"
)
"""Every queued run's id, queued time and turn (1 is the first turn)."""

FAIR_ORDER = "turn, queued_at, id"
"""The order queued runs start in, over the columns of `TURNS`."""

POSITIONS_CTE = (
    f"WITH fair_turns AS ({TURNS}), "
    f"fair_positions AS (SELECT id, ROW_NUMBER() OVER (ORDER BY {FAIR_ORDER}) AS position FROM fair_turns) "
)
"""A WITH clause naming `fair_positions(id, position)`: each queued run's place in the fair queue (1 starts next)."""

QUEUE_POSITION = (
    "CASE WHEN r.status = 'queued' THEN (SELECT p.position FROM fair_positions p WHERE p.id = r.id) END "
    "AS queue_position"
)
"""The `queue_position` column of a query over `runs r` that starts with `POSITIONS_CTE` (computed for queued runs only)."""

NEXT_QUEUED = f"SELECT id FROM ({TURNS}) ORDER BY {FAIR_ORDER} LIMIT 1"
"""The id of the queued run whose turn comes first (no row when the queue is empty)."""
