"""The name a new run gets: its model, its data and when it was created.

"digits_default on digits 2025-05-01 14:03" for a preset as it ships, "edited digits_default on
mnist 2025-05-01 14:05" once its layers were changed, and the model's own name for a model that
is not a preset. Fitting a preset's input to the data is not an edit: its layers are unchanged.
"""

from __future__ import annotations

import time
from pathlib import PurePath

from cnnlab.model import presets
from cnnlab.specs import DataSettings, ModelSpec

TIME_FORMAT = "%Y-%m-%d %H:%M"


def model_name(spec: ModelSpec) -> str:
    """The model as a run's name says it: the preset's name, "edited <preset>" if its layers
    differ from the preset's, else the model's own name."""
    preset = presets.PRESETS.get(spec.name)
    if preset is None or preset.spec.layers == spec.layers:
        return spec.name
    return f"edited {spec.name}"


def dataset_name(data: DataSettings) -> str:
    """The dataset as a run's name says it: a built-in set's name, or an upload's file or folder name."""
    return PurePath(data.dataset).name or data.dataset


def run_name(spec: ModelSpec, data: DataSettings, created_at: float | None = None) -> str:
    """The run's name: "<model> on <dataset> <local date and time>" ("edited digits_default on mnist 2025-05-01 14:05")."""
    when = time.localtime(time.time() if created_at is None else created_at)
    return f"{model_name(spec)} on {dataset_name(data)} {time.strftime(TIME_FORMAT, when)}"
