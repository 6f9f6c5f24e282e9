"""Runs recorded straight into a store for the tests that read them (no worker, no training).

`make_run` is the one place the tests' runs are made: the default digits model, default data and
training settings, and whatever a test names (spec, epochs or training settings, name, owner,
status, exercise and what it fixes, sweep). `reached` walks a queued run along legal status changes.
"""

from __future__ import annotations

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

# A digits model small enough to train in a second: the Ray tests' and the records' runs.
TINY_DIGITS_SPEC = specs.ModelSpec.from_dict(
    {
        "name": "tiny digits",
        "input_shape": [8, 8, 1],
        "layers": [
            {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    }
)

# The statuses a queued run passes through to reach each status by legal changes.
_PATHS: dict[Status, tuple[Status, ...]] = {
    Status.QUEUED: (),
    Status.STARTING: (Status.STARTING,),
    Status.RUNNING: (Status.STARTING, Status.RUNNING),
    Status.PAUSED: (Status.STARTING, Status.RUNNING, Status.PAUSED),
    Status.COMPLETED: (Status.STARTING, Status.RUNNING, Status.COMPLETED),
    Status.STOPPED: (Status.STOPPED,),
    Status.DIVERGED: (Status.STARTING, Status.RUNNING, Status.DIVERGED),
    Status.FAILED: (Status.FAILED,),
    Status.INTERRUPTED: (Status.STARTING, Status.INTERRUPTED),
}


def make_run(
    store: Store,
    *,
    spec: specs.ModelSpec | None = None,
    data: specs.DataSettings | None = None,
    training: specs.TrainingSettings | None = None,
    epochs: int | None = None,
    name: str | None = None,
    owner: str = "local",
    status: Status = Status.QUEUED,
    exercise: str | None = None,
    sweep: str | None = None,
    exercise_locked: frozenset[str] = frozenset(),
    exercise_hidden: frozenset[str] = frozenset(),
) -> RunRecord:
    """Record a run in `store`: the default digits model (or `spec`) with default data and training
    settings (or `data`, `training`, or the default training for `epochs` epochs), in `status`."""
    if training is None:
        training = specs.TrainingSettings() if epochs is None else specs.TrainingSettings(epochs=epochs)
    request = RunRequest(
        spec=spec if spec is not None else presets.get("digits_default").spec,
        data_settings=data if data is not None else specs.DataSettings(),
        training_settings=training,
        name=name,
        owner=owner,
        exercise=exercise,
        sweep=sweep,
        exercise_locked=exercise_locked,
        exercise_hidden=exercise_hidden,
    )
    return store.create_run(request, status=status)


def reached(store: Store, run_id: str, target: Status) -> RunRecord:
    """Move run `run_id` (queued, or starting: made so where a server's scheduler could race the
    test for a queued run) to `target` along legal status changes; its record after."""
    run = store.get_run(run_id)
    path = _PATHS[target]
    if run.status in path:  # Already part of the way.
        path = path[path.index(run.status) + 1 :]
    for status in path:
        run = store.set_status(run_id, status)
    return run
