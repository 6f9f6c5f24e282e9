"""What the store returns about a run (`RunRecord`), run ids, and the JSON form of settings.

Kept apart from `cnnlab.runs.store` so the record type can be imported anywhere without opening a
database. Nothing here touches SQLite, TensorFlow or streamlit.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from cnnlab.runs import statuses

ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_run_id(now: float | None = None) -> str:
    """A short, URL-safe id that sorts by creation time: 9 base-36 digits of milliseconds + 4 random."""
    milliseconds = int((time.time() if now is None else now) * 1000)
    digits = ""
    while milliseconds:
        milliseconds, remainder = divmod(milliseconds, 36)
        digits = ID_ALPHABET[remainder] + digits
    return digits.rjust(9, "0") + "".join(secrets.choice(ID_ALPHABET) for _ in range(4))


def to_json(value: Any) -> str | None:
    """JSON text for a mapping, a settings object with `to_dict`, or None."""
    if value is None:
        return None
    if hasattr(value, "to_dict") and not isinstance(value, pd.DataFrame):
        value = value.to_dict()
    elif isinstance(value, pd.DataFrame):
        value = json.loads(value.to_json(orient="records"))
    return json.dumps(value, default=lambda item: item.item() if hasattr(item, "item") else str(item))


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class RunRecord:
    """One run as stored: identity, status, timestamps (seconds since the epoch), settings, outcome."""

    id: str
    name: str
    owner: str
    status: str
    created_at: float
    queued_at: float | None
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float | None
    spec: dict[str, Any]
    data_settings: dict[str, Any]
    training_settings: dict[str, Any]
    dataset_summary: Any
    results: dict[str, Any] | None
    parent_id: str | None
    parent_epoch: int | None
    worker_pid: int | None
    worker_host: str | None
    control: str | None
    reason: str | None
    hint: str | None
    traceback: str | None
    queue_position: int | None = None  # 1 for the next run to start; None unless queued
    last_epoch: int = 0  # the highest epoch with recorded metrics

    @property
    def is_active(self) -> bool:
        """True while the run is queued or has a worker."""
        return self.status in statuses.ACTIVE

    @property
    def is_ended(self) -> bool:
        """True once the run has reached a final (or continuable) status."""
        return self.status in statuses.ENDED

    def model_spec(self) -> Any:
        """The spec as a `specs.ModelSpec`."""
        from cnnlab import specs

        return specs.ModelSpec.from_dict(self.spec)

    def data(self) -> Any:
        """The data settings as a `specs.DataSettings`."""
        from cnnlab import specs

        return specs.DataSettings.from_dict(self.data_settings)

    def training(self) -> Any:
        """The training settings as a `specs.TrainingSettings`."""
        from cnnlab import specs

        return specs.TrainingSettings.from_dict(self.training_settings)


JSON_FIELDS = ("spec", "data_settings", "training_settings", "dataset_summary", "results")
RUN_COLUMNS = [item.name for item in fields(RunRecord) if item.name not in ("queue_position", "last_epoch")]
