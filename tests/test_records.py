"""Run records: settings round-trip through JSON as the spec dataclasses, and typed reads of results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cnnlab import specs
from cnnlab.errors import SpecError
from cnnlab.store import records
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status

SPEC = specs.ModelSpec(
    (8, 8, 1),
    (specs.LayerSpec("Conv2D", {"filters": 4, "kernel_size": 3}), specs.LayerSpec("Flatten")),
    name="tiny",
)
DATA = specs.DataSettings(dataset="digits", image_size=8, subset=100, options={"noise": 0.1})
TRAINING = specs.TrainingSettings(
    epochs=3, learning_rate=0.01, augmentation=specs.AugmentationSettings(flip="horizontal")
)


def _row(**changes: object) -> dict[str, object]:
    """A row as the store's query returns it: JSON columns as text."""
    row: dict[str, object] = {name: None for name in records.RUN_COLUMNS}
    row.update(
        id="0abc",
        name="run",
        owner="ada",
        status="running",
        created_at=1.5,
        spec=records.to_json(SPEC),
        data_settings=records.to_json(DATA),
        training_settings=records.to_json(TRAINING),
        queue_position=None,
        last_epoch=2,
    )
    row.update(changes)
    return row


def test_settings_come_back_as_the_dataclasses_they_were() -> None:
    record = records.record_from_row(_row())
    assert record.model_spec() == SPEC
    assert record.data() == DATA
    assert record.training() == TRAINING
    assert record.status is Status.RUNNING and record.is_active and not record.is_ended
    # The raw JSON speaks Keras, as a run card or a diff shows it.
    assert record.spec["layers"] == [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "Flatten"}]
    assert record.training_settings["augmentation"] == TRAINING.augmentation.to_dict()


def test_a_stored_spec_that_is_not_one_raises_a_spec_error() -> None:
    record = records.record_from_row(_row(spec=json.dumps({"name": "broken"})))
    with pytest.raises(SpecError, match="input_shape"):
        record.model_spec()


def test_tables_and_numpy_values_become_plain_json() -> None:
    table = pd.DataFrame({"class": ["0", "1"], "train": [np.int64(7), np.int64(5)]})
    assert json.loads(records.to_json(table) or "") == [
        {"class": "0", "train": 7},
        {"class": "1", "train": 5},
    ]
    assert json.loads(records.to_json({"accuracy": np.float32(0.5)}) or "") == {"accuracy": 0.5}
    assert records.to_json(None) is None and records.from_json(None) is None


def test_results_are_figures_and_nested_values_become_text() -> None:
    results = records.results_from_json(
        json.dumps({"test_accuracy": 0.75, "epochs": 3, "confusion": [[1, 0]]})
    )
    assert results == {"test_accuracy": 0.75, "epochs": 3, "confusion": "[[1, 0]]"}
    assert records.results_from_json(json.dumps([1, 2])) is None
    record = records.record_from_row(
        _row(results=json.dumps({"test_accuracy": 0.75, "epochs": 3, "note": "ok", "flag": True}))
    )
    assert record.result("test_accuracy") == 0.75 and record.result("epochs") == 3.0
    assert (
        record.result("note") is None and record.result("flag") is None and record.result("missing") is None
    )


def test_train_images_come_from_the_dataset_summary() -> None:
    summary = json.dumps([{"class": "0", "train": 7, "test": 2}, {"class": "1", "train": 5, "test": 1}])
    assert records.record_from_row(_row(dataset_summary=summary)).train_images() == 12
    assert records.record_from_row(_row()).train_images() is None


def test_a_record_is_frozen_and_lists_every_stored_column() -> None:
    record = records.record_from_row(_row())
    with pytest.raises(AttributeError):
        record.name = "other"
    assert "queue_position" not in records.RUN_COLUMNS and "status" in records.RUN_COLUMNS
    assert isinstance(record, RunRecord) and record.last_epoch == 2 and record.parent_id is None
