"""A run's rows copied out of one store and into another (the Ray executor's node-local store).

`export_rows` reads what a job on another machine reads of its run: the run's row, its epoch
metrics, its `latest` and `best` checkpoints and its pinned probes (the files travel beside them,
`cnnlab.runs.ray.bundle`). `import_rows` writes them into an empty store. Table and column names
are checked against the schema, so rows from elsewhere never become SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cnnlab.errors import RunError
from cnnlab.store.database import Database

# The rows of one run a job reads, parents first (the run's row before the rows that refer to it).
_EXPORT_QUERIES = {
    "runs": "SELECT * FROM runs WHERE id = ?",
    "epoch_metrics": "SELECT * FROM epoch_metrics WHERE run_id = ?",
    "checkpoints": "SELECT * FROM checkpoints WHERE run_id = ? AND which IN ('latest', 'best')",
    "snapshots": "SELECT * FROM snapshots WHERE run_id = ? AND kind = 'probes'",
}
TABLES = tuple(_EXPORT_QUERIES)

Rows = dict[str, list[dict[str, object]]]


def export_rows(database: Database, run_id: str) -> Rows:
    """The rows of run `run_id` a job elsewhere needs, by table (`TABLES`), each row by column name."""
    connection = database.connection()
    return {
        table: [dict(row) for row in connection.execute(query, (run_id,)).fetchall()]
        for table, query in _EXPORT_QUERIES.items()
    }


def import_rows(database: Database, rows: Mapping[str, Sequence[Mapping[str, object]]]) -> None:
    """Insert rows `export_rows` gave into this database in one transaction (RunError for an unknown table or column)."""
    unknown = [table for table in rows if table not in TABLES]
    if unknown:
        raise RunError(f"A run's rows name table {unknown[0]!r}; only {', '.join(TABLES)} are copied.")
    with database.transaction() as connection:
        for table in TABLES:  # In this order, so each run row is there before the rows that refer to it.
            known = {str(column[1]) for column in connection.execute(f"PRAGMA table_info({table})")}
            for row in rows.get(table, ()):
                strange = [name for name in row if name not in known]
                if strange:
                    raise RunError(
                        f"A row for table {table!r} has column {strange[0]!r}, which the table does not have."
                    )
                columns = ", ".join(row)
                marks = ", ".join("?" * len(row))
                connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
