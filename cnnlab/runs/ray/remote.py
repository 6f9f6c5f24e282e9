"""The cluster side of the Ray executor: the mailbox, the store that records through it, the run actor.

- `Mailbox` (one detached, named Ray actor per CNN Lab home): the records the workers send, in
  the order they sent them, until the server's pump takes them; the control requests (stop,
  pause, resume) the server forwards; and which run actor trains which run, so a restarted server
  finds its runs again. Records put into it survive the worker that put them.
- `RecordingStore`: a `Store` in a node-local temporary folder. Every record the job writes
  (status, heartbeat, batch and epoch metrics, snapshots, checkpoints, events, diagnoses, results,
  the dataset summary) is also sent to the mailbox, synchronously, before the job goes on, so
  nothing the job recorded can be missing on the server. Control requests are read from the
  mailbox, so `cnnlab.runs.queue.job.Control` works unchanged.
- `RunActor`: a detached Ray actor that imports TensorFlow when it is created (a warm worker),
  then trains one run with `cnnlab.runs.worker.main.run_job` into a `RecordingStore`, and sends
  the run's TensorBoard logs (files Keras wrote during the fit) to the server when the run ends.

The server side, which applies the records to the one real store, is `cnnlab.runs.ray.executor`.
"""

from __future__ import annotations

import collections
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray

from cnnlab.runs.queue.job import Job
from cnnlab.runs.ray import bundle as ray_bundle
from cnnlab.runs.worker import main as worker
from cnnlab.runs.worker import threads
from cnnlab.store.artifacts import NamedArrays
from cnnlab.store.diagnoses import Diagnosis
from cnnlab.store.records import JsonValue, ResultValue, RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

# One record: (run id, kind, arguments). The kinds are those `cnnlab.runs.ray.executor` applies.
Record = tuple[str, str, tuple[Any, ...]]


class Mailbox:
    """Records from the workers to the server, control requests back, and the run actors by run id.

    Ours, not `ray.util.queue.Queue`: the records share this one detached, named actor with the control
    requests and the actor registry a restarted server finds by name, and `take` empties it in one call.
    """

    def __init__(self) -> None:
        self._records: collections.deque[Record] = collections.deque()
        self._control: dict[str, str] = {}
        self._actors: dict[str, Any] = {}  # run id -> its RunActor's handle

    def put(self, records: list[Record]) -> int:
        """Append records in order; returns how many wait for the server."""
        self._records.extend(records)
        return len(self._records)

    def take(self, limit: int = 10_000) -> list[Record]:
        """Remove and return up to `limit` records, oldest first."""
        count = min(limit, len(self._records))
        return [self._records.popleft() for _ in range(count)]

    def set_control(self, run_id: str, action: str) -> None:
        """The server's latest control request for a run ("stop", "pause" or "resume")."""
        self._control[run_id] = action

    def control(self, run_id: str) -> str | None:
        """The unanswered control request for a run, if any."""
        return self._control.get(run_id)

    def clear_control(self, run_id: str, action: str) -> None:
        """Mark `action` answered, unless a newer, different request replaced it."""
        if self._control.get(run_id) == action:
            del self._control[run_id]

    def register(self, run_id: str, actor: Any) -> None:
        """Remember which actor trains the run (a restarted server asks for it)."""
        self._actors[run_id] = actor

    def unregister(self, run_id: str) -> None:
        """Forget a run whose actor the server has let go."""
        self._actors.pop(run_id, None)
        self._control.pop(run_id, None)

    def actors(self) -> dict[str, Any]:
        """The run actors by run id."""
        return dict(self._actors)


class RecordingStore(Store):
    """A node-local store that also sends every record of its run to the mailbox, before keeping it."""

    def __init__(self, home: Path, run_id: str, mailbox: Any) -> None:
        super().__init__(home)
        self.run_id = run_id
        self.mailbox = mailbox

    def _send(self, run_id: str, kind: str, *arguments: Any) -> None:
        # Synchronous: once the job goes on, the record is in the mailbox and survives this process.
        ray.get(self.mailbox.put.remote([(run_id, kind, arguments)]))

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
        """Send the epoch's row, then keep it here."""
        self._send(run_id, "epoch_metrics", dict(row))
        super().add_epoch_metrics(run_id, row)

    def write_snapshot(self, run_id: str, epoch: int, kind: str, arrays: NamedArrays) -> Path:
        """Send the arrays, then write them here."""
        plain = {name: np.asarray(array) for name, array in arrays.items()}
        self._send(run_id, "snapshot", epoch, kind, plain)
        return super().write_snapshot(run_id, epoch, kind, plain)

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
        """Send the results, then keep them here."""
        self._send(run_id, "results", dict(results))
        super().set_results(run_id, results)

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
        """The control request the server forwarded to the mailbox."""
        action: str | None = ray.get(self.mailbox.control.remote(run_id))
        return action

    def clear_control(self, run_id: str, action: str) -> None:
        """Mark the request answered in the mailbox and, through a record, on the server."""
        ray.get(self.mailbox.clear_control.remote(run_id, action))
        self._send(run_id, "clear_control", action)
        super().clear_control(run_id, action)


class RunActor:
    """A worker on a cluster node: imports the job (TensorFlow) when created, then trains one run."""

    def __init__(self, entry: str, thread_count: int | None) -> None:
        threads.configure_threads(thread_count)
        self.job: Job = worker.load_job(entry, warm_up=True)
        self.home: Path | None = None
        self.runs_trained = 0
        self._finished: set[str] = set()
        self._changed = threading.Condition()

    def ready(self) -> bool:
        """True once created (the job imported): the executor waits on it to know the actor is warm."""
        return True

    def where(self) -> dict[str, object]:
        """The process id, host name and node-local store folder of this worker."""
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "home": str(self.home),
            "runs_trained": self.runs_trained,
        }

    def train(
        self,
        run_id: str,
        bundle: ray_bundle.RunBundle,
        dataset: ray_bundle.DatasetPayload | None,
        mailbox: Any,
    ) -> str:
        """Train the run into a node-local store that sends every record to `mailbox`; return its final status."""
        self.home = Path(tempfile.mkdtemp(prefix=f"cnnlab-ray-{run_id}-"))
        try:
            dataset_path = None if dataset is None else ray_bundle.materialise_dataset(dataset)
            ray_bundle.unpack_run(bundle, self.home, dataset_path)
            store = RecordingStore(self.home, run_id, mailbox)
            store.log_event(
                run_id,
                f"Ray worker process {os.getpid()} on {socket.gethostname()} took the run",
                level=worker.TECHNICAL,
            )
            status = worker.run_job(run_id, store, self.job)
            # Keras wrote the TensorBoard logs to files here during the fit; the server keeps them.
            # Imported here: the module imports Keras, which the server, importing this file, must not.
            from cnnlab.runs.worker import tensorboard_logs

            store.send_folder(run_id, tensorboard_logs.log_folder(store, run_id))
            store.close()
            return str(status)
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
            with self._changed:
                self.runs_trained += 1
                self._finished.add(run_id)
                self._changed.notify_all()

    def join(self, run_id: str) -> None:
        """Return once `train` has ended run `run_id` (a restarted server waits on this, not on `train`)."""
        with self._changed:
            self._changed.wait_for(lambda: run_id in self._finished)
