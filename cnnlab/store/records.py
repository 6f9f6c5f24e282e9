"""What the store returns about a run (`RunRecord`), run ids, and the JSON form of settings.

Kept apart from `cnnlab.store.run_store` so the record type can be imported anywhere without opening a
database. Nothing here touches SQLite, TensorFlow or streamlit. A record keeps the settings as the
JSON the store holds (`spec`, `data_settings`, `training_settings`) and reads them back as the
`cnnlab.specs` dataclasses through `model_spec()`, `data()` and `training()`.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypeAlias

from cnnlab import spec_fields, specs
from cnnlab.store import statuses
from cnnlab.store.statuses import Status

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.

ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

# A value as JSON holds it.
JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
# One figure of a run's results: a number, a word, or nothing.
ResultValue: TypeAlias = "float | int | str | bool | None"
Results: TypeAlias = "dict[str, ResultValue]"
# Anything `to_json` can write: a settings dataclass, a table, or JSON-able values.
Settings: TypeAlias = "specs.ModelSpec | specs.DataSettings | specs.TrainingSettings"
Recordable: TypeAlias = "Settings | pd.DataFrame | Mapping[str, object] | Sequence[object] | JsonValue"


def new_run_id(now: float | None = None) -> str:
    """A short, URL-safe id that sorts by creation time: 9 base-36 digits of milliseconds + 4 random."""
    milliseconds = int((time.time() if now is None else now) * 1000)
    digits = ""
    while milliseconds:
        milliseconds, remainder = divmod(milliseconds, 36)
        digits = ID_ALPHABET[remainder] + digits
    return digits.rjust(9, "0") + "".join(secrets.choice(ID_ALPHABET) for _ in range(4))


def _plain(item: object) -> object:
    """The JSON-able form of a value json cannot write itself (numpy scalars, paths)."""
    method = getattr(item, "item", None)
    return method() if callable(method) else str(item)


def to_json(value: Recordable) -> str | None:
    """JSON text for a settings dataclass (its `to_dict`), a DataFrame (its records), JSON-able values, or None."""
    if value is None:
        return None
    # A DataFrame exists only once pandas is imported: a page that never made one need not import it.
    # (While another thread imports pandas, the module is there without its DataFrame yet.)
    frame_type = getattr(sys.modules.get("pandas"), "DataFrame", None)
    if frame_type is not None and isinstance(value, frame_type):
        text: str = value.to_json(orient="records")
        return text
    if isinstance(value, specs.ModelSpec | specs.DataSettings | specs.TrainingSettings):
        return json.dumps(value.to_dict(), default=_plain)
    return json.dumps(value, default=_plain)


def from_json(text: str | None) -> JsonValue:
    """The value JSON text holds, or None for no text."""
    if text is None:
        return None
    value: JsonValue = json.loads(text)
    return value


def object_from_json(text: str | None) -> JsonObject:
    """A JSON object from text ({} for none or for anything that is not an object)."""
    value = from_json(text)
    return value if isinstance(value, dict) else {}


def results_from_json(text: str | None) -> Results | None:
    """A run's results: each figure as stored, any nested value as its JSON text."""
    value = from_json(text)
    if not isinstance(value, dict):
        return None
    return {
        name: item if item is None or isinstance(item, bool | int | float | str) else json.dumps(item)
        for name, item in value.items()
    }


@dataclass(frozen=True)
class RunRecord:
    """One run as stored: identity, status, timestamps (seconds since the epoch), settings, outcome."""

    id: str
    name: str
    owner: str
    status: Status
    created_at: float
    queued_at: float | None
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float | None
    spec: JsonObject
    data_settings: JsonObject
    training_settings: JsonObject
    dataset_summary: JsonValue
    results: Results | None
    parent_id: str | None
    parent_epoch: int | None
    worker_pid: int | None
    worker_host: str | None
    control: str | None
    reason: str | None
    hint: str | None
    traceback: str | None
    shared: bool = False  # a teacher shared it with the class: every signed-in user may read it
    exercise: str | None = None  # the exercise it was started from
    sweep: str | None = None  # the sweep it belongs to
    # What its exercise fixed when it started: {"locked": [...], "hidden": [...]} (control names).
    # Kept when the run leaves the exercise (`exercise` None): a hidden part stays hidden.
    exercise_controls: JsonObject | None = None
    queue_position: int | None = None  # 1 for the next run to start; None unless queued
    last_epoch: int = 0  # the highest epoch with recorded metrics
    last_val_accuracy: float | None = None  # the validation accuracy of that epoch, if it had one

    @property
    def is_active(self) -> bool:
        """True while the run is queued or has a worker."""
        return self.status in statuses.ACTIVE

    @property
    def is_ended(self) -> bool:
        """True once the run has reached a final (or continuable) status."""
        return self.status in statuses.ENDED

    def model_spec(self) -> specs.ModelSpec:
        """The spec as a `specs.ModelSpec` (SpecError if the stored JSON is not a valid spec)."""
        return specs.ModelSpec.from_dict(self.spec)

    def data(self) -> specs.DataSettings:
        """The data settings as a `specs.DataSettings` (as recorded: see `training`)."""
        with spec_fields.ranges_as_recorded():
            return specs.DataSettings.from_dict(self.data_settings)

    def training(self) -> specs.TrainingSettings:
        """The training settings as a `specs.TrainingSettings`, as they were recorded: a value an earlier
        release allowed outside today's range is read, not refused."""
        with spec_fields.ranges_as_recorded():
            return specs.TrainingSettings.from_dict(self.training_settings)

    def result(self, name: str) -> float | None:
        """The numeric result `name` (e.g. "test_accuracy") as a float, or None if it has none."""
        value = (self.results or {}).get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def exercise_control_names(self, kind: str) -> frozenset[str]:
        """The controls its exercise fixed of `kind` ("locked" or "hidden"), from when the run started."""
        names = (self.exercise_controls or {}).get(kind)
        return frozenset(str(name) for name in names) if isinstance(names, list) else frozenset()

    def train_images(self) -> int | None:
        """How many images the run trains on, from its dataset summary (None before it is known)."""
        if not isinstance(self.dataset_summary, list) or not self.dataset_summary:
            return None
        counts = [row.get("train") for row in self.dataset_summary if isinstance(row, dict)]
        return sum(int(count) for count in counts if isinstance(count, int | float))


@dataclass(frozen=True)
class RunVersion:
    """What changes whenever anything a live view of a run draws changes; equal versions draw the same."""

    status: str
    control: str | None
    epoch_time: float | None  # when the newest epoch row was written (a replaced epoch counts)
    last_step: int | None
    last_event: int | None
    last_diagnosis: int | None
    checkpoint_time: float | None
    snapshot_epoch: int | None = None  # the newest epoch with a telemetry snapshot (kernels, maps, ...)


def record_from_row(values: Mapping[str, object]) -> RunRecord:
    """A `RunRecord` from a row of the store's runs query (JSON columns still as text)."""

    def text(name: str) -> str | None:
        value = values[name]
        return value if isinstance(value, str) else None

    def number(name: str) -> float | None:
        value = values[name]
        return float(value) if isinstance(value, int | float) else None

    def whole(name: str) -> int | None:
        value = values.get(name)
        return int(value) if isinstance(value, int) else None

    return RunRecord(
        id=str(values["id"]),
        name=str(values["name"]),
        owner=str(values["owner"]),
        status=statuses.check_status(str(values["status"])),
        created_at=float(number("created_at") or 0.0),
        queued_at=number("queued_at"),
        started_at=number("started_at"),
        ended_at=number("ended_at"),
        heartbeat_at=number("heartbeat_at"),
        spec=object_from_json(text("spec")),
        data_settings=object_from_json(text("data_settings")),
        training_settings=object_from_json(text("training_settings")),
        dataset_summary=from_json(text("dataset_summary")),
        results=results_from_json(text("results")),
        parent_id=text("parent_id"),
        parent_epoch=whole("parent_epoch"),
        worker_pid=whole("worker_pid"),
        worker_host=text("worker_host"),
        control=text("control"),
        reason=text("reason"),
        hint=text("hint"),
        traceback=text("traceback"),
        shared=bool(values.get("shared") or 0),
        exercise=text("exercise") if "exercise" in values else None,
        sweep=text("sweep") if "sweep" in values else None,
        exercise_controls=object_from_json(text("exercise_controls"))
        if values.get("exercise_controls")
        else None,
        queue_position=whole("queue_position"),
        last_epoch=whole("last_epoch") or 0,
        last_val_accuracy=number("last_val_accuracy") if "last_val_accuracy" in values else None,
    )


RUN_COLUMNS = [
    item.name
    for item in fields(RunRecord)
    if item.name not in ("queue_position", "last_epoch", "last_val_accuracy")
]


def recorded_device(results: Mapping[str, object] | None) -> str | None:
    """The device a run recorded in its results (`results["device"]`), or None before it is known."""
    device = (results or {}).get("device")
    return device if isinstance(device, str) and device else None
