"""A real run trained in this process for the Evaluate and Predict tests: the digits, one epoch.

The run goes through the real training job (`cnnlab.runs.worker.training.run` via `worker.run_job`), so its
checkpoints, snapshots and results are exactly what a worker writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.worker import main as worker
from cnnlab.runs.worker import training
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status


def train_digits_run(
    home: Path,
    *,
    epochs: int = 1,
    name: str = "digits test run",
    settings: specs.TrainingSettings | None = None,
) -> str:
    """Train the default digits CNN in the store at `home` (for `epochs`, or with the training
    `settings` given); return the run id.

    The run trains in this process, which is not a CNN Lab worker: call it before a server whose
    scheduler watches `home` starts, or the scheduler takes the run for one whose worker was lost."""
    store = Store(home)
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=settings or specs.TrainingSettings(epochs=epochs, batch_size=64),
            name=name,
        )
    )
    store.set_status(run.id, Status.STARTING)
    status = worker.run_job(run.id, store, training.run)
    assert status == Status.COMPLETED, store.get_run(run.id).traceback
    return run.id


def copy_home(template: Path, destination: Path) -> None:
    """Copy the store and run folders of the home `template` into the home `destination` (before a
    server that watches `destination` starts): its runs, with their checkpoints and scores, are then
    that server's too (the store keeps paths relative to its home)."""
    for path in template.iterdir():
        if path.is_dir():
            shutil.copytree(path, destination / path.name, dirs_exist_ok=True)
        else:
            shutil.copy2(path, destination / path.name)
