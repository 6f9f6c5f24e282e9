"""The store's sweeps table and the query that reads a sweep's runs with their best accuracy so far.

`cnnlab.runs.queue.sweeps` plans, submits and stops sweeps and gives a stored sweep its typed
axes; this module only keeps and reads the rows. The store holds one `SweepTable` as `store.sweeps`.
A sweep on Optuna also keeps its `search` (sampler, pruner, budget and ranges, as JSON; its trials live in
Optuna's own storage beside this database) and whether it is `closed` (its budget spent).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from cnnlab.errors import SweepError
from cnnlab.store import records
from cnnlab.store.database import Database
from cnnlab.store.records import JsonValue, RunRecord

_SELECT_SWEEP_RUNS = (
    f"SELECT {', '.join('r.' + name for name in records.RUN_COLUMNS)}, "
    "(SELECT COALESCE(MAX(e.epoch), 0) FROM epoch_metrics e WHERE e.run_id = r.id) AS last_epoch, "
    "(SELECT MAX(e.val_accuracy) FROM epoch_metrics e WHERE e.run_id = r.id) AS best_so_far "
    "FROM runs r WHERE r.sweep = ? ORDER BY r.created_at, r.id"
)


@dataclass(frozen=True)
class StoredSweep:
    """A sweep's row: identity, owner, the axes as (setting, values) pairs, and how it was sampled."""

    id: str
    name: str
    owner: str
    created_at: float
    axes: tuple[tuple[str, tuple[JsonValue, ...]], ...]
    sample: int | None = None
    seed: int | None = None
    search: dict[str, JsonValue] | None = None
    closed: bool = False


def _from_row(row: dict[str, object]) -> StoredSweep:
    axes = tuple((str(setting), tuple(values)) for setting, values in json.loads(str(row["axes"])))
    sample, seed = row["sample"], row["seed"]
    search = json.loads(str(row["search"])) if row.get("search") else None
    return StoredSweep(
        id=str(row["id"]),
        name=str(row["name"]),
        owner=str(row["owner"]),
        created_at=float(str(row["created_at"])),
        axes=axes,
        sample=sample if isinstance(sample, int) else None,
        seed=seed if isinstance(seed, int) else None,
        search=search if isinstance(search, dict) else None,
        closed=bool(row.get("closed")),
    )


class SweepTable:
    """The sweeps recorded in one database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(
        self,
        name: str,
        owner: str,
        axes: list[tuple[str, list[JsonValue]]],
        sample: int | None = None,
        seed: int | None = None,
        search: dict[str, JsonValue] | None = None,
    ) -> StoredSweep:
        """Record a sweep with a new id and return it (`search` for a sweep on Optuna)."""
        sweep = StoredSweep(
            records.new_run_id(),
            name,
            owner,
            time.time(),
            tuple((setting, tuple(values)) for setting, values in axes),
            sample,
            seed,
            search,
        )
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT INTO sweeps (id, name, owner, created_at, axes, sample, seed, search) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sweep.id,
                    name,
                    owner,
                    sweep.created_at,
                    json.dumps([list(pair) for pair in axes]),
                    sample,
                    seed,
                    None if search is None else json.dumps(search),
                ),
            )
        return sweep

    def open_searches(self) -> list[StoredSweep]:
        """The sweeps on Optuna whose budget is not spent yet, oldest first (one indexed read)."""
        rows = (
            self.database.connection()
            .execute("SELECT * FROM sweeps WHERE search IS NOT NULL AND closed = 0 ORDER BY created_at, id")
            .fetchall()
        )
        return [_from_row(dict(row)) for row in rows]

    def set_search(self, sweep_id: str, search: dict[str, JsonValue], *, closed: bool) -> None:
        """Record a sweep's new search (a bigger budget when it is extended) and whether it is closed."""
        with self.database.transaction() as connection:
            connection.execute(
                "UPDATE sweeps SET search = ?, closed = ? WHERE id = ?",
                (json.dumps(search), int(closed), sweep_id),
            )

    def get(self, sweep_id: str) -> StoredSweep:
        """The sweep with id `sweep_id` (or a unique prefix of it); SweepError if there is none."""
        connection = self.database.connection()
        rows = connection.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchall()
        if not rows:
            rows = connection.execute(
                "SELECT * FROM sweeps WHERE substr(id, 1, ?) = ? LIMIT 2", (len(sweep_id), sweep_id)
            ).fetchall()
        if len(rows) != 1:
            problem = "matches several sweeps" if rows else "matches no sweep"
            raise SweepError(f"Sweep id {sweep_id!r} {problem}; `python -m cnnlab sweeps` lists them.")
        return _from_row(dict(rows[0]))

    def list_sweeps(self, *, owner: str | None = None, limit: int | None = None) -> list[StoredSweep]:
        """Sweeps, newest first, optionally of one owner only."""
        where, parameters = (" WHERE owner = ?", [owner]) if owner is not None else ("", [])
        rows = (
            self.database.connection()
            .execute(
                f"SELECT * FROM sweeps{where} ORDER BY created_at DESC, id DESC LIMIT ?",
                [*parameters, -1 if limit is None else limit],
            )
            .fetchall()
        )
        return [_from_row(dict(row)) for row in rows]

    def runs(self, sweep_id: str) -> list[tuple[RunRecord, float | None]]:
        """The sweep's runs in the order they were planned, each with its best validation accuracy so far."""
        found = []
        for row in self.database.connection().execute(_SELECT_SWEEP_RUNS, (sweep_id,)).fetchall():
            values = dict(row)
            so_far = values.get("best_so_far")
            found.append((records.record_from_row(values), so_far if isinstance(so_far, float) else None))
        return found
