"""The store's SQLite database: its schema and version, one connection per thread and process, transactions.

`$CNNLAB_HOME/runs.sqlite3` runs in WAL mode, so a worker process writes while the server reads.
Each thread and process opens its own connection (a connection must not cross a `fork` or be
shared between threads); every write is its own `BEGIN IMMEDIATE` transaction, committed at once,
so a killed worker loses nothing it already recorded and two writers never deadlock upgrading a
read lock. `cnnlab.store.run_store.Store` and `cnnlab.store.artifacts.RunArtifacts` share one `Database`.

Every table that holds something of a run refers to it by a foreign key with `ON DELETE CASCADE`
(and every connection turns foreign keys on), so deleting the run's row deletes all of it. A fork's
`parent_id` is history (the run it came from, shown in its lineage), not such a reference: a fork
outlives its parent. The schema's version is `PRAGMA user_version`; `cnnlab.store.migrations`
brings an older database up to `SCHEMA_VERSION` once, the first time this version opens it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cnnlab.errors import RunError
from cnnlab.store import records, statuses

# What a failed read or write of the database raises (a locked or full disk, a damaged file):
# code outside the store catches this name and never imports sqlite3 itself.
DatabaseError = sqlite3.Error
Connection = sqlite3.Connection

SCHEMA_VERSION = 5
"""The `PRAGMA user_version` of a database with the tables below (0: made before versions were kept)."""
WAL_WAIT_SECONDS = 30.0  # how long a new connection asks for WAL while another process holds the file

_RUN_REFERENCE = "run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE"
RUN_TABLE = """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, queued_at REAL, started_at REAL, ended_at REAL, heartbeat_at REAL,
    spec TEXT NOT NULL, data_settings TEXT NOT NULL, training_settings TEXT NOT NULL,
    dataset_summary TEXT, results TEXT, parent_id TEXT, parent_epoch INTEGER,
    worker_pid INTEGER, worker_host TEXT, control TEXT, reason TEXT, hint TEXT, traceback TEXT,
    shared INTEGER NOT NULL DEFAULT 0, exercise TEXT, sweep TEXT, exercise_controls TEXT)"""
# The tables that hold something of one run, each with its `run_id` foreign key.
RUN_PART_TABLES: dict[str, str] = {
    "batch_metrics": f"""CREATE TABLE IF NOT EXISTS batch_metrics (
    {_RUN_REFERENCE}, epoch INTEGER, batch INTEGER, step INTEGER, loss REAL, accuracy REAL,
    learning_rate REAL, time REAL)""",
    "epoch_metrics": f"""CREATE TABLE IF NOT EXISTS epoch_metrics (
    {_RUN_REFERENCE}, epoch INTEGER NOT NULL, loss REAL, accuracy REAL, val_loss REAL,
    val_accuracy REAL, learning_rate REAL, epoch_seconds REAL, extras TEXT, time REAL,
    PRIMARY KEY (run_id, epoch))""",
    "events": f"""CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, {_RUN_REFERENCE}, time REAL NOT NULL,
    level TEXT NOT NULL, message TEXT NOT NULL)""",
    "snapshots": f"""CREATE TABLE IF NOT EXISTS snapshots (
    {_RUN_REFERENCE}, epoch INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, epoch))""",
    "checkpoints": f"""CREATE TABLE IF NOT EXISTS checkpoints (
    {_RUN_REFERENCE}, which TEXT NOT NULL, epoch INTEGER NOT NULL, path TEXT NOT NULL,
    time REAL NOT NULL, PRIMARY KEY (run_id, which))""",
    "diagnoses": f"""CREATE TABLE IF NOT EXISTS diagnoses (
    id INTEGER PRIMARY KEY AUTOINCREMENT, {_RUN_REFERENCE}, time REAL NOT NULL,
    epoch INTEGER NOT NULL, kind TEXT NOT NULL, cause TEXT NOT NULL, fix TEXT NOT NULL)""",
}
SWEEP_TABLE = """CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, created_at REAL NOT NULL,
    axes TEXT NOT NULL, sample INTEGER, seed INTEGER, search TEXT, closed INTEGER NOT NULL DEFAULT 0)"""
# The class's users and their sign-in sessions (`cnnlab.store.people`; version 2).
USERS_TABLE = """CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT UNIQUE, role TEXT NOT NULL,
    pin_hash TEXT, issuer_subject TEXT UNIQUE, created_at REAL NOT NULL,
    failed_pins INTEGER NOT NULL DEFAULT 0, locked_until REAL)"""
SESSIONS_TABLE = """CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT UNIQUE, ticket_hash TEXT UNIQUE, ticket_expires_at REAL, class_key TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, ended_at REAL, end_reason TEXT)"""
# Moments of the class, by name (such as when the teacher last ended the lesson).
CLASS_MARKS_TABLE = """CREATE TABLE IF NOT EXISTS class_marks (name TEXT PRIMARY KEY, time REAL NOT NULL)"""
# Every run-part table's key or index starts with `run_id`, so a cascading delete finds the rows by index.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, queued_at)",
    "CREATE INDEX IF NOT EXISTS runs_by_owner ON runs (owner, status)",
    "CREATE INDEX IF NOT EXISTS batch_metrics_by_run ON batch_metrics (run_id, step)",
    "CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id)",
    "CREATE INDEX IF NOT EXISTS diagnoses_by_run ON diagnoses (run_id, id)",
    "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id)",
)
_RUN_COLUMNS = frozenset(records.RUN_COLUMNS)
SCHEMA: tuple[str, ...] = (
    RUN_TABLE,
    *RUN_PART_TABLES.values(),
    SWEEP_TABLE,
    USERS_TABLE,
    SESSIONS_TABLE,
    CLASS_MARKS_TABLE,
    *INDEXES,
)
"""The statements that make a database of `SCHEMA_VERSION` (each safe to run again)."""


def open_connection(path: Path) -> sqlite3.Connection:
    """A new connection to `path` with the store's settings: WAL, a 30 s lock wait, foreign keys on."""
    connection = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 30000")
    _write_ahead_log(connection)
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.row_factory = sqlite3.Row
    return connection


def _write_ahead_log(connection: sqlite3.Connection, seconds: float = WAL_WAIT_SECONDS) -> None:
    """Turn on WAL. While another process creates the same file, SQLite may refuse the switch at once
    ("database is locked") without waiting on the busy timeout, so it is asked again for `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def schema_version(connection: sqlite3.Connection) -> int:
    """The database's `PRAGMA user_version`."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


class Database:
    """The SQLite file at `path`, created or migrated to `SCHEMA_VERSION` on first use; safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        version = schema_version(self.connection())
        if version != SCHEMA_VERSION:
            from cnnlab.store import migrations

            migrations.migrate(path, version)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened again after a fork), rows readable by column name."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            connection = open_connection(self.path)
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock at once (no upgrade deadlocks)."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except sqlite3.IntegrityError as error:
            connection.execute("ROLLBACK")
            if "FOREIGN KEY" not in str(error):
                raise
            raise RunError(
                f"A write names a run that is not in the store ({error}); nothing of it was written. The run "
                "may have been deleted meanwhile: `python -m cnnlab runs` lists the runs there are."
            ) from error
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


def update_run(
    connection: sqlite3.Connection,
    run_id: str,
    values: Mapping[str, object],
    *,
    only_if: Mapping[str, object] | None = None,
) -> int:
    """Set columns of run `run_id` inside the caller's transaction: the store's one `UPDATE runs`.

    `only_if` adds conditions (column to the value it must hold); the number of rows changed is
    returned (0 when the run is missing or a condition does not hold). Column names are checked
    against the run table, so no text from outside becomes SQL.
    """
    columns = _RUN_COLUMNS
    unknown = [name for name in [*values, *(only_if or {})] if name not in columns]
    if unknown:
        raise RunError(f"The runs table has no column {unknown[0]!r}; it has {', '.join(sorted(columns))}.")
    assignments = ", ".join(f"{name} = ?" for name in values)
    conditions = "".join(f" AND {name} = ?" for name in only_if or {})
    cursor = connection.execute(
        f"UPDATE runs SET {assignments} WHERE id = ?{conditions}",
        [*values.values(), run_id, *(only_if or {}).values()],
    )
    return cursor.rowcount


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
