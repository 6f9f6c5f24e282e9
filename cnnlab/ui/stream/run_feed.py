"""What a live run's stream says, read from the store once per tick whatever the number of viewers.

`RunFeed` holds one run's records in memory (status, metric rows, events, diagnoses, the newest
snapshot's epoch) and, on each `tick`, reads the run's `RunVersion` (one indexed query) and only
what changed since: new batch rows after the last step, new or rewritten epoch rows, new events and
diagnoses, a new status. It returns the news as messages (`metrics`, `status`, `event`,
`diagnosis`, `snapshot`) and keeps them, so that `history` can give a late joiner the whole run,
downsampled as the curves show it (`cnnlab.figures.downsampling`), without reading the store again.

Every metric row carries `written_at`, the unix time the worker wrote it (the `time` column of the
store's metric tables), and `x`, its place on the curves' epoch axis. A run that starts again (a
continue, a restart) rewrites its history: the feed then says `history` again, and a viewer
redraws from it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from cnnlab.errors import RunError
from cnnlab.figures import downsampling
from cnnlab.store.diagnoses import Diagnosis
from cnnlab.store.records import RunRecord, RunVersion
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

Json = Any  # what json.dumps takes: dicts, lists, strings, numbers, None

BATCH_FIELDS = ("epoch", "batch", "step", "loss", "accuracy", "learning_rate", "written_at")
EPOCH_FIELDS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "epoch_seconds",
    "written_at",
)
RESTARTED = (Status.QUEUED, Status.STARTING)  # a status a run comes back to when it starts again


@dataclass(frozen=True)
class Message:
    """One piece of news of a stream: its SSE event name and its JSON-able data."""

    event: str
    data: Json


def _number(value: object) -> float | None:
    """A JSON number, or None for a missing or non-finite value (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]  # a metric: a number, NaN or None
    return number if math.isfinite(number) else None


def _rows(table: pd.DataFrame, fields: tuple[str, ...]) -> list[dict[str, Json]]:
    """The rows of `table` as JSON objects of `fields` (integers for epoch, batch and step)."""
    whole = {"epoch", "batch", "step"}
    present = [name for name in fields if name in table.columns]
    return [
        {
            name: (int(value) if name in whole and value == value else _number(value))
            for name, value in zip(present, values, strict=True)
        }
        for values in table[present].itertuples(index=False, name=None)
    ]


def _event_rows(events: pd.DataFrame, start: int) -> list[dict[str, Json]]:
    """The event log's rows from position `start` on, each with its position (`index`)."""
    return [
        {"index": index, "time": float(time), "level": str(level), "message": str(message)}
        for index, (time, level, message) in enumerate(
            events[["time", "level", "message"]].iloc[start:].itertuples(index=False, name=None), start
        )
    ]


class RequestLog(Protocol):
    """Who asked for a run's stop, pause or resume (a `Store`, or a `RunAccess` over one)."""

    def requested_by(self, run_id: str, action: str) -> str | None:
        """The role word of who asked `action` of run `run_id` when not its owner, else None."""
        ...


def status_of(store: RequestLog, run: RunRecord, read_before: RunVersion | None) -> dict[str, Json]:
    """What a viewer needs to say where `run` is: status, pending control, who asked, reason, epochs.

    `read_before` is the run's version read before `run` was: its newest event (every request and
    status change logs one) is the status's `seen_through`, so that a status told twice, by the stream
    and by a control request's answer, is drawn from the newer one, whichever comes first.
    """
    action = run.control or {Status.STOPPED: "stop", Status.PAUSED: "pause"}.get(run.status)
    return {
        "seen_through": (read_before.last_event if read_before else None) or 0,
        "status": run.status.value,
        "control": run.control,
        "requested_by": store.requested_by(run.id, action) if action else None,
        "reason": run.reason,
        "last_epoch": run.last_epoch,
        "epochs_planned": run.training().epochs,
        "active": run.is_active,
    }


class RunFeed:
    """One run's records for its stream; `tick` reads what is new, `history` tells all of it."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.reads = 0  # ticks that read the store (one `run_version` query each, more only on news)
        self._lock = threading.RLock()  # `history` is also told from inside a tick
        self._load()

    def _load(self) -> None:
        """Read the whole run (at the start, and when it starts again)."""
        self._version: RunVersion | None = self.store.run_version(self.run_id)
        run = self.store.get_run(self.run_id)
        self._status = status_of(self.store, run, self._version)
        self._batches = _rows(
            self.store.batch_metrics(self.run_id).rename(columns={"time": "written_at"}), BATCH_FIELDS
        )
        self._epochs = {
            row["epoch"]: row
            for row in _rows(self.store.epoch_metrics(self.run_id, written_at=True), EPOCH_FIELDS)
        }
        self._events = _event_rows(self.store.events(self.run_id), 0)
        self._diagnoses = [
            self._diagnosis(index, found) for index, found in enumerate(self.store.diagnoses(self.run_id))
        ]
        self._snapshot_epoch = self._version.snapshot_epoch if self._version else None
        self._batches_per_epoch = self._estimate_batches_per_epoch(run)

    @staticmethod
    def _diagnosis(index: int, found: Diagnosis) -> dict[str, Json]:
        return {
            "index": index,
            "kind": found.kind,
            "epoch": found.epoch,
            "title": found.title,
            "cause": found.cause,
            "fix": found.fix,
        }

    def _estimate_batches_per_epoch(self, run: RunRecord) -> int | None:
        """Batches in an epoch: from an epoch already done, else from the training images and batch size."""
        done = [row["batch"] + 1 for row in self._batches if row["epoch"] < self._current_epoch()]
        if done:
            return int(max(done))
        images = run.train_images()
        if images:
            return max(1, math.ceil(images / run.training().batch_size))
        return None

    def _current_epoch(self) -> int:
        return int(self._batches[-1]["epoch"]) if self._batches else 1

    def _place(self, row: dict[str, Json], per_epoch: Mapping[int, int]) -> dict[str, Json]:
        """`row` with `x`: its epoch's start plus the share of the epoch its batch ends."""
        count = per_epoch.get(row["epoch"]) or self._batches_per_epoch or (row["batch"] + 1)
        return {**row, "x": row["epoch"] - 1 + (row["batch"] + 1) / max(count, row["batch"] + 1)}

    def history(self) -> dict[str, Json]:
        """Everything a viewer draws, the batch curve downsampled (at most a thousand points, the newest kept)."""
        with self._lock:
            per_epoch: dict[int, int] = {}
            for row in self._batches:
                per_epoch[row["epoch"]] = max(per_epoch.get(row["epoch"], 0), row["batch"] + 1)
            current = self._current_epoch()
            per_epoch.pop(current, None)  # The epoch in training: its length is not known yet.
            kept = downsampling.keep_indices(len(self._batches))
            return {
                "run_id": self.run_id,
                "status": self._status,
                "batches": [self._place(self._batches[index], per_epoch) for index in kept],
                "epochs": [self._epochs[epoch] for epoch in sorted(self._epochs)],
                "events": list(self._events),
                "diagnoses": list(self._diagnoses),
                "snapshot": {"version": self._snapshot_epoch, "epoch": self._snapshot_epoch},
            }

    def tick(self) -> list[Message]:
        """Read the run's version (one query) and, if it changed, what is new; the news, in order."""
        with self._lock:
            self.reads += 1
            version = self.store.run_version(self.run_id)
            if version == self._version:
                return []
            if version is None:  # Deleted: said once.
                self._version = None
                return [Message("status", {**self._status, "status": "deleted", "active": False})]
            return self._news(version)

    def _news(self, version: RunVersion) -> list[Message]:
        old = self._version
        held = (self._batches, len(self._batches), dict(self._epochs), self._events, len(self._events))
        kept = (
            self._diagnoses,
            len(self._diagnoses),
            self._status,
            self._batches_per_epoch,
            self._snapshot_epoch,
        )
        self._version = version
        try:
            return self._news_since(old, version)
        except Exception:
            # Not all of it was read: put back what the feed held, so the next tick reads and tells it all.
            self._version = old
            self._batches, batches, self._epochs, self._events, events = held
            self._diagnoses, diagnoses, self._status, self._batches_per_epoch, self._snapshot_epoch = kept
            del self._batches[batches:], self._events[events:], self._diagnoses[diagnoses:]
            raise

    def _news_since(self, old: RunVersion | None, version: RunVersion) -> list[Message]:
        if old is None:  # Made again after it was deleted (not with this id): read it whole.
            self._load()
            return [Message("history", self.history())]
        news: list[Message] = []
        if (version.status, version.control) != (old.status, old.control):
            try:
                run = self.store.get_run(self.run_id)
            except RunError:
                return [Message("status", {**self._status, "status": "deleted", "active": False})]
            if run.status in RESTARTED and old.status != version.status:
                self._load()  # Started again: what it recorded may be rewritten.
                return [Message("history", self.history())]
            self._status = status_of(self.store, run, version)
            news.append(Message("status", self._status))
        rows: list[dict[str, Json]] = []
        if version.last_step != old.last_step and version.last_step is not None:
            after = self._batches[-1]["step"] if self._batches else None
            new = _rows(
                self.store.batch_metrics(self.run_id, after_step=after).rename(
                    columns={"time": "written_at"}
                ),
                BATCH_FIELDS,
            )
            for row in new:
                if self._batches and row["epoch"] > self._batches[-1]["epoch"]:
                    # The epoch before has ended: its length is known now.
                    self._batches_per_epoch = int(self._batches[-1]["batch"]) + 1
                self._batches.append(row)
                rows.append({"kind": "batch", **self._place(row, {})})
        if version.epoch_time != old.epoch_time:
            for row in _rows(self.store.epoch_metrics(self.run_id, written_at=True), EPOCH_FIELDS):
                held = self._epochs.get(row["epoch"])
                if held is None or held.get("written_at") != row.get("written_at"):
                    self._epochs[row["epoch"]] = row
                    rows.append({"kind": "epoch", **row})
        if rows:
            news.append(Message("metrics", rows))
        if version.last_event != old.last_event:
            for event in _event_rows(self.store.events(self.run_id), len(self._events)):
                self._events.append(event)
                news.append(Message("event", event))
        if version.last_diagnosis != old.last_diagnosis:
            found = self.store.diagnoses(self.run_id)
            for index in range(len(self._diagnoses), len(found)):
                self._diagnoses.append(self._diagnosis(index, found[index]))
                news.append(Message("diagnosis", self._diagnoses[-1]))
        if version.snapshot_epoch != old.snapshot_epoch:
            self._snapshot_epoch = version.snapshot_epoch
            news.append(
                Message("snapshot", {"version": version.snapshot_epoch, "epoch": version.snapshot_epoch})
            )
        return news
