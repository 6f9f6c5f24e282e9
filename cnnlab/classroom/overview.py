"""What the teacher's console shows: every student's runs in one table, and an exercise's leaderboard.

Pure functions over `RunRecord`s (one list query) and each run's last event: no metric tables are
read, so the console can refresh every couple of seconds for a class of 30.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from cnnlab.classroom.owner_names import owner_name
from cnnlab.errors import SpecError
from cnnlab.model import shapes
from cnnlab.store.records import RunRecord

OVERVIEW_COLUMNS = (
    "owner",
    "run",
    "status",
    "epoch",
    "of epochs",
    "validation accuracy",
    "last event",
    "exercise",
    "shared",
    "id",
)
# The columns a teacher can sort the overview by, and the column each sorts on.
SORTS: dict[str, str] = {
    "live first": "status",
    "owner": "owner",
    "validation accuracy": "validation accuracy",
    "epoch": "epoch",
    "newest": "id",
}
LEADERBOARD_COLUMNS = ("rank", "owner", "run", "test accuracy", "parameters", "status", "id")
# Live runs first, in the order a run moves through them; ended ones after.
_STATUS_ORDER = ("running", "starting", "paused", "queued")


def validation_accuracy(run: RunRecord) -> float | None:
    """The run's latest validation accuracy: its last epoch's, else its final result's."""
    if run.last_val_accuracy is not None:
        return run.last_val_accuracy
    return run.result("val_accuracy")


def planned_epochs(run: RunRecord) -> int | None:
    """How many epochs the run was set to train, or None when its settings cannot be read."""
    value = run.training_settings.get("epochs")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def class_overview(
    runs: Sequence[RunRecord],
    last_events: Mapping[str, str],
    names: Mapping[str, str] | None = None,
    sort_by: str = "live first",
) -> pd.DataFrame:
    """One row per run (owner, run, status, epoch, validation accuracy, last event ...), sorted by `sort_by`.

    `last_events` maps a run id to its last event's message; `names` maps an owner id to a display name.
    Sorting by "live first" puts running, starting, paused and queued runs first, then the newest.
    """
    if sort_by not in SORTS:
        raise SpecError(f"The overview can be sorted by {', '.join(SORTS)}; got {sort_by!r}.")
    names = names or {}
    rows = [
        {
            "owner": owner_name(run.owner, names),
            "run": run.name,
            "status": str(run.status),
            "epoch": run.last_epoch,
            "of epochs": planned_epochs(run),
            "validation accuracy": validation_accuracy(run),
            "last event": last_events.get(run.id, ""),
            "exercise": run.exercise or "",
            "shared": run.shared,
            "id": run.id,
        }
        for run in runs
    ]
    table = pd.DataFrame(rows, columns=list(OVERVIEW_COLUMNS))
    if table.empty:
        return table
    table["validation accuracy"] = table["validation accuracy"].astype(float)
    table["of epochs"] = table["of epochs"].astype("Int64")
    newest_first = table.sort_values("id", ascending=False, kind="stable")
    if sort_by == "live first":
        order = newest_first["status"].map(
            lambda status: _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)
        )
        ordered = (
            newest_first.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order")
        )
    elif sort_by == "owner":
        ordered = newest_first.sort_values("owner", key=lambda column: column.str.lower(), kind="stable")
    elif sort_by == "newest":
        ordered = newest_first
    else:
        ordered = newest_first.sort_values(SORTS[sort_by], ascending=False, kind="stable", na_position="last")
    return ordered.reset_index(drop=True)


def parameter_count(run: RunRecord) -> int | None:
    """The run's number of parameters, from its model spec (None when the spec cannot be read)."""
    try:
        return shapes.analyse(run.model_spec()).total_parameters
    except SpecError:
        return None


def exercise_names(runs: Sequence[RunRecord]) -> list[str]:
    """The exercises the runs were started from, the most recently used first."""
    names: list[str] = []
    for run in sorted(runs, key=lambda run: run.created_at, reverse=True):
        if run.exercise and run.exercise not in names:
            names.append(run.exercise)
    return names


# Said where the leaderboard is shown: what it ranks and what takes a run out of it.
LEADERBOARD_RULE = (
    "Each student's best run of the exercise, ranked by test accuracy (fewer parameters first on a tie). "
    "A run continued past the epochs the exercise fixes, or forked with a setting it fixes changed, "
    "leaves the exercise and is not ranked."
)


def leaderboard(
    runs: Sequence[RunRecord], exercise: str, names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Each owner's best run of `exercise` with a test accuracy, best first; of equal accuracy, fewer
    parameters first (see `LEADERBOARD_RULE`).

    Runs with the same accuracy and parameter count share a rank (1, 2, 2, 4).
    """
    names = names or {}
    rows = [
        {
            "owner_id": run.owner,
            "owner": owner_name(run.owner, names),
            "run": run.name,
            "test accuracy": run.result("test_accuracy"),
            "parameters": parameter_count(run),
            "status": str(run.status),
            "id": run.id,
        }
        for run in runs
        if run.exercise == exercise and run.result("test_accuracy") is not None
    ]
    table = pd.DataFrame(
        rows, columns=["owner_id", *(column for column in LEADERBOARD_COLUMNS if column != "rank")]
    )
    if table.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    table = (
        table.sort_values(
            ["test accuracy", "parameters", "id"], ascending=[False, True, True], na_position="last"
        )
        .drop_duplicates("owner_id")  # Each owner's best run only: the first of theirs in this order.
        .drop(columns="owner_id")
        .reset_index(drop=True)
    )
    results = list(zip(table["test accuracy"], table["parameters"], strict=True))
    ranks: list[int] = []
    for position, result in enumerate(results):
        ranks.append(ranks[-1] if position and result == results[position - 1] else position + 1)
    table.insert(0, "rank", ranks)
    table["parameters"] = table["parameters"].astype("Int64")
    return table
