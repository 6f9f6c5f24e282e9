"""What the class-wide stream says: the status, progress and best accuracy of the runs a user may see.

A teacher (and the local user) sees every run, a student their own and those shared with the class
(`cnnlab.classroom.access.RunAccess.list_runs`). Each tick lists those runs once (one query) and
says the rows that changed (`runs`) and the ids that are gone (`removed`); the Teacher console and
the Runs table redraw on that news instead of on a timer.
"""

from __future__ import annotations

from cnnlab.classroom.access import RunAccess
from cnnlab.store.records import RunRecord
from cnnlab.ui.stream.run_feed import Json, Message

MAX_RUNS = 500  # the newest runs a class stream follows


def row_of(run: RunRecord) -> dict[str, Json]:
    """What a class table shows of `run` that changes while it trains."""
    return {
        "id": run.id,
        "created_at": run.created_at,
        "status": run.status.value,
        "control": run.control,
        "last_epoch": run.last_epoch,
        "epochs_planned": run.training().epochs,
        "best_val_accuracy": run.last_val_accuracy,
        "shared": run.shared,
    }


class ClassFeed:
    """The runs `access`'s user may see, as rows; `tick` lists them once and says what changed."""

    def __init__(self, access: RunAccess) -> None:
        self.access = access
        self.reads = 0
        self._rows = self._read()

    def _read(self) -> dict[str, dict[str, Json]]:
        return {run.id: row_of(run) for run in self.access.list_runs(limit=MAX_RUNS)}

    def history(self) -> dict[str, Json]:
        """Every followed run's row, newest first."""
        return {"runs": list(self._rows.values())}

    def tick(self) -> list[Message]:
        """List the runs once; the rows that changed and the runs that are gone."""
        self.reads += 1
        rows = self._read()
        changed = [row for run_id, row in rows.items() if self._rows.get(run_id) != row]
        removed = [run_id for run_id in self._rows if run_id not in rows]
        self._rows = rows
        news = [Message("runs", changed)] if changed else []
        return news + ([Message("removed", removed)] if removed else [])
