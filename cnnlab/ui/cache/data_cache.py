"""Datasets loaded once per server process and shared by every session (keyed by their settings),
and the Data page's augmentation previews of them."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from cnnlab.data import datasets
from cnnlab.data.info import SplitData
from cnnlab.specs import AugmentationSettings, DataSettings

PREVIEW_IMAGES, PREVIEW_COPIES = 4, 5


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset…")
def _load(settings_json: str) -> SplitData:
    bar = st.empty()

    def report(fraction: float, message: str) -> None:
        # Downloads of the Keras sets and generation of the shapes report their progress here.
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        return datasets.load(DataSettings.from_dict(json.loads(settings_json)), progress=report)
    finally:
        bar.empty()


def load_dataset(settings: DataSettings) -> SplitData:
    """The prepared splits for `settings` (cached; raises CnnLabError for unusable settings)."""
    return _load(json.dumps(settings.to_dict(), sort_keys=True))


@st.cache_data(max_entries=16, show_spinner="Augmenting…")
def _augmentation_preview(settings_json: str, augmentation_json: str) -> tuple[np.ndarray, np.ndarray]:
    settings = DataSettings.from_dict(json.loads(settings_json))
    split = _load(settings_json)
    chosen = np.random.default_rng(settings.seed).choice(len(split.x_train), PREVIEW_IMAGES, replace=False)
    examples = split.x_train[chosen]
    from cnnlab.model import build  # Keras starts only when a preview is asked for.

    augmentation = AugmentationSettings.from_dict(json.loads(augmentation_json))
    return examples, build.augmented_examples(
        examples, augmentation, copies=PREVIEW_COPIES, seed=settings.seed
    )


def augmentation_preview(
    settings: DataSettings, augmentation: AugmentationSettings
) -> tuple[np.ndarray, np.ndarray]:
    """`PREVIEW_IMAGES` training images of the dataset of `settings` (picked by its seed) and
    `PREVIEW_COPIES` augmented copies of each (`build.augmented_examples`, seeded the same), cached:
    a rerun of the Data page draws the same preview without Keras."""
    return _augmentation_preview(
        json.dumps(settings.to_dict(), sort_keys=True), json.dumps(augmentation.to_dict(), sort_keys=True)
    )
