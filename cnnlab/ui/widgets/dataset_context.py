"""The current dataset's shape and classes, for pages that check a model against it."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text
from cnnlab.specs import DataSettings
from cnnlab.ui.cache.data_cache import load_dataset


@dataclass(frozen=True)
class DatasetContext:
    """What a model must fit: the prepared image shape and the class count, or why they are unknown."""

    title: str
    image_shape: tuple[int, int, int] | None
    num_classes: int | None
    problem: str | None = None


def dataset_context(settings: DataSettings) -> DatasetContext:
    """The prepared shape and class count of the draft's dataset (loads it once, cached)."""
    try:
        split = load_dataset(settings)
    except CnnLabError as error:
        return DatasetContext(settings.dataset, None, None, str(error))
    return DatasetContext(split.info.title, split.image_shape, split.num_classes)


def show_dataset_line(context: DatasetContext) -> None:
    """One caption line naming the data a model is checked against."""
    if context.image_shape is None:
        st.warning(f"The chosen data cannot be loaded: {as_text(context.problem)}")
        return
    shape = "×".join(str(size) for size in context.image_shape)
    st.caption(
        f"Data: **{as_text(context.title)}**, images {shape}, {context.num_classes} classes (change on the Data page)."
    )
