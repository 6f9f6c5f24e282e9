"""A run's metrics and events in the store's database: batch and epoch rows, the event log, diagnoses.

Held by `cnnlab.store.run_store.Store` as `store.metrics` (the store hands its methods on). Each write is
its own committed transaction (`cnnlab.store.database`), so a killed worker loses nothing recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from cnnlab.store import database, records
from cnnlab.store.diagnoses import Diagnosis, check_kind

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.

BATCH_COLUMNS = ("epoch", "batch", "step", "loss", "accuracy", "learning_rate", "time")
EPOCH_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds")


class RunMetrics:
    """The metric tables and event log of one database."""

    def __init__(self, database: database.Database) -> None:
        self.database = database

    def add_batch_metrics(self, run_id: str, rows: Iterable[Mapping[str, object]]) -> None:
        """Append batch metrics; each row has some of `BATCH_COLUMNS` (time defaults to now)."""
        now = time.time()
        values = [
            (run_id, *[row.get(name) for name in BATCH_COLUMNS[:-1]], row.get("time", now)) for row in rows
        ]
        with self.database.transaction() as connection:
            connection.executemany(f"INSERT INTO batch_metrics VALUES ({', '.join('?' * 8)})", values)

    def add_epoch_metrics(self, run_id: str, row: Mapping[str, object]) -> None:
        """Record one epoch's metrics (replacing that epoch if it exists); unknown keys go to extras."""
        extras = {key: value for key, value in row.items() if key not in EPOCH_COLUMNS}
        values = [row.get(name) for name in EPOCH_COLUMNS]
        with self.database.transaction() as connection:
            connection.execute(
                f"INSERT OR REPLACE INTO epoch_metrics VALUES ({', '.join('?' * 10)})",
                (run_id, *values, records.to_json(extras), time.time()),
            )

    def copy_epoch_metrics(self, source_id: str, target_id: str, up_to_epoch: int) -> None:
        """Give a fork its parent's epoch metrics up to the epoch it was forked from."""
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO epoch_metrics SELECT ?, epoch, loss, accuracy, val_loss, val_accuracy, "
                "learning_rate, epoch_seconds, extras, time FROM epoch_metrics WHERE run_id = ? AND epoch <= ?",
                (target_id, source_id, up_to_epoch),
            )

    def batch_metrics(self, run_id: str, *, after_step: int | None = None) -> pd.DataFrame:
        """Batch metrics in step order (only steps after `after_step` when given)."""
        import pandas as pd

        columns = ", ".join(BATCH_COLUMNS)
        query = f"SELECT {columns} FROM batch_metrics WHERE run_id = ? AND step > ? ORDER BY step"
        parameters = (run_id, -1 if after_step is None else after_step)
        table = pd.read_sql_query(query, self.database.connection(), params=parameters)
        return table.astype({name: float for name in BATCH_COLUMNS[3:]})

    def epoch_metrics(self, run_id: str, *, written_at: bool = False) -> pd.DataFrame:
        """Epoch metrics in epoch order, with the extras spread into their own columns (and, with
        `written_at`, the unix time each row was written, in a column of that name)."""
        import pandas as pd

        columns = ", ".join((*EPOCH_COLUMNS, "time AS written_at") if written_at else EPOCH_COLUMNS)
        query = f"SELECT {columns}, extras FROM epoch_metrics WHERE run_id = ? ORDER BY epoch"
        table = pd.read_sql_query(query, self.database.connection(), params=(run_id,))
        table = table.astype({name: float for name in EPOCH_COLUMNS[1:]})
        extras = pd.DataFrame([json.loads(text or "{}") for text in table.pop("extras")], index=table.index)
        return pd.concat([table, extras], axis=1) if len(extras.columns) else table

    def log_event(self, run_id: str, message: str, level: str = "info") -> None:
        """Append a line to the run's event log (level: debug, info, warning or error)."""
        with self.database.transaction() as connection:
            database.add_event(connection, run_id, level, message, time.time())

    def events(self, run_id: str) -> pd.DataFrame:
        """The event log, oldest first: time, level, message."""
        import pandas as pd

        query = "SELECT time, level, message FROM events WHERE run_id = ? ORDER BY id"
        return pd.read_sql_query(query, self.database.connection(), params=(run_id,))

    def add_diagnosis(self, run_id: str, finding: Diagnosis) -> None:
        """Record a diagnosis as a row, and its line in the event log (at its level), in one transaction."""
        check_kind(finding.kind)
        now = time.time()
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT INTO diagnoses (run_id, time, epoch, kind, cause, fix) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, now, finding.epoch, finding.kind, finding.cause, finding.fix),
            )
            database.add_event(connection, run_id, finding.level, finding.message(), now)

    def diagnoses(self, run_id: str) -> list[Diagnosis]:
        """The run's diagnoses, oldest first."""
        query = "SELECT kind, epoch, cause, fix FROM diagnoses WHERE run_id = ? ORDER BY id"
        rows = self.database.connection().execute(query, (run_id,)).fetchall()
        return [
            Diagnosis(str(row["kind"]), int(row["epoch"]), str(row["cause"]), str(row["fix"])) for row in rows
        ]
