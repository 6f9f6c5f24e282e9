"""What a dataset is and what loading one returns: `DatasetInfo` and `SplitData`.

Both are frozen, keyword-only dataclasses with no behaviour beyond a few read-only properties,
so every module that describes, loads or preprocesses images can share them without importing
the loaders (and without an import cycle between the registry, the folder reader and the
image preprocessing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas

    from cnnlab.data.folders import SkippedReport

__all__ = ["DatasetInfo", "SplitData"]


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """What a dataset is: name, description, native image shape, classes, size, source, licence."""

    name: str
    title: str
    description: str
    image_shape: tuple[int, int, int]  # The native (height, width, channels).
    class_names: tuple[str, ...]
    size: int  # The number of images.
    source: str
    licence: str
    available: bool
    unavailable_reason: str | None
    digit_like: bool  # Light ink on a dark background, like MNIST and scikit-learn's digits.


@dataclass(frozen=True, kw_only=True)
class SplitData:
    """A dataset prepared for training: three stratified splits, the classes and a summary."""

    x_train: np.ndarray  # float32 (count, height, width, channels) in [0, 1].
    y_train: np.ndarray  # int64 class indices.
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    info: DatasetInfo  # With image_shape updated to the prepared shape.
    summary: pandas.DataFrame  # One row per class; columns train, validation, test, total.
    skipped: SkippedReport | None  # What was left out of the user's own images; None otherwise.
    # What the user should know about how the settings were applied (a subset larger than the set,
    # shares a small set cannot keep, an empty split), one warning per item; empty when all is as asked.
    notes: tuple[str, ...] = ()
    # The user's own images: each split's files as paths inside the folder or .zip ("cats/1.png"),
    # in the order of its images; empty for the other datasets. (train, validation, test).
    file_names: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The prepared (height, width, channels) of every image."""
        return self.info.image_shape

    @property
    def num_classes(self) -> int:
        """How many classes the labels index."""
        return len(self.class_names)
