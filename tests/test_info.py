"""DatasetInfo and SplitData: frozen, keyword-only descriptions shared by every data module."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas
import pytest

from cnnlab.data.info import DatasetInfo, SplitData

FIELDS = {
    "name": "tiny",
    "title": "Tiny",
    "description": "Two classes.",
    "image_shape": (4, 4, 1),
    "class_names": ("a", "b"),
    "size": 6,
    "source": "tests",
    "licence": "none",
    "available": True,
    "unavailable_reason": None,
    "digit_like": False,
}


def tiny_split() -> SplitData:
    images = np.zeros((2, 4, 4, 1), dtype=np.float32)
    labels = np.array([0, 1], dtype=np.int64)
    summary = pandas.DataFrame({"train": [1, 1]}, index=pandas.Index(["a", "b"], name="class"))
    return SplitData(
        x_train=images,
        y_train=labels,
        x_val=images,
        y_val=labels,
        x_test=images,
        y_test=labels,
        class_names=("a", "b"),
        info=DatasetInfo(**FIELDS),
        summary=summary,
        skipped=None,
    )


def test_dataset_info_takes_keywords_only_and_is_frozen() -> None:
    info = DatasetInfo(**FIELDS)
    assert info.image_shape == (4, 4, 1) and info.class_names == ("a", "b")
    with pytest.raises(TypeError):
        DatasetInfo(*FIELDS.values())  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 7  # type: ignore[misc]
    assert dataclasses.replace(info, size=9).size == 9 and info.size == 6


def test_split_data_reads_its_shape_and_classes_from_its_info() -> None:
    split = tiny_split()
    assert split.image_shape == (4, 4, 1) and split.num_classes == 2
    with pytest.raises(TypeError):
        SplitData(*dataclasses.astuple(split))  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.skipped = None  # type: ignore[misc]
