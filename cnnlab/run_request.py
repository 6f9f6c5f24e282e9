"""`RunRequest`: everything a submit carries, as one frozen value.

A page, the CLI, a sweep or a fork describes the run it wants as a `RunRequest` and hands it on
unchanged: the access rule (`cnnlab.classroom.access`) sets its owner, the scheduler
(`cnnlab.runs.queue.scheduler`) queues it, and the store (`cnnlab.store.run_store`) records it. A
field added here reaches every one of them without a new parameter in each.

The module is not called `requests`, so that it is never mistaken for the HTTP library.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cnnlab.errors import SpecError
from cnnlab.share import Setup
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LOCAL_OWNER", "RunRequest"]

LOCAL_OWNER = "local"  # the owner of runs when no sign-in is configured


@dataclass(frozen=True)
class RunRequest:
    """A run to queue: its model, data and training settings, and what it is tagged with.

    `name` None lets the store name the run from its model and data. `exercise` and `sweep` tag it
    with the exercise it was started from and the sweep it belongs to; `exercise_locked` and
    `exercise_hidden` name the controls that exercise locks and hides; `parent_id` and
    `parent_epoch` make it a fork that starts from that run's weights after that epoch. `probes`
    (float32 images shaped like the model input) become the run's `probes` snapshot before it can
    start; they take no part in comparing two requests.
    """

    spec: ModelSpec
    data_settings: DataSettings = field(default_factory=DataSettings)
    training_settings: TrainingSettings = field(default_factory=TrainingSettings)
    name: str | None = None
    owner: str = LOCAL_OWNER
    exercise: str | None = None
    sweep: str | None = None
    exercise_locked: frozenset[str] = frozenset()
    exercise_hidden: frozenset[str] = frozenset()
    parent_id: str | None = None
    parent_epoch: int | None = None
    probes: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, kind in (
            ("spec", ModelSpec),
            ("data_settings", DataSettings),
            ("training_settings", TrainingSettings),
        ):
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise SpecError(
                    f"A run request's {name} must be a {kind.__name__}; got {type(value).__name__} {value!r}. "
                    f"Build it with {kind.__name__}.from_dict(...)."
                )
        if not isinstance(self.owner, str) or not self.owner:
            raise SpecError(f"A run request's owner must be a user id; got {self.owner!r}. Use e.g. 'local'.")
        if (self.parent_id is None) != (self.parent_epoch is None):
            raise SpecError(
                f"A fork names both its parent run and the parent's epoch; got parent_id={self.parent_id!r} "
                f"and parent_epoch={self.parent_epoch!r}. Give both, or neither for a new run."
            )

    @classmethod
    def from_setup(
        cls,
        setup: Setup,
        *,
        name: str | None = None,
        exercise: str | None = None,
        exercise_locked: frozenset[str] = frozenset(),
        exercise_hidden: frozenset[str] = frozenset(),
        probes: np.ndarray | None = None,
    ) -> RunRequest:
        """The request to train `setup` (a page's data, model and training settings)."""
        return cls(
            spec=setup.model,
            data_settings=setup.data,
            training_settings=setup.training,
            name=name,
            exercise=exercise,
            exercise_locked=exercise_locked,
            exercise_hidden=exercise_hidden,
            probes=probes,
        )

    @property
    def exercise_controls(self) -> dict[str, list[str]] | None:
        """What the run's exercise fixes, as the store records it; None for a run of no exercise."""
        if self.exercise is None and not self.exercise_hidden:
            return None
        return {"locked": sorted(self.exercise_locked), "hidden": sorted(self.exercise_hidden)}

    def owned_by(self, owner: str) -> RunRequest:
        """The same request made by user `owner`."""
        return dataclasses.replace(self, owner=owner)
