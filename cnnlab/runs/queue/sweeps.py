"""Sweeps: a named group of ordinary runs that differ in a few settings, queued, read and stopped as one.

A sweep is planned by `cnnlab.runs.queue.sweep_plan` and recorded through the store's `sweeps` table
(`cnnlab.store.sweeps`: id, name, owner, the axes and, for a random sample, its size and seed). `submit` queues each
planned run through whatever submits runs (the scheduler, or the server's access-checked view of
it), so the queue's order and the class's budgets apply to every run; each run is tagged with the
sweep's id. `Sweeps.runs` reads a sweep's runs with their best validation accuracy so far in one
query, cheap enough to poll; `stop` stops every queued or live run of a sweep.

A sweep on Optuna (`cnnlab.runs.queue.trials` starts and extends it) keeps its `Search` as well:
sampler, pruner, budget and ranges. Its runs are its trials, asked one by one as earlier ones end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from cnnlab.errors import CnnLabError, SweepError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import search_space, studies
from cnnlab.runs.queue.studies import Search
from cnnlab.runs.queue.sweep_plan import Axis, Plan, Value, format_value
from cnnlab.specs import DataSettings
from cnnlab.store.records import JsonValue, RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.store.sweeps import StoredSweep

ACCURACY_COLUMN = "best val. accuracy"
REASON_COLUMN = "why it ended"
# The statuses whose reason the sweep's table shows: why a trial was pruned or did not finish.
_EXPLAINED = frozenset({Status.PRUNED, Status.DIVERGED, Status.FAILED, Status.INTERRUPTED})


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
    search: Search | None = None
    closed: bool = False

    @property
    def swept(self) -> tuple[Axis, ...]:
        """The axes with several values (an axis of one value sets that setting for every run), and
        each range of a sweep on Optuna as the list of its two ends."""
        several = tuple(item for item in self.axes if len(item.values) > 1)
        ranges = tuple(item.bounds() for item in self.search.ranges) if self.search else ()
        return (several + ranges) or self.axes

    @property
    def settings(self) -> list[str]:
        """The swept settings, in the order they were given."""
        return [item.setting for item in self.swept]

    def describe(self) -> str:
        """`learning_rate in {0.001, 0.01} x batch_size in {16, 32}`, the fixed settings and the sample
        (or the search of a sweep on Optuna)."""
        several = tuple(item for item in self.axes if len(item.values) > 1)
        ranges: tuple[search_space.Range, ...] = self.search.ranges if self.search else ()
        if not several and not ranges:
            several = self.axes
        items: list[Axis | search_space.Range] = [*several, *ranges]
        text = " x ".join(search_space.describe(item) for item in items)
        fixed = [
            f"{item.setting}={format_value(item.values[0])}" for item in self.axes if item not in several
        ]
        if fixed:
            text += f" ({', '.join(fixed)})"
        if self.search is not None:
            return f"{text}; {self.search.describe()}"
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


def _typed(stored: StoredSweep) -> SweepRecord:
    """The stored sweep with its axes as `Axis` values."""
    axes = tuple(Axis(setting, tuple(values)) for setting, values in stored.axes)  # type: ignore[arg-type]
    search = Search.from_json(stored.search) if stored.search is not None else None
    return SweepRecord(
        stored.id,
        stored.name,
        stored.owner,
        stored.created_at,
        axes,
        stored.sample,
        stored.seed,
        search,
        stored.closed,
    )


class Sweeps:
    """The sweeps recorded in one store (`Sweeps(store)`), read and written through its `store.sweeps`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, plan: Plan, name: str, owner: str) -> SweepRecord:
        """Record a planned sweep (its runs are queued by `submit`) and return it."""
        axes: list[tuple[str, list[JsonValue]]] = [(item.setting, list(item.values)) for item in plan.axes]
        return _typed(self.store.sweeps.create(name.strip() or "sweep", owner, axes, plan.sample, plan.seed))

    def create_search(self, axes: Sequence[Axis], search: Search, name: str, owner: str) -> SweepRecord:
        """Record a sweep on Optuna over listed `axes` and `search.ranges` (its trials are asked later)."""
        listed: list[tuple[str, list[JsonValue]]] = [(item.setting, list(item.values)) for item in axes]
        stored = self.store.sweeps.create(
            name.strip() or "sweep", owner, listed, None, search.seed, search.to_json()
        )
        return _typed(stored)

    def set_search(self, sweep_id: str, search: Search, *, closed: bool) -> SweepRecord:
        """Record a sweep's changed search (stopped, or extended) and whether its budget is spent."""
        self.store.sweeps.set_search(sweep_id, search.to_json(), closed=closed)
        return self.get(sweep_id)

    def open_searches(self) -> list[SweepRecord]:
        """The sweeps on Optuna whose budget is not spent yet, oldest first."""
        return [_typed(stored) for stored in self.store.sweeps.open_searches()]

    def get(self, sweep_id: str) -> SweepRecord:
        """The sweep with id `sweep_id` (or a unique prefix of it); SweepError if there is none."""
        return _typed(self.store.sweeps.get(sweep_id))

    def list_sweeps(self, *, owner: str | None = None, limit: int | None = None) -> list[SweepRecord]:
        """Sweeps, newest first, optionally of one owner only."""
        return [_typed(stored) for stored in self.store.sweeps.list_sweeps(owner=owner, limit=limit)]

    def runs(self, sweep_id: str) -> list[SweepRun]:
        """The sweep's runs in the order they were planned, each with its best validation accuracy so far."""
        found = []
        for run, so_far in self.store.sweeps.runs(sweep_id):
            # The finished run's own record of its best epoch wins; while it trains, its best epoch so far.
            best = run.result("best_val_accuracy")
            found.append(SweepRun(run, best if best is not None else so_far))
        return found


class SweepCut(SweepError):
    """A sweep of which only the first `queued` runs were queued: the next was refused for `why`."""

    def __init__(
        self, sweep: SweepRecord, queued: Sequence[RunRecord], planned: int, refused: str, why: Exception
    ) -> None:
        self.sweep = sweep
        self.queued = list(queued)
        kept = (
            f"The {len(queued)} queued run(s) are in sweep {sweep.id}: follow them on the Runs page, or stop "
            "them as a whole."
            if queued
            else f"Sweep {sweep.id} has no runs; stop it or start a smaller one."
        )
        super().__init__(f"{len(queued)} of {planned} runs queued: {refused} was refused. {why} {kept}")


def submit(
    plan: Plan,
    submitter: Submitter,
    sweeps: Sweeps,
    *,
    data_settings: DataSettings,
    name: str,
    owner: str,
    exercise: str | None = None,
    exercise_locked: frozenset[str] = frozenset(),
    exercise_hidden: frozenset[str] = frozenset(),
) -> tuple[SweepRecord, list[RunRecord]]:
    """Record the sweep and queue each planned run through `submitter`, tagged with the sweep's id
    (and with the exercise it was started in and what that exercise fixes, if any).

    A run the submitter refuses (e.g. over a class budget, or the queue limit) raises `SweepCut`
    saying how many of the planned runs were queued and why the rest were not; those queued stay
    in the sweep, where they can be followed and stopped as a whole.
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
                    exercise_locked=exercise_locked,
                    exercise_hidden=exercise_hidden,
                    sweep=sweep.id,
                )
            )
        except CnnLabError as error:
            raise SweepCut(
                sweep, queued, len(plan.runs), f"run {number} ({planned.label()})", error
            ) from None
        queued.append(run)
    return sweep, queued


def stop(sweeps: Sweeps, sweep_id: str, stopper: Stopper) -> list[str]:
    """Stop every queued or live run of the sweep (a sweep on Optuna asks for no more trials); return
    the ids of the runs asked to stop."""
    sweep = sweeps.get(sweep_id)
    # The sweeps' watcher waits: it must not ask for a trial between the stop and the runs it ends.
    with studies.turn(sweeps.store.home, wait=True):
        sweep = sweeps.get(sweep.id)
        if sweep.search is not None and not sweep.closed:
            sweeps.set_search(sweep.id, dataclasses.replace(sweep.search, stopped=True), closed=False)
        asked = []
        for item in sweeps.runs(sweep.id):
            if item.run.is_active:
                stopper.stop(item.run.id)
                asked.append(item.run.id)
    return asked


def best(runs: Sequence[SweepRun]) -> SweepRun | None:
    """The run with the highest best validation accuracy (the first planned on a tie), or None yet."""
    scored = [item for item in runs if item.best_val_accuracy is not None]
    return max(scored, key=lambda item: item.best_val_accuracy or 0.0) if scored else None


def table(sweep: SweepRecord, runs: Sequence[SweepRun], *, by_accuracy: bool = False) -> pd.DataFrame:
    """One row per run: id, name, each swept setting, status, epoch, best val. accuracy, the best mark
    and why it ended when it did not complete (a pruned trial's reason).

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
            REASON_COLUMN: (item.run.reason or "") if item.run.status in _EXPLAINED else "",
        }
        for item in runs
    ]
    frame = pd.DataFrame(
        rows,
        columns=["id", "name", *sweep.settings, "status", "epoch", ACCURACY_COLUMN, "best", REASON_COLUMN],
    )
    if by_accuracy:
        frame = frame.sort_values(ACCURACY_COLUMN, ascending=False, na_position="last", kind="stable")
    return frame.reset_index(drop=True)
