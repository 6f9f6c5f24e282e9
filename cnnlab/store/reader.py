"""What the pages and figures may do with runs: read them (TensorBoard's data-provider idea).

`RunReader` lists the read methods the UI uses; `cnnlab.store.run_store.Store` satisfies it, and so
can anything that answers the same questions (a store on another machine, a fake in a test). The
server hands its pages a `RunReader` (`cnnlab.ui.server.store()`), so a page cannot change a run
by accident: changes go through the scheduler (submit, stop, continue, fork, rename, delete) and
the worker writes what it records through the `Store`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cnnlab.store.artifacts import SnapshotArrays
from cnnlab.store.diagnoses import Diagnosis
from cnnlab.store.records import RunRecord

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.


class RunReader(Protocol):
    """Read-only access to the runs of one home folder."""

    @property
    def home(self) -> Path:
        """The data folder the runs live in."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id `run_id` (or a unique prefix of it); RunError if there is none."""
        ...

    def list_runs(
        self, *, status: str | Iterable[str] | None = None, owner: str | None = None, limit: int | None = None
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only some statuses or one owner."""
        ...

    def epoch_metrics(self, run_id: str) -> pd.DataFrame:
        """Epoch metrics in epoch order (epoch, loss, accuracy, val_loss, val_accuracy, ... and extras)."""
        ...

    def batch_metrics(self, run_id: str, *, after_step: int | None = None) -> pd.DataFrame:
        """Batch metrics in step order (only steps after `after_step` when given)."""
        ...

    def events(self, run_id: str) -> pd.DataFrame:
        """The event log, oldest first: time, level, message."""
        ...

    def diagnoses(self, run_id: str) -> list[Diagnosis]:
        """The run's diagnoses (kind, epoch, cause, fix), oldest first."""
        ...

    def snapshot_epochs(self, run_id: str, kind: str) -> list[int]:
        """The epochs that have a telemetry snapshot of this kind, in order."""
        ...

    def snapshot_path(self, run_id: str, epoch: int, kind: str) -> Path:
        """Where the snapshot of `kind` for `epoch` is (it may not exist)."""
        ...

    def read_snapshot(self, run_id: str, epoch: int, kind: str) -> SnapshotArrays:
        """The arrays of one snapshot; RunError if it was not recorded."""
        ...

    def checkpoints(self, run_id: str) -> dict[str, int]:
        """The checkpoints written so far: name ("latest", "best", "epoch_0003") to epoch."""
        ...

    def checkpoint_path(self, run_id: str, which: str | int = "latest") -> Path:
        """Where checkpoint `which` ("latest", "best" or an epoch number) lives (it may not exist yet)."""
        ...

    def run_folder(self, run_id: str) -> Path:
        """The folder holding the run's files."""
        ...
