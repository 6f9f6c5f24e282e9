"""Sweeps: a named group of ordinary runs that differ in a few settings, queued, read and stopped as one.

A sweep is planned by `cnnlab.runs.queue.sweep_plan` and recorded here in the store's `sweeps` table
(id, name, owner, the axes and, for a random sample, its size and seed). `submit` queues each
planned run through whatever submits runs (the scheduler, or the server's access-checked view of
it), so the queue's order and the class's budgets apply to every run; each run is tagged with the
sweep's id. `Sweeps.runs` reads a sweep's runs with their best validation accuracy so far in one
query, cheap enough to poll; `stop` stops every queued or live run of a sweep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from cnnlab.errors import CnnLabError, SweepError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.sweep_plan import Axis, Plan, Value, format_value
from cnnlab.specs import DataSettings
from cnnlab.store import records
from cnnlab.store.database import Database
from cnnlab.store.records import RunRecord

ACCURACY_COLUMN = "best val. accuracy"
_SELECT_SWEEP_RUNS = (
    f"SELECT {', '.join('r.' + name for name in records.RUN_COLUMNS)}, "
    "(SELECT COALESCE(MAX(e.epoch), 0) FROM epoch_metrics e WHERE e.run_id = r.id) AS last_epoch, "
    "(SELECT MAX(e.val_accuracy) FROM epoch_metrics e WHERE e.run_id = r.id) AS best_so_far "
    "FROM runs r WHERE r.sweep = ? ORDER BY r.created_at, r.id"
)


class Submitter(Protocol):
    """Anything that queues a run: `cnnlab.runs.queue.scheduler.Scheduler` or the server's access-checked runs."""

    def submit(self, request: RunRequest) -> RunRecord:
        """Queue the run `request` describes and return its record."""
        ...


class Stopper(Protocol):
    """Anything that stops a run: a queued one at once, a live one after its current batch."""

    def stop(self, run_id: str) -> RunRecord:
        """Stop run `run_id` and return its record."""
        ...


@dataclass(frozen=True)
class SweepRecord:
    """A stored sweep: its identity, owner, the swept settings and values, and how it was sampled."""

    id: str
    name: str
    owner: str
    created_at: float
    axes: tuple[Axis, ...]
    sample: int | None = None
    seed: int | None = None

    @property
    def swept(self) -> tuple[Axis, ...]:
        """The axes with several values (an axis of one value sets that setting for every run)."""
        several = tuple(item for item in self.axes if len(item.values) > 1)
        return several or self.axes

    @property
    def settings(self) -> list[str]:
        """The swept settings, in the order they were given."""
        return [item.setting for item in self.swept]

    def describe(self) -> str:
        """`learning_rate in {0.001, 0.01} x batch_size in {16, 32}`, the fixed settings and the sample."""
        text = " x ".join(
            f"{item.setting} in {{{', '.join(format_value(value) for value in item.values)}}}"
            for item in self.swept
        )
        fixed = [
            f"{item.setting}={format_value(item.values[0])}" for item in self.axes if item not in self.swept
        ]
        if fixed:
            text += f" ({', '.join(fixed)})"
        return f"{text}, a random sample of {self.sample} (seed {self.seed})" if self.sample else text


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep with the best validation accuracy it has reached so far (None before one)."""

    run: RunRecord
    best_val_accuracy: float | None

    def values(self, sweep: SweepRecord) -> dict[str, Value | None]:
        """The value each swept setting has in this run."""
        spec, training = self.run.model_spec(), self.run.training()
        return {item.setting: item.value_of(spec, training) for item in sweep.swept}


def _sweep_from_row(row: dict[str, object]) -> SweepRecord:
    axes = tuple(Axis(str(setting), tuple(values)) for setting, values in json.loads(str(row["axes"])))
    sample, seed = row["sample"], row["seed"]
    return SweepRecord(
        id=str(row["id"]),
        name=str(row["name"]),
        owner=str(row["owner"]),
        created_at=float(str(row["created_at"])),
        axes=axes,
        sample=sample if isinstance(sample, int) else None,
        seed=seed if isinstance(seed, int) else None,
    )


class Sweeps:
    """The sweeps recorded in one store's database (`Sweeps(store.database)`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create(self, plan: Plan, name: str, owner: str) -> SweepRecord:
        """Record a planned sweep (its runs are queued by `submit`) and return it."""
        name = name.strip() or "sweep"
        sweep = SweepRecord(records.new_run_id(), name, owner, time.time(), plan.axes, plan.sample, plan.seed)
        axes = json.dumps([[item.setting, list(item.values)] for item in plan.axes])
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT INTO sweeps (id, name, owner, created_at, axes, sample, seed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sweep.id, sweep.name, owner, sweep.created_at, axes, plan.sample, plan.seed),
            )
        return sweep

    def get(self, sweep_id: str) -> SweepRecord:
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
        return _sweep_from_row(dict(rows[0]))

    def list_sweeps(self, *, owner: str | None = None, limit: int | None = None) -> list[SweepRecord]:
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
        return [_sweep_from_row(dict(row)) for row in rows]

    def runs(self, sweep_id: str) -> list[SweepRun]:
        """The sweep's runs in the order they were planned, each with its best validation accuracy so far."""
        rows = self.database.connection().execute(_SELECT_SWEEP_RUNS, (sweep_id,)).fetchall()
        found = []
        for row in rows:
            values = dict(row)
            run = records.record_from_row(values)
            # The finished run's own record of its best epoch wins; while it trains, its best epoch so far.
            best = run.result("best_val_accuracy")
            so_far = values.get("best_so_far")
            found.append(
                SweepRun(run, best if best is not None else so_far if isinstance(so_far, float) else None)
            )
        return found


def submit(
    plan: Plan,
    submitter: Submitter,
    sweeps: Sweeps,
    *,
    data_settings: DataSettings,
    name: str,
    owner: str,
    exercise: str | None = None,
) -> tuple[SweepRecord, list[RunRecord]]:
    """Record the sweep and queue each planned run through `submitter`, tagged with the sweep's id
    (and with the exercise it was started in, if any).

    A run the submitter refuses (e.g. over a class budget) raises SweepError saying how many were
    queued before it; those stay in the sweep, where they can be stopped as a whole.
    """
    sweep = sweeps.create(plan, name, owner)
    queued: list[RunRecord] = []
    for number, planned in enumerate(plan.runs, 1):
        try:
            run = submitter.submit(
                RunRequest(
                    spec=planned.spec,
                    data_settings=data_settings,
                    training_settings=planned.training,
                    name=f"{sweep.name}: {planned.label()}",
                    owner=owner,
                    exercise=exercise,
                    sweep=sweep.id,
                )
            )
        except CnnLabError as error:
            raise SweepError(
                f"Run {number} of the sweep's {len(plan.runs)} ({planned.label()}) was refused: {error} "
                f"The {len(queued)} runs queued before it are kept in sweep {sweep.id}; stop them as a whole "
                "if you want none of them."
            ) from None
        queued.append(run)
    return sweep, queued


def stop(sweeps: Sweeps, sweep_id: str, stopper: Stopper) -> list[str]:
    """Stop every queued or live run of the sweep; return the ids of the runs asked to stop."""
    asked = []
    for item in sweeps.runs(sweeps.get(sweep_id).id):
        if item.run.is_active:
            stopper.stop(item.run.id)
            asked.append(item.run.id)
    return asked


def best(runs: Sequence[SweepRun]) -> SweepRun | None:
    """The run with the highest best validation accuracy (the first planned on a tie), or None yet."""
    scored = [item for item in runs if item.best_val_accuracy is not None]
    return max(scored, key=lambda item: item.best_val_accuracy or 0.0) if scored else None


def table(sweep: SweepRecord, runs: Sequence[SweepRun], *, by_accuracy: bool = False) -> pd.DataFrame:
    """One row per run: id, name, each swept setting, status, epoch, best val. accuracy and the best mark.

    In planned order, or with `by_accuracy` best first (runs without an accuracy yet last).
    """
    top = best(runs)
    rows = [
        {
            "id": item.run.id,
            "name": item.run.name,
            **item.values(sweep),
            "status": str(item.run.status),
            "epoch": item.run.last_epoch,
            ACCURACY_COLUMN: None if item.best_val_accuracy is None else round(item.best_val_accuracy, 4),
            "best": top is not None and item.run.id == top.run.id,
        }
        for item in runs
    ]
    frame = pd.DataFrame(
        rows, columns=["id", "name", *sweep.settings, "status", "epoch", ACCURACY_COLUMN, "best"]
    )
    if by_accuracy:
        frame = frame.sort_values(ACCURACY_COLUMN, ascending=False, na_position="last", kind="stable")
    return frame.reset_index(drop=True)
