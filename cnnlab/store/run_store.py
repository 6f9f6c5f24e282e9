"""The run store: the only code that reads or writes run data.

Everything lives under `CNNLAB_HOME` (default `~/.cnnlab`): the SQLite database `runs.sqlite3`
(`cnnlab.store.database`: WAL mode, so the worker process writes while the server reads; each
thread and process gets its own connection; every write is its own committed transaction, so a
killed worker loses nothing it already recorded) and a folder per run, `runs/<run_id>/`, for
checkpoints and telemetry snapshots (`cnnlab.store.artifacts`, held as `store.artifacts`, whose
methods the store hands on). Runs are created from the `cnnlab.specs` dataclasses and read back
as `RunRecord`s. The pages read through the `cnnlab.store.reader.RunReader` protocol, which
`Store` satisfies. The other tables are the run's metrics, events and diagnoses
(`cnnlab.store.metrics`) and the sweeps (`store.sweeps`, `cnnlab.store.sweeps`); no code outside
`cnnlab/store/` holds SQL. This module imports neither TensorFlow nor streamlit.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.errors import RunError
from cnnlab.run_request import RunRequest
from cnnlab.specs import TrainingSettings
from cnnlab.store import database, fair_queue, metrics, names, records, statuses, transfer
from cnnlab.store.artifacts import NamedArrays, RunArtifacts, SnapshotArrays
from cnnlab.store.database import DatabaseError
from cnnlab.store.diagnoses import Diagnosis
from cnnlab.store.people import PeopleTable
from cnnlab.store.records import JsonValue, ResultValue, RunRecord, RunVersion
from cnnlab.store.status_changes import change_status
from cnnlab.store.statuses import Status
from cnnlab.store.sweeps import SweepTable

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.

__all__ = ["BATCH_COLUMNS", "EPOCH_COLUMNS", "DatabaseError", "Store", "default_home"]

BATCH_COLUMNS = metrics.BATCH_COLUMNS
EPOCH_COLUMNS = metrics.EPOCH_COLUMNS


def default_home() -> Path:
    """The data folder: `$CNNLAB_HOME`, or `~/.cnnlab` when it is not set."""
    return Path(os.environ.get("CNNLAB_HOME") or Path.home() / ".cnnlab").expanduser()


_SELECT_RUNS = (
    f"{fair_queue.POSITIONS_CTE}SELECT {', '.join('r.' + name for name in records.RUN_COLUMNS)}, "
    f"{fair_queue.QUEUE_POSITION}, "
    "(SELECT COALESCE(MAX(epoch), 0) FROM epoch_metrics e WHERE e.run_id = r.id) AS last_epoch, "
    "(SELECT v.val_accuracy FROM epoch_metrics v WHERE v.run_id = r.id ORDER BY v.epoch DESC LIMIT 1) "
    "AS last_val_accuracy FROM runs r"
)
_VERSION_QUERY = (
    "SELECT r.status, r.control, "
    "(SELECT MAX(time) FROM epoch_metrics e WHERE e.run_id = r.id) AS epoch_time, "
    "(SELECT MAX(step) FROM batch_metrics b WHERE b.run_id = r.id) AS last_step, "
    "(SELECT MAX(id) FROM events v WHERE v.run_id = r.id) AS last_event, "
    "(SELECT MAX(id) FROM diagnoses d WHERE d.run_id = r.id) AS last_diagnosis, "
    "(SELECT MAX(time) FROM checkpoints c WHERE c.run_id = r.id) AS checkpoint_time, "
    "(SELECT MAX(epoch) FROM snapshots s WHERE s.run_id = r.id) AS snapshot_epoch "
    "FROM runs r WHERE r.id = ?"
)


class Store:
    """The run store under `home` (default: `default_home()`); cheap to create, safe across threads."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.database = database.Database(self.home / "runs.sqlite3")
        self.artifacts = RunArtifacts(self.home, self.database)
        self.metrics = metrics.RunMetrics(self.database)
        self.sweeps = SweepTable(self.database)
        self.people = PeopleTable(self.database)

    @property
    def database_path(self) -> Path:
        """The SQLite file, `runs.sqlite3` in the home folder."""
        return self.database.path

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self.database.close()

    # Files: snapshots and checkpoints (see `cnnlab.store.artifacts`).

    def run_folder(self, run_id: str) -> Path:
        """The folder holding the run's checkpoints and snapshots."""
        return self.artifacts.run_folder(run_id)

    def write_snapshot(self, run_id: str, epoch: int, kind: str, arrays: NamedArrays) -> Path:
        """Store named arrays for one epoch (see `RunArtifacts.write_snapshot`)."""
        return self.artifacts.write_snapshot(run_id, epoch, kind, arrays)

    def snapshot_path(self, run_id: str, epoch: int, kind: str) -> Path:
        """Where the snapshot of `kind` for `epoch` is written (it may not exist)."""
        return self.artifacts.snapshot_path(run_id, epoch, kind)

    def read_snapshot(self, run_id: str, epoch: int, kind: str) -> SnapshotArrays:
        """The arrays of one snapshot; RunError if it was not recorded."""
        return self.artifacts.read_snapshot(run_id, epoch, kind)

    def snapshot_epochs(self, run_id: str, kind: str) -> list[int]:
        """The epochs that have a snapshot of this kind, in order."""
        return self.artifacts.snapshot_epochs(run_id, kind)

    def checkpoint_path(self, run_id: str, which: str | int = "latest") -> Path:
        """Where checkpoint `which` ("latest", "best" or an epoch number) lives (it may not exist yet)."""
        return self.artifacts.checkpoint_path(run_id, which)

    def save_checkpoint(
        self, run_id: str, which: str | int, epoch: int, write: Callable[[Path], object]
    ) -> Path:
        """Write a checkpoint atomically (see `RunArtifacts.save_checkpoint`)."""
        return self.artifacts.save_checkpoint(run_id, which, epoch, write)

    def delete_epoch_weights(self, run_id: str, epoch: int) -> None:
        """Forget an epoch's layer weights (see `RunArtifacts.delete_epoch_weights`)."""
        self.artifacts.delete_epoch_weights(run_id, epoch)

    def checkpoints(self, run_id: str) -> dict[str, int]:
        """The checkpoints written so far: name ("latest", "best", "epoch_0003") to epoch."""
        return self.artifacts.checkpoints(run_id)

    def forked_epochs(self, run_id: str) -> set[int]:
        """The epochs of run `run_id` that other runs were forked from (their weights must stay)."""
        rows = (
            self.database.connection()
            .execute("SELECT DISTINCT parent_epoch FROM runs WHERE parent_id = ?", (run_id,))
            .fetchall()
        )
        return {int(row["parent_epoch"]) for row in rows if row["parent_epoch"] is not None}

    # Runs.

    def create_run(self, request: RunRequest, *, status: Status = Status.QUEUED) -> RunRecord:
        """Record a new run (queued by default) as `request` describes it: model, data and training
        settings, name, owner, and its exercise, sweep and parent if it has them.

        The request's `probes` are not written here; `Scheduler.submit` writes them.
        """
        spec, data_settings, training_settings = (
            request.spec,
            request.data_settings,
            request.training_settings,
        )
        name, owner, exercise, sweep = request.name, request.owner, request.exercise, request.sweep
        parent_id, parent_epoch = request.parent_id, request.parent_epoch
        now = time.time()
        run_id = records.new_run_id(now)
        status = statuses.check_status(status)
        if name is None:
            name = names.run_name(spec, data_settings, now)
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT INTO runs (id, name, owner, status, created_at, queued_at, spec, data_settings, "
                "training_settings, parent_id, parent_epoch, exercise, sweep, exercise_controls) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    name,
                    owner,
                    status.value,
                    now,
                    now if status == Status.QUEUED else None,
                    records.to_json(spec),
                    records.to_json(data_settings),
                    records.to_json(training_settings),
                    parent_id,
                    parent_epoch,
                    exercise,
                    sweep,
                    records.to_json(request.exercise_controls),
                ),
            )
            database.add_event(connection, run_id, "info", f"created ({status})", now)
        self.run_folder(run_id).mkdir(parents=True, exist_ok=True)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id `run_id` (or a unique prefix of it); RunError if there is none."""
        rows = self.database.connection().execute(f"{_SELECT_RUNS} WHERE r.id = ?", (run_id,)).fetchall()
        if not rows:
            rows = (
                self.database.connection()
                .execute(f"{_SELECT_RUNS} WHERE substr(r.id, 1, ?) = ? LIMIT 2", (len(run_id), run_id))
                .fetchall()
            )
        if len(rows) != 1:
            problem = "matches several runs" if rows else "matches no run"
            raise RunError(f"Run id {run_id!r} {problem}; `python -m cnnlab runs` lists them.")
        return records.record_from_row(dict(rows[0]))

    def list_runs(
        self,
        *,
        status: str | Iterable[str] | None = None,
        owner: str | None = None,
        limit: int | None = None,
        visible_to: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only some statuses, one owner, or those user `visible_to` owns or sees shared."""
        conditions: list[str] = []
        parameters: list[str | int] = []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            conditions.append(f"r.status IN ({', '.join('?' * len(wanted))})")
            parameters += [statuses.check_status(item).value for item in wanted]
        if owner is not None:
            conditions.append("r.owner = ?")
            parameters.append(owner)
        if visible_to is not None:
            conditions.append("(r.owner = ? OR r.shared = 1)")
            parameters.append(visible_to)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        query = f"{_SELECT_RUNS}{where} ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
        rows = (
            self.database.connection()
            .execute(query, [*parameters, -1 if limit is None else limit])
            .fetchall()
        )
        return [records.record_from_row(dict(row)) for row in rows]

    def queued_runs(self) -> list[RunRecord]:
        """Queued runs in the order they will start."""
        return sorted(self.list_runs(status=Status.QUEUED), key=lambda run: run.queue_position or 0)

    def _update(self, run_id: str, **values: str | float | None) -> None:
        with self.database.transaction() as connection:
            if database.update_run(connection, run_id, values) == 0:
                raise RunError(f"There is no run {run_id!r}; `python -m cnnlab runs` lists them.")

    def ownership(self, run_id: str) -> tuple[str, bool] | None:
        """The run's owner and whether it is shared with the class (one indexed read); None if no run has this exact id."""
        row = (
            self.database.connection()
            .execute("SELECT owner, shared FROM runs WHERE id = ?", (run_id,))
            .fetchone()
        )
        return None if row is None else (str(row["owner"]), bool(row["shared"]))

    def run_version(self, run_id: str) -> RunVersion | None:
        """What a live view's drawing depends on, in one query over indexed columns; None if there is no such run."""
        row = self.database.connection().execute(_VERSION_QUERY, (run_id,)).fetchone()
        return None if row is None else RunVersion(**dict(row))

    def rename_run(self, run_id: str, name: str) -> None:
        """Give the run a new display name."""
        if not name.strip():
            raise RunError("A run name cannot be empty; got an empty name.")
        self._update(run_id, name=name.strip())

    def set_shared(self, run_id: str, shared: bool) -> None:
        """Share the run with the class (every signed-in user may read it) or stop sharing it."""
        self._update(run_id, shared=int(shared))

    def leave_exercise(self, run_id: str, why: str) -> None:
        """Untag the run from its exercise (the leaderboard no longer ranks it) and log `why` in its events.

        What the exercise hid stays recorded, so it stays hidden from the run's owner.
        """
        with self.database.transaction() as connection:
            row = connection.execute("SELECT exercise FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunError(f"There is no run {run_id!r}; `python -m cnnlab runs` lists them.")
            if row["exercise"] is None:
                return
            database.update_run(connection, run_id, {"exercise": None})
            database.add_event(
                connection, run_id, "warning", f"left the exercise {row['exercise']!r}: {why}", time.time()
            )

    def set_dataset_summary(self, run_id: str, summary: pd.DataFrame | JsonValue) -> None:
        """Record the dataset summary (a pandas DataFrame, kept as its rows, or JSON-able values)."""
        self._update(run_id, dataset_summary=records.to_json(summary))

    def set_results(self, run_id: str, results: Mapping[str, ResultValue]) -> None:
        """Record the final figures (for example test accuracy and loss)."""
        self._update(run_id, results=records.to_json(dict(results)))

    def set_training_settings(self, run_id: str, training_settings: TrainingSettings) -> None:
        """Replace the training settings (a continue asks for more epochs)."""
        self._update(run_id, training_settings=records.to_json(training_settings))

    def delete_run(self, run_id: str) -> None:
        """Remove the run and its folder; RunError if it is still active.

        One DELETE of the run's row: its metrics, events, diagnoses, snapshots and checkpoints
        go with it (`ON DELETE CASCADE`, `cnnlab.store.database`).
        """
        run = self.get_run(run_id)
        if run.status in statuses.LIVE:
            raise RunError(f"Run {run.id} is {run.status}; stop it before deleting it.")
        with self.database.transaction() as connection:
            connection.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        shutil.rmtree(self.run_folder(run.id), ignore_errors=True)

    # Status, heartbeat and control.

    def set_status(
        self,
        run_id: str,
        status: Status,
        *,
        reason: str | None = None,
        hint: str | None = None,
        traceback: str | None = None,
        expected: Status | Iterable[Status] | None = None,
    ) -> RunRecord:
        """Move the run to `status` if the transition table allows it (RunError if not).

        `expected` optionally names the status(es) the caller believes the run is in; the change
        is refused (RunError) when another process has moved it meanwhile.
        """
        with self.database.transaction() as connection:
            change_status(
                connection,
                run_id,
                status,
                time.time(),
                reason=reason,
                hint=hint,
                traceback=traceback,
                expected=expected,
            )
        return self.get_run(run_id)

    def claim_next_queued(self, max_occupying: int) -> RunRecord | None:
        """Atomically move the head of the fair queue (`cnnlab.store.fair_queue`) to `starting` if a slot is free.

        Safe when several schedulers (the server and a CLI) share one store: each run is claimed once.
        """
        now = time.time()
        with self.database.transaction() as connection:
            if database.count_runs(connection, statuses.OCCUPYING) >= max_occupying:
                return None
            row = connection.execute(fair_queue.NEXT_QUEUED).fetchone()
            if row is None:
                return None
            change_status(
                connection, row["id"], Status.STARTING, now, also={"heartbeat_at": now, "worker_pid": None}
            )
        return self.get_run(row["id"])

    def count_runs(self, wanted: Iterable[str]) -> int:
        """How many runs are in one of the `wanted` statuses (without reading them)."""
        return database.count_runs(self.database.connection(), wanted)

    def heartbeat(self, run_id: str, pid: int) -> None:
        """Record that worker process `pid` (on this host) is alive and working on the run."""
        self._update(run_id, heartbeat_at=time.time(), worker_pid=pid, worker_host=socket.gethostname())

    def request_control(self, run_id: str, action: str, *, by: str | None = None) -> None:
        """Ask the run's worker to stop, pause or resume; it acts between batches.

        `by` records who asked when it was not the run's owner (a role word: "teacher").
        """
        statuses.check_control(action)
        run = self.get_run(run_id)
        if run.status not in statuses.LIVE:
            raise RunError(
                f"Run {run.id} is {run.status}; only a starting, running or paused run takes {action!r}."
            )
        self._update(run.id, control=action)
        self.note_request(run.id, action, by=by)

    def note_request(self, run_id: str, action: str, *, by: str | None = None) -> None:
        """Log that `action` was asked of the run (by `by`, a role word, when not its owner)."""
        statuses.check_control(action)
        if by is not None and not by.isalpha():
            raise RunError(f"A control request is made by a role such as 'teacher'; got {by!r}.")
        self.log_event(run_id, f"{action} requested" + (f" by {by}" if by else ""))

    def requested_by(self, run_id: str, action: str) -> str | None:
        """Who made the latest `action` request of the run (`by` of `note_request`); None for its owner or none."""
        statuses.check_control(action)
        row = (
            self.database.connection()
            .execute(
                "SELECT message FROM events WHERE run_id = ? AND (message = ? OR message LIKE ?) "
                "ORDER BY id DESC LIMIT 1",
                (run_id, f"{action} requested", f"{action} requested by %"),
            )
            .fetchone()
        )
        if row is None:
            return None
        _, _, by = str(row["message"]).partition(" by ")
        return by or None

    def pending_control(self, run_id: str) -> str | None:
        """The latest unanswered control request ("stop", "pause", "resume") or None; one indexed read."""
        row = (
            self.database.connection().execute("SELECT control FROM runs WHERE id = ?", (run_id,)).fetchone()
        )
        return None if row is None else row["control"]

    def clear_control(self, run_id: str, action: str) -> None:
        """Mark request `action` as answered, unless a newer, different request replaced it."""
        with self.database.transaction() as connection:
            database.update_run(connection, run_id, {"control": None}, only_if={"control": action})

    # Metrics and events (see `cnnlab.store.metrics`).

    def add_batch_metrics(self, run_id: str, rows: Iterable[Mapping[str, object]]) -> None:
        """Append batch metrics (see `RunMetrics.add_batch_metrics`)."""
        self.metrics.add_batch_metrics(run_id, rows)

    def add_epoch_metrics(self, run_id: str, row: Mapping[str, object]) -> None:
        """Record one epoch's metrics (see `RunMetrics.add_epoch_metrics`)."""
        self.metrics.add_epoch_metrics(run_id, row)

    def copy_epoch_metrics(self, source_id: str, target_id: str, up_to_epoch: int) -> None:
        """Give a fork its parent's epoch metrics up to the epoch it was forked from."""
        self.metrics.copy_epoch_metrics(source_id, target_id, up_to_epoch)

    def batch_metrics(self, run_id: str, *, after_step: int | None = None) -> pd.DataFrame:
        """Batch metrics in step order (only steps after `after_step` when given)."""
        return self.metrics.batch_metrics(run_id, after_step=after_step)

    def epoch_metrics(self, run_id: str, *, written_at: bool = False) -> pd.DataFrame:
        """Epoch metrics in epoch order, with the extras spread into their own columns (and, with
        `written_at`, when each row was written)."""
        return self.metrics.epoch_metrics(run_id, written_at=written_at)

    def log_event(self, run_id: str, message: str, level: str = "info") -> None:
        """Append a line to the run's event log (level: debug, info, warning or error)."""
        self.metrics.log_event(run_id, message, level)

    def events(self, run_id: str) -> pd.DataFrame:
        """The event log, oldest first: time, level, message."""
        return self.metrics.events(run_id)

    def add_diagnosis(self, run_id: str, finding: Diagnosis) -> None:
        """Record a diagnosis as a row and its line in the event log (see `RunMetrics.add_diagnosis`)."""
        self.metrics.add_diagnosis(run_id, finding)

    def diagnoses(self, run_id: str) -> list[Diagnosis]:
        """The run's diagnoses, oldest first."""
        return self.metrics.diagnoses(run_id)

    # Copying a run to another store (see `cnnlab.store.transfer`).

    def export_run_rows(self, run_id: str) -> transfer.Rows:
        """The rows a job on another machine reads of run `run_id`: the run, epoch metrics, checkpoints, probes."""
        return transfer.export_rows(self.database, run_id)

    def import_run_rows(self, rows: Mapping[str, Sequence[Mapping[str, object]]]) -> None:
        """Insert rows `export_run_rows` gave (in another store) into this one, in one transaction."""
        transfer.import_rows(self.database, rows)
