"""One run's records on its Ray node, in order, until the server has applied them: `RunChannel` and `RecordingStore`.

Each run has its own channel, inside the actor that trains it; no actor is shared between runs,
so a node that dies takes only its own runs with it. The job records into a `RecordingStore` (a
`Store` in a node-local folder) that also appends every record to the channel without waiting
for the server: records pile up on the node and travel in batches. The server long-polls the
channel (`RunActor.take`, driven by `ray.wait`), applies what it got, in order, and acknowledges it
with its next `take`. Because records are applied in order, the server always holds everything
sent before the last record it applied: a node that dies loses only what it had not handed over.

The job waits for the server at two places only. At each epoch's end, before recording the epoch,
it waits until the server has acknowledged everything sent up to the previous epoch's end (the
server keeps at most one epoch behind the node, and the records waiting on the node stay bounded;
an epoch later they are nearly always acknowledged, so this costs nothing). And when the run ends,
`RunActor.train` waits until everything is acknowledged before it returns, so an actor is reused
only once the server has its run's final status and results.

Control requests (stop, pause, resume) come the other way: the server sets them on the channel,
and `RecordingStore.pending_control` reads them from memory. This module imports neither Ray nor
TensorFlow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnnlab.store.artifacts import NamedArrays
from cnnlab.store.diagnoses import Diagnosis
from cnnlab.store.records import JsonValue, ResultValue, RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

# One record: (run id, kind, arguments). The kinds are those `cnnlab.runs.ray.records` applies.
Record = tuple[str, str, tuple[Any, ...]]
# How long the job waits at most for the server to acknowledge records; a server that is away longer
# (restarting) finds them still waiting in the channel when it comes back.
FLUSH_SECONDS = 60.0


class RunChannel:
    """The records of one run not yet acknowledged by the server, its control request, and whether it ended.

    Records are numbered from 0 in the order they were sent. `take(acknowledged)` forgets those
    below `acknowledged` (the server has applied them) and returns the rest.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._records: list[Record] = []
        self._first = 0  # the number of self._records[0]
        self._closed = False
        self._control: str | None = None
        self._changed = threading.Condition()

    @property
    def sent(self) -> int:
        """How many records the run has sent so far."""
        return self._first + len(self._records)

    def send(self, kind: str, arguments: tuple[Any, ...]) -> int:
        """Append a record; returns its number."""
        with self._changed:
            self._records.append((self.run_id, kind, arguments))
            self._changed.notify_all()
            return self.sent - 1

    def close(self) -> None:
        """No more records will come (the run's `train` has ended)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def take(self, acknowledged: int | None, timeout: float) -> tuple[int, list[Record], bool]:
        """Forget records below `acknowledged`, wait up to `timeout` s for any, return `(first, records, closed)`.

        `first` is the number of the first record returned; `acknowledged=None` (a restarted server)
        returns every record not acknowledged yet. `closed` is True once the run has ended and every
        record has been returned.
        """
        with self._changed:
            if acknowledged is not None and acknowledged > self._first:
                del self._records[: acknowledged - self._first]
                self._first = acknowledged
                self._changed.notify_all()  # A flush may be waiting for this acknowledgement.
            self._changed.wait_for(lambda: bool(self._records) or self._closed, timeout)
            return self._first, list(self._records), self._closed

    def flush(self, timeout: float = FLUSH_SECONDS, *, through: int | None = None) -> bool:
        """Wait until the server has acknowledged the first `through` records (default: every record sent so far).

        Returns False if `timeout` s passed first.
        """
        with self._changed:
            target = self.sent if through is None else through
            return self._changed.wait_for(lambda: self._first >= target, timeout)

    @property
    def drained(self) -> bool:
        """True once the run has ended and the server acknowledged all it sent."""
        with self._changed:
            return self._closed and not self._records

    def set_control(self, action: str) -> None:
        """The server's latest control request ("stop", "pause" or "resume")."""
        with self._changed:
            self._control = action

    def control(self) -> str | None:
        """The unanswered control request, if any."""
        with self._changed:
            return self._control

    def clear_control(self, action: str) -> None:
        """Mark `action` answered, unless a newer, different request replaced it."""
        with self._changed:
            if self._control == action:
                self._control = None


class RecordingStore(Store):
    """A node-local store that also sends every record of its run through the run's channel.

    No record waits for the server; an epoch waits only for the epoch before it (see the module
    docstring).
    """

    def __init__(self, home: Path, run_id: str, channel: RunChannel) -> None:
        super().__init__(home)
        self.run_id = run_id
        self.channel = channel
        self._previous_epoch_end = 0  # how many records had been sent when the last epoch was recorded

    def _send(self, run_id: str, kind: str, *arguments: Any) -> None:
        self.channel.send(kind, arguments)

    def heartbeat(self, run_id: str, pid: int) -> None:
        """Record the beat here and send it (the server records no process id of its own machine)."""
        super().heartbeat(run_id, pid)
        self._send(run_id, "heartbeat")

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
        """Change the status here (which checks the transition), then send it."""
        record = super().set_status(
            run_id, status, reason=reason, hint=hint, traceback=traceback, expected=expected
        )
        self._send(run_id, "status", str(status), reason, hint, traceback)
        return record

    def add_batch_metrics(self, run_id: str, rows: Iterable[Mapping[str, object]]) -> None:
        """Send the rows (with their time), then keep them here."""
        now = time.time()
        timed = [{**row, "time": row.get("time", now)} for row in rows]
        self._send(run_id, "batch_metrics", timed)
        super().add_batch_metrics(run_id, timed)

    def add_epoch_metrics(self, run_id: str, row: Mapping[str, object]) -> None:
        """Wait until the server has the previous epoch and all sent before it, then keep the row here and send it.

        So the server is never more than one epoch behind this node.
        """
        self.channel.flush(through=self._previous_epoch_end)
        super().add_epoch_metrics(run_id, row)
        self._send(run_id, "epoch_metrics", dict(row))
        self._previous_epoch_end = self.channel.sent

    def write_snapshot(self, run_id: str, epoch: int, kind: str, arrays: NamedArrays) -> Path:
        """Write the arrays here, then send them."""
        plain = {name: np.asarray(array) for name, array in arrays.items()}
        path = super().write_snapshot(run_id, epoch, kind, plain)
        self._send(run_id, "snapshot", epoch, kind, plain)
        return path

    def save_checkpoint(
        self, run_id: str, which: str | int, epoch: int, write: Callable[[Path], object]
    ) -> Path:
        """Write the checkpoint here, then send its bytes."""
        path = super().save_checkpoint(run_id, which, epoch, write)
        self._send(run_id, "checkpoint", which, epoch, path.read_bytes())
        return path

    def delete_epoch_weights(self, run_id: str, epoch: int) -> None:
        """Forget the epoch's layer weights here, then send that."""
        super().delete_epoch_weights(run_id, epoch)
        self._send(run_id, "delete_epoch_weights", epoch)

    def log_event(self, run_id: str, message: str, level: str = "info") -> None:
        """Send the event, then keep it here."""
        self._send(run_id, "event", message, level)
        super().log_event(run_id, message, level)

    def add_diagnosis(self, run_id: str, finding: Diagnosis) -> None:
        """Send the diagnosis, then keep it (its row and its event line) here."""
        self._send(run_id, "diagnosis", finding)
        super().add_diagnosis(run_id, finding)

    def set_results(self, run_id: str, results: Mapping[str, ResultValue]) -> None:
        """Keep the results here, then send them."""
        super().set_results(run_id, results)
        self._send(run_id, "results", dict(results))

    def set_dataset_summary(self, run_id: str, summary: pd.DataFrame | JsonValue) -> None:
        """Send the dataset summary, then keep it here."""
        self._send(run_id, "dataset_summary", summary)
        super().set_dataset_summary(run_id, summary)

    def send_folder(self, run_id: str, folder: Path) -> int:
        """Send every file under `folder`, a folder inside the run's, to be written at the same place on
        the server (the run's TensorBoard logs, which Keras writes to files, not through the store).
        Returns how many files were sent."""
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        for path in files:
            relative = str(path.relative_to(self.run_folder(run_id)))
            self._send(run_id, "run_file", relative, path.read_bytes())
        return len(files)

    def pending_control(self, run_id: str) -> str | None:
        """The control request the server set on the channel (read from memory: cheap after every batch)."""
        return self.channel.control()

    def clear_control(self, run_id: str, action: str) -> None:
        """Mark the request answered on the channel and, through a record, on the server."""
        self.channel.clear_control(action)
        self._send(run_id, "clear_control", action)
        super().clear_control(run_id, action)
