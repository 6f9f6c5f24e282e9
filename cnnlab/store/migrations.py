"""Bringing a database made by an earlier CNN Lab up to `cnnlab.store.database.SCHEMA_VERSION`, once.

`Database` reads `PRAGMA user_version` when it opens the file and calls `migrate` only when the
version is not the current one, so a store opened a thousand times migrates once. The migration
holds the write lock (`BEGIN IMMEDIATE`) and reads the version again under it: when several
processes open an old database at once, one migrates and the others find it done.

Version 0 is a database made before versions were kept: tables without foreign keys, perhaps
without the run columns added later (`shared`, `exercise`, `sweep`), and diagnoses kept only as
event lines (`[kind, epoch N] cause Fix: fix`). Migrating it adds the missing columns, rebuilds
each run-part table with its `ON DELETE CASCADE` key (rows whose run was already deleted are the
leftovers of the old one-DELETE-per-table removal and are dropped), and copies each diagnosis line
into the `diagnoses` table. The event lines stay, so the event log reads as before.

Version 1 had no users: a joined student's runs were owned by "student:<name>" (a teacher's by
"teacher:<name>"). Migrating to version 2 gives each such owner a user row with that id and no PIN,
so the runs stay theirs: the first to join again with the name chooses its PIN (the teacher can
rename, merge or remove them from the console). Owners whose names collide after normalisation keep
their runs, readable by the teacher, without a user row.
Any older version gets the run columns it lacks (versions 1 and 2 lack `exercise_controls`, added in 3),
and the sweep columns (`search` and `closed`, added in 4 for sweeps on Optuna).
Version 5 folds look-alike letters into names' keys (`people.name_key`): each user's key is made
again, oldest user first; a user whose new key an older one already has keeps the old key (the
teacher can rename them).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from cnnlab.errors import RunError
from cnnlab.store import database, people

# Columns added to `runs` after its first release, with their definitions.
ADDED_RUN_COLUMNS = {
    "shared": "INTEGER NOT NULL DEFAULT 0",  # a teacher shared the run with the class (read-only)
    "exercise": "TEXT",  # the exercise the run was started from, if any
    "sweep": "TEXT",  # the sweep the run belongs to, if any
    "exercise_controls": "TEXT",  # the controls its exercise locked and hid (JSON), kept after it leaves
}
# Columns added to `sweeps` after its first release (version 4: sweeps on Optuna).
ADDED_SWEEP_COLUMNS = {
    "search": "TEXT",  # an Optuna sweep's search: sampler, pruner, budget, ranges (JSON); NULL for a plain one
    "closed": "INTEGER NOT NULL DEFAULT 0",  # 1 once an Optuna sweep has spent its budget
}
# How version 0 wrote a diagnosis into the event log (its only record of one).
_DIAGNOSIS_LINE = re.compile(
    r"^\[(?P<kind>diverged|not learning|overfitting|plateau), epoch (?P<epoch>\d+)\] (?P<cause>.*?) Fix: (?P<fix>.*)$",
    re.S,
)


def migrate(path: Path, found_version: int) -> None:
    """Bring the database at `path` from `found_version` to the current schema (RunError if it is newer)."""
    if found_version > database.SCHEMA_VERSION:
        raise RunError(
            f"The run database {path} has schema version {found_version}, newer than the "
            f"{database.SCHEMA_VERSION} this CNN Lab knows; upgrade CNN Lab, or point CNNLAB_HOME at another folder."
        )
    # A connection of its own: foreign keys must be off while tables are rebuilt, and that pragma
    # cannot change inside a transaction.
    connection = database.open_connection(path)
    try:
        connection.execute("PRAGMA foreign_keys = OFF")
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = database.schema_version(connection)  # Another process may have migrated meanwhile.
            if version < database.SCHEMA_VERSION and _has_table(connection, "runs"):
                _add_run_columns(connection)
            if version < database.SCHEMA_VERSION and _has_table(connection, "sweeps"):
                _add_columns(connection, "sweeps", ADDED_SWEEP_COLUMNS)
            if version == 0 and _has_table(connection, "runs"):
                _from_version_0(connection)
            if version != database.SCHEMA_VERSION:
                for statement in database.SCHEMA:
                    connection.execute(statement)
            if version < 2:
                _users_of_version_1(connection)
            if version < 5:
                _name_keys_again(connection)
            problems = connection.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RunError(
                    f"Migrating {path} left {len(problems)} rows whose run is missing (first in table "
                    f"{problems[0][0]!r}); the database was left as it was. Report this with the file."
                )
            connection.execute(f"PRAGMA user_version = {database.SCHEMA_VERSION}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        connection.close()


def _has_table(connection: database.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return connection.execute(query, (name,)).fetchone() is not None


def _add_run_columns(connection: database.Connection) -> None:
    """Add the run columns added after the database was made."""
    _add_columns(connection, "runs", ADDED_RUN_COLUMNS)


def _add_columns(connection: database.Connection, table: str, added: dict[str, str]) -> None:
    """Add to `table` the columns of `added` (name to definition) it lacks."""
    present = {str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})")}
    for name, definition in added.items():
        if name not in present:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


def _from_version_0(connection: database.Connection) -> None:
    """Rebuild the run-part tables with foreign keys, and copy diagnoses out of events."""
    for table, definition in database.RUN_PART_TABLES.items():
        if not _has_table(connection, table):
            continue  # The migration's schema statements create it.
        columns = ", ".join(str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})"))
        connection.execute(definition.replace(f"EXISTS {table} (", f"EXISTS {table}_migrating (", 1))
        connection.execute(
            f"INSERT INTO {table}_migrating ({columns}) SELECT {columns} FROM {table} "
            "WHERE run_id IN (SELECT id FROM runs)"
        )
        connection.execute(f"DROP TABLE {table}")
        connection.execute(f"ALTER TABLE {table}_migrating RENAME TO {table}")
    connection.execute(database.RUN_PART_TABLES["diagnoses"])
    now = time.time()
    for row in connection.execute("SELECT run_id, time, message FROM events ORDER BY id").fetchall():
        found = _DIAGNOSIS_LINE.match(str(row["message"]))
        if found is not None:
            connection.execute(
                "INSERT INTO diagnoses (run_id, time, epoch, kind, cause, fix) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    row["run_id"],
                    row["time"] or now,
                    int(found["epoch"]),
                    found["kind"],
                    found["cause"],
                    found["fix"],
                ),
            )


_LEGACY_ROLES = {"student:": "student", "teacher:": "teacher"}


def _users_of_version_1(connection: database.Connection) -> None:
    """A user row (the old id, its name, no PIN) for each "student:"/"teacher:" owner of runs or sweeps."""
    owners = connection.execute("SELECT owner FROM runs UNION SELECT owner FROM sweeps").fetchall()
    now = time.time()
    for (owner,) in owners:
        prefix, _, name = str(owner).partition(":")
        role = _LEGACY_ROLES.get(prefix + ":")
        if role is None or not name:
            continue
        connection.execute(
            "INSERT OR IGNORE INTO users (id, name, name_key, role, created_at) VALUES (?, ?, ?, ?, ?)",
            (owner, name, people.name_key(name), role, now),
        )


def _name_keys_again(connection: database.Connection) -> None:
    """Each joined user's `name_key` made again by today's `people.name_key`, oldest first; a key an
    older user already has is not taken (that user keeps the old one)."""
    rows = connection.execute(
        "SELECT id, name FROM users WHERE name_key IS NOT NULL ORDER BY created_at, id"
    ).fetchall()
    for user_id, name in rows:
        connection.execute(
            "UPDATE OR IGNORE users SET name_key = ? WHERE id = ?", (people.name_key(str(name)), user_id)
        )
