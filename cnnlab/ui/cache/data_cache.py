"""Datasets loaded once per server process and shared by every session (keyed by their settings)."""

from __future__ import annotations

import json

import streamlit as st

from cnnlab.data import datasets
from cnnlab.data.info import SplitData
from cnnlab.specs import DataSettings


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
