"""The store's SQLite database: its schema, one connection per thread and process, and transactions.

`$CNNLAB_HOME/runs.sqlite3` runs in WAL mode, so a worker process writes while the server reads.
Each thread and process opens its own connection (a connection must not cross a `fork` or be
shared between threads); every write is its own `BEGIN IMMEDIATE` transaction, committed at once,
so a killed worker loses nothing it already recorded and two writers never deadlock upgrading a
read lock. `cnnlab.store.run_store.Store` and `cnnlab.store.artifacts.RunArtifacts` share one `Database`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cnnlab.store import statuses

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, queued_at REAL, started_at REAL, ended_at REAL, heartbeat_at REAL,
    spec TEXT NOT NULL, data_settings TEXT NOT NULL, training_settings TEXT NOT NULL,
    dataset_summary TEXT, results TEXT, parent_id TEXT, parent_epoch INTEGER,
    worker_pid INTEGER, worker_host TEXT, control TEXT, reason TEXT, hint TEXT, traceback TEXT,
    shared INTEGER NOT NULL DEFAULT 0, exercise TEXT, sweep TEXT);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, queued_at);
CREATE INDEX IF NOT EXISTS runs_by_owner ON runs (owner, status);
CREATE TABLE IF NOT EXISTS batch_metrics (
    run_id TEXT NOT NULL, epoch INTEGER, batch INTEGER, step INTEGER, loss REAL, accuracy REAL,
    learning_rate REAL, time REAL);
CREATE INDEX IF NOT EXISTS batch_metrics_by_run ON batch_metrics (run_id, step);
CREATE TABLE IF NOT EXISTS epoch_metrics (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, loss REAL, accuracy REAL, val_loss REAL,
    val_accuracy REAL, learning_rate REAL, epoch_seconds REAL, extras TEXT, time REAL,
    PRIMARY KEY (run_id, epoch));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, time REAL NOT NULL,
    level TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, epoch));
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL, which TEXT NOT NULL, epoch INTEGER NOT NULL, path TEXT NOT NULL,
    time REAL NOT NULL, PRIMARY KEY (run_id, which));
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, created_at REAL NOT NULL,
    axes TEXT NOT NULL, sample INTEGER, seed INTEGER);
"""

# Columns added to `runs` after its first release, with their definitions: a database made before
# gets them when it is opened, so an upgrade keeps every recorded run.
ADDED_RUN_COLUMNS = {
    "shared": "INTEGER NOT NULL DEFAULT 0",  # a teacher shared the run with the class (read-only)
    "exercise": "TEXT",  # the exercise the run was started from, if any
    "sweep": "TEXT",  # the sweep the run belongs to, if any
}


class Database:
    """The SQLite file at `path`, created with the schema on first use; safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        connection = self.connection()
        connection.executescript(SCHEMA)
        with self.transaction() as locked:  # Another process may be adding the same columns.
            present = {row["name"] for row in locked.execute("PRAGMA table_info(runs)")}
            for name, definition in ADDED_RUN_COLUMNS.items():
                if name not in present:
                    locked.execute(f"ALTER TABLE runs ADD COLUMN {name} {definition}")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened again after a fork), rows readable by column name."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.row_factory = sqlite3.Row
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock at once (no upgrade deadlocks)."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def count_runs(connection: sqlite3.Connection, wanted: Iterable[str]) -> int:
    """How many runs are in one of the `wanted` statuses (RunError for an unknown status)."""
    names = [statuses.check_status(status).value for status in wanted]
    query = f"SELECT COUNT(*) FROM runs WHERE status IN ({', '.join('?' * len(names))})"
    count: int = connection.execute(query, names).fetchone()[0]
    return count


def add_event(connection: sqlite3.Connection, run_id: str, level: str, message: str, now: float) -> None:
    """Append a line to a run's event log inside the caller's transaction."""
    connection.execute(
        "INSERT INTO events (run_id, time, level, message) VALUES (?, ?, ?, ?)",
        (run_id, now, level, message),
    )
