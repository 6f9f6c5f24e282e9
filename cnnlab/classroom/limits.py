"""The class budget: how much one student may queue and how big one student's run may be.

A teacher sets the limits in the `[limits]` table of classroom.toml, for example

    [limits]
    max_queued_per_student = 3      # runs waiting in the queue at once, per student
    max_epochs = 20                 # epochs of one run (default: the most any preset trains)
    max_parameters = 1_000_000      # weights of one model
    max_training_images = 20_000    # images one run trains on (after the subset and the split)

A limit left out keeps the class default below; a limit set to "none" (or `false`) is lifted.
The defaults fit a class of 30 on a 2-core server: a small CNN on 20,000 images for a preset's
epochs trains in minutes, and three queued runs each keep the queue moving for everyone. The
default epoch limit is the most epochs any preset trains by default (`default_max_epochs`), so a
student's first "Start training" on a preset, or Home's one-click digits run, is never refused.

Teachers and the local user are never limited. A run that asks for more is refused at submit
with a `BudgetError` naming the limit, the value received and what to do.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cnnlab.classroom.users import User
from cnnlab.data import datasets, folders, splits
from cnnlab.errors import BudgetError, CnnLabError
from cnnlab.model import presets, shapes
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings
from cnnlab.store import names

DEFAULT_MAX_QUEUED_PER_STUDENT = 3


def default_max_epochs() -> int:
    """The most epochs any preset trains by default: the class default, so no preset's own training is refused."""
    default_epochs = TrainingSettings().epochs
    return max(int(preset.training.get("epochs", default_epochs)) for preset in presets.PRESETS.values())


DEFAULT_MAX_EPOCHS = default_max_epochs()
DEFAULT_MAX_PARAMETERS = 1_000_000
DEFAULT_MAX_TRAINING_IMAGES = 20_000

_UNLIMITED_WORDS = ("none", "unlimited", "")


@dataclass(frozen=True)
class Limits:
    """Per-student limits of a class; None lifts a limit."""

    max_queued_per_student: int | None = DEFAULT_MAX_QUEUED_PER_STUDENT
    max_epochs: int | None = DEFAULT_MAX_EPOCHS
    max_parameters: int | None = DEFAULT_MAX_PARAMETERS
    max_training_images: int | None = DEFAULT_MAX_TRAINING_IMAGES

    @classmethod
    def unlimited(cls) -> Limits:
        """No limit at all (a CNN Lab without a class)."""
        return cls(None, None, None, None)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Limits:
        """Read the `[limits]` table of classroom.toml; missing keys keep the class defaults."""
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(mapping) - set(names))
        if unknown:
            raise BudgetError(
                f"classroom.toml [limits] has unknown key(s) {', '.join(map(repr, unknown))}. "
                f"Use only {', '.join(names)}."
            )
        values = {name: _limit_value(name, mapping[name]) for name in names if name in mapping}
        return cls(**values)


def _limit_value(name: str, value: Any) -> int | None:
    if (
        value is None
        or value is False
        or (isinstance(value, str) and value.strip().lower() in _UNLIMITED_WORDS)
    ):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BudgetError(
            f'classroom.toml [limits] {name} must be a whole number of at least 1, or "none" for no limit; '
            f"got {value!r}. Fix it in classroom.toml and restart CNN Lab."
        )
    return value


def _refuse(what: str, value: int, limit: int, key: str, advice: str) -> BudgetError:
    return BudgetError(
        f"{what} is {value:,}, above this class's limit of {limit:,} ({key} in classroom.toml). {advice}"
    )


def _own_images_count(path: Path) -> int | None:
    """How many images a folder or .zip of class folders holds, from the file names alone."""
    try:
        if path.is_dir():
            return len(folders.scan_folder(path).files)
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [PurePosixPath(name) for name in archive.namelist() if not name.endswith("/")]
            return len(folders.scan_paths(names, f"The archive '{path.name}'").files)
    except (CnnLabError, OSError, zipfile.BadZipFile):
        return None
    return None


def dataset_size(data_settings: DataSettings) -> int | None:
    """The number of images in the chosen dataset, known before the run (None when it cannot be told)."""
    for entry in datasets.registry():
        if entry.name == data_settings.dataset:
            return entry.size
    return _own_images_count(Path(data_settings.dataset).expanduser())


def training_images(data_settings: DataSettings) -> int | None:
    """About how many images a run trains on: the dataset (or its subset) less the validation and test shares.

    None when the dataset's size cannot be known before the run and no subset bounds it.
    """
    size = dataset_size(data_settings)
    if size is None and data_settings.subset is None:
        return None
    total = data_settings.subset if size is None else min(size, data_settings.subset or size)
    assert total is not None  # One of size and subset is known here.
    train, _, _ = splits.part_counts(total, data_settings.validation_fraction, data_settings.test_fraction)
    return train


def check_submit(
    limits: Limits,
    user: User,
    *,
    queued_runs: int,
    spec: ModelSpec,
    data_settings: DataSettings,
    training_settings: TrainingSettings,
) -> None:
    """Refuse a run that a student may not queue; teachers and the local user pass unchecked.

    `queued_runs` is how many of the user's runs already wait in the queue.
    """
    if user.sees_everything:
        return
    if limits.max_queued_per_student is not None and queued_runs >= limits.max_queued_per_student:
        raise BudgetError(
            f"You already have {queued_runs} run(s) waiting in the queue; this class allows "
            f"{limits.max_queued_per_student} per student (max_queued_per_student in classroom.toml). "
            "Wait for one to start, or stop one of your queued runs on the Runs page."
        )
    check_run_size(limits, spec=spec, data_settings=data_settings, training_settings=training_settings)


def check_run_size(
    limits: Limits, *, spec: ModelSpec, data_settings: DataSettings, training_settings: TrainingSettings
) -> None:
    """Refuse a run bigger than a student's limits (epochs, parameters, training images), naming the limit."""
    if limits.max_epochs is not None and training_settings.epochs > limits.max_epochs:
        raise _refuse(
            "The number of epochs",
            training_settings.epochs,
            limits.max_epochs,
            "max_epochs",
            f"Set epochs to {limits.max_epochs} or fewer (early stopping can end a run sooner).",
        )
    if limits.max_parameters is not None:
        parameters = shapes.analyse(spec).total_parameters
        if parameters > limits.max_parameters:
            raise _refuse(
                "The model's parameter count",
                parameters,
                limits.max_parameters,
                "max_parameters",
                "Use fewer filters or units, or add pooling before the Dense layers.",
            )
    if limits.max_training_images is not None:
        images = training_images(data_settings)
        if images is not None and images > limits.max_training_images:
            raise _refuse(
                f"The number of training images (about, from '{names.dataset_name(data_settings)}' "
                f"after the subset and the validation and test shares)",
                images,
                limits.max_training_images,
                "max_training_images",
                "Set a smaller subset in the data settings.",
            )
