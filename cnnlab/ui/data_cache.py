"""Datasets loaded once per server process and shared by every session (keyed by their settings)."""

from __future__ import annotations

import json

import streamlit as st

from cnnlab import datasets
from cnnlab.specs import DataSettings


@st.cache_resource(max_entries=4, show_spinner="Loading the dataset…")
def _load(settings_json: str) -> datasets.SplitData:
    return datasets.load(DataSettings.from_dict(json.loads(settings_json)))


def load_dataset(settings: DataSettings) -> datasets.SplitData:
    """The prepared splits for `settings` (cached; raises CnnLabError for unusable settings)."""
    return _load(json.dumps(settings.to_dict(), sort_keys=True))
