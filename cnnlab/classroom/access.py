"""The runs as one user may see and change them: the one place "students own their runs" is enforced.

`RunAccess` wraps the scheduler (which holds the store) for an acting `User`:

- the local user (no sign-in configured) and teachers read and control every run, unlimited;
- a student reads their own runs and runs a teacher shared with the class, and controls (stop,
  pause, resume, kill, continue, rename, delete) only their own; forking a run they may read gives
  them a run of their own;
- only teachers and the local user share a run with the class;
- a student's new runs are checked against the class budget (`cnnlab.classroom.limits`).

It offers every read of `cnnlab.store.reader.RunReader`, so the pages get one (`cnnlab.ui.server`)
and barely know it is there; the CLI acts through one too (`cnnlab.cli.access`). Another student's
unshared run is never read: a request for it raises `AccessError` before anything of it is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.classroom import exercises, uploads
from cnnlab.classroom import limits as class_limits
from cnnlab.classroom.limits import Limits
from cnnlab.classroom.users import Role, User
from cnnlab.errors import AccessError, RunError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings
from cnnlab.store import names
from cnnlab.store.artifacts import SnapshotArrays
from cnnlab.store.diagnoses import Diagnosis
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.

__all__ = ["TEACHER", "RunAccess", "not_yours"]

TEACHER = "teacher"  # who asked for a stop, pause or resume of a student's run, as the store records it


def not_yours(run_id: str, kind: str = "Run") -> AccessError:
    """A student's refusal of a run (or sweep) id that is another student's or that does not exist.

    One answer for both, word for word, so that a student cannot learn whether an id (or a prefix of
    one) belongs to somebody else; it says where to find their own.
    """
    listing = {"Run": "the Runs page", "Sweep": "`sweeps`"}.get(kind, "the Data page")
    return AccessError(
        f"{kind} {run_id!r} is not one you can open: it does not exist, or it is another student's. "
        f"Yours, and those your teacher shared, are on {listing}."
    )


class RunAccess:
    """The runs of `store` as `user` may read and change them, within the class `limits`.

    `scheduler` changes runs: a `Scheduler` over the same store, or a function that gives one when
    the first change is asked (so reading runs does not start one); by default an unstarted
    scheduler without a warm worker, as the CLI uses.
    """

    def __init__(
        self,
        store: Store,
        user: User,
        limits: Limits | None = None,
        scheduler: Scheduler | Callable[[], Scheduler] | None = None,
    ) -> None:
        self._store = store
        self._scheduler_source = scheduler
        self.user = user
        self.limits = limits if limits is not None else Limits()

    @classmethod
    def of(cls, scheduler: Scheduler, user: User, limits: Limits | None = None) -> RunAccess:
        """The runs of `scheduler`'s store as `user` may use them, changed through `scheduler`."""
        return cls(scheduler.store, user, limits, scheduler)

    @property
    def _scheduler(self) -> Scheduler:
        if isinstance(self._scheduler_source, Scheduler):
            return self._scheduler_source
        made = (
            self._scheduler_source()
            if self._scheduler_source is not None
            else Scheduler(self._store, warm=False)
        )
        self._scheduler_source = made
        return made

    # The rule.

    def may_read(self, run: RunRecord) -> bool:
        """True when the user may see `run`: their own, a shared one, or any for a teacher or the local user."""
        return self.user.sees_everything or run.owner == self.user.id or run.shared

    def may_control(self, run: RunRecord) -> bool:
        """True when the user may change `run`: their own, or any for a teacher or the local user."""
        return self.user.sees_everything or run.owner == self.user.id

    def _check_read(self, run_id: str) -> None:
        """Raise AccessError unless the user may read run `run_id`; a cheap check before a per-run read."""
        if self.user.sees_everything:
            return
        ownership = self._store.ownership(run_id)
        if ownership is None:
            self.get_run(run_id)  # A prefix, or no run at all: checked (and refused) with the full record.
        elif ownership[0] != self.user.id and not ownership[1]:
            raise not_yours(run_id)

    def _controlled(self, run_id: str) -> RunRecord:
        run = self.get_run(run_id)
        if not self.may_control(run):
            raise AccessError(
                f"Run {run_id} is shared with the class: you may look at it but not change it. "
                "Fork it to train a copy of your own."
            )
        return run

    # Reading (the `RunReader` protocol).

    @property
    def home(self) -> Path:
        """The data folder the runs live in."""
        return self._store.home

    def user_names(self) -> dict[str, str]:
        """Every user's display name by user id (names are not private in a class: the console shows them)."""
        return self._store.people.display_names()

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id `run_id` (or a unique prefix); RunError if there is none.

        A student gets the same AccessError (`not_yours`) for a run that is not theirs as for one that
        does not exist; a prefix names one of the runs they may read, whatever other runs share it.
        """
        if self.user.sees_everything:
            return self._store.get_run(run_id)
        with contextlib.suppress(RunError):
            run = self._store.get_run(run_id)
            if self.may_read(run):
                return run
        readable = [run for run in self.list_runs() if run.id.startswith(run_id)]
        if len(readable) == 1 and run_id:
            return readable[0]
        raise not_yours(run_id)

    def list_runs(
        self, *, status: str | Iterable[str] | None = None, owner: str | None = None, limit: int | None = None
    ) -> list[RunRecord]:
        """The runs the user may see, newest first, optionally only some statuses or one owner."""
        visible_to = None if self.user.sees_everything else self.user.id
        return self._store.list_runs(status=status, owner=owner, limit=limit, visible_to=visible_to)

    def epoch_metrics(self, run_id: str) -> pd.DataFrame:
        """Epoch metrics in epoch order."""
        self._check_read(run_id)
        return self._store.epoch_metrics(run_id)

    def batch_metrics(self, run_id: str, *, after_step: int | None = None) -> pd.DataFrame:
        """Batch metrics in step order (only steps after `after_step` when given)."""
        self._check_read(run_id)
        return self._store.batch_metrics(run_id, after_step=after_step)

    def events(self, run_id: str) -> pd.DataFrame:
        """The event log, oldest first: time, level, message."""
        self._check_read(run_id)
        return self._store.events(run_id)

    def diagnoses(self, run_id: str) -> list[Diagnosis]:
        """The run's diagnoses (kind, epoch, cause, fix), oldest first."""
        self._check_read(run_id)
        return self._store.diagnoses(run_id)

    def snapshot_epochs(self, run_id: str, kind: str) -> list[int]:
        """The epochs that have a telemetry snapshot of this kind, in order."""
        self._check_read(run_id)
        return self._store.snapshot_epochs(run_id, kind)

    def snapshot_path(self, run_id: str, epoch: int, kind: str) -> Path:
        """Where the snapshot of `kind` for `epoch` is (it may not exist)."""
        self._check_read(run_id)
        return self._store.snapshot_path(run_id, epoch, kind)

    def read_snapshot(self, run_id: str, epoch: int, kind: str) -> SnapshotArrays:
        """The arrays of one snapshot; RunError if it was not recorded."""
        self._check_read(run_id)
        return self._store.read_snapshot(run_id, epoch, kind)

    def checkpoints(self, run_id: str) -> dict[str, int]:
        """The checkpoints written so far: name ("latest", "best", "epoch_0003") to epoch."""
        self._check_read(run_id)
        return self._store.checkpoints(run_id)

    def checkpoint_path(self, run_id: str, which: str | int = "latest") -> Path:
        """Where checkpoint `which` lives (the model file a download reads)."""
        self._check_read(run_id)
        return self._store.checkpoint_path(run_id, which)

    def requested_by(self, run_id: str, action: str) -> str | None:
        """Who made the run's latest `action` request ("teacher"), None when its owner did or nobody."""
        self._check_read(run_id)
        return self._store.requested_by(run_id, action)

    def run_folder(self, run_id: str) -> Path:
        """The folder holding the run's files."""
        self._check_read(run_id)
        return self._store.run_folder(run_id)

    # Changing.

    def _queued_count(self) -> int:
        return len(self._store.list_runs(status=Status.QUEUED, owner=self.user.id))

    def _check_budget(self, spec: ModelSpec, data_settings: DataSettings, training: TrainingSettings) -> None:
        class_limits.check_submit(
            self.limits,
            self.user,
            queued_runs=0 if self.user.sees_everything else self._queued_count(),
            spec=spec,
            data_settings=data_settings,
            training_settings=training,
        )

    def check_budget(self, request: RunRequest) -> None:
        """BudgetError when a student's run like `request` would be over the class budget (a sweep's
        largest trial is checked before its first is queued)."""
        self._check_budget(request.spec, request.data_settings, request.training_settings)

    def submit(self, request: RunRequest, *, start: bool = True) -> RunRecord:
        """Queue the run `request` describes, owned by the user whatever owner it names (BudgetError
        when a student's run is over the class budget).

        `start=False` only records it queued, for a scheduler elsewhere (the server's) to start.
        """
        self._check_budget(request.spec, request.data_settings, request.training_settings)
        if self.user.role == Role.STUDENT and not uploads.may_use(
            self._store.home, self.user, request.data_settings.dataset
        ):
            # Another student's upload (or any folder of the server): refused like another's run.
            raise not_yours(names.dataset_name(request.data_settings), "Dataset")
        owned = request.owned_by(self.user.id)
        if not start:
            return self._store.create_run(owned)
        return self._scheduler.submit(owned)

    def _by(self, run: RunRecord) -> str | None:
        """ "teacher" when a teacher acts on another user's run (the owner is told so), else None."""
        return TEACHER if self.user.role == Role.TEACHER and run.owner != self.user.id else None

    def stop(self, run_id: str) -> RunRecord:
        """Stop one of the user's runs (queued: at once; live: after its current batch)."""
        run = self._controlled(run_id)
        return self._scheduler.stop(run.id, by=self._by(run))

    def pause(self, run_id: str) -> None:
        """Ask one of the user's running runs to pause between batches."""
        run = self._controlled(run_id)
        self._scheduler.pause(run.id, by=self._by(run))

    def paused_by_teacher(self, run: RunRecord) -> bool:
        """True when `run` is paused and its latest pause was a teacher's: only a teacher resumes it."""
        return run.status == Status.PAUSED and self.requested_by(run.id, "pause") == TEACHER

    def resume(self, run_id: str) -> None:
        """Ask one of the user's paused runs to carry on; a run a teacher paused, only a teacher resumes."""
        run = self._controlled(run_id)
        if not self.user.sees_everything and self.paused_by_teacher(run):
            raise AccessError(
                f"Your teacher paused run {run.id}; only your teacher can resume it. Ask them, or stop it."
            )
        self._scheduler.resume(run.id, by=self._by(run))

    def kill(self, run_id: str) -> None:
        """End the worker of one of the user's runs at once."""
        self._scheduler.kill(self._controlled(run_id).id)

    def stopped_by_teacher(self, run: RunRecord) -> bool:
        """True when `run` is stopped and its stop was a teacher's: only a teacher continues it."""
        return run.status == Status.STOPPED and self.requested_by(run.id, "stop") == TEACHER

    def continue_run(self, run_id: str, more_epochs: int) -> RunRecord:
        """Queue one of the user's ended runs for `more_epochs` more (within the class budget).

        A run continued past the epochs its exercise fixes leaves the exercise (and its leaderboard).
        A run a teacher stopped, only a teacher continues (as only a teacher resumes one it paused);
        its student may fork it: a new run of theirs, within the class limits.
        """
        run = self._controlled(run_id)
        if not self.user.sees_everything and self.stopped_by_teacher(run):
            raise AccessError(
                f"Your teacher stopped run {run.id}; only your teacher can continue it. Ask them, or fork "
                "it: a fork is a new run of yours, within the class limits."
            )
        done = self._store.checkpoints(run.id).get("latest") or 0
        longer = dataclasses.replace(run.training(), epochs=done + max(more_epochs, 1))
        self._check_budget(run.model_spec(), run.data(), longer)
        leaving = exercises.leaves_on_continue(run, longer.epochs)
        continued = self._scheduler.continue_run(run.id, more_epochs)
        if leaving is not None:
            self._store.leave_exercise(run.id, leaving)
            continued = self._store.get_run(run.id)
        return continued

    def fork(
        self,
        run_id: str,
        epoch: int,
        training_settings: TrainingSettings | None = None,
        *,
        name: str | None = None,
    ) -> RunRecord:
        """Queue a fork of a run the user may read; a student's or a teacher's fork is their own.

        The local user's forks keep the parent's owner, as they always did. A fork of one's own run
        stays in its exercise unless it changes a training setting the exercise fixes; a fork of
        another's (shared) run is outside it.
        """
        parent = self.get_run(run_id)
        training = training_settings if training_settings is not None else parent.training()
        self._check_budget(parent.model_spec(), parent.data(), training)
        owner = None if self.user.role == Role.LOCAL else self.user.id
        leaving = exercises.leaves_on_fork(parent, training)
        if owner is not None and parent.owner != owner and parent.exercise is not None:
            leaving = "a fork of another user's run (a shared one) starts from their weights"
        fork = self._scheduler.fork(
            parent.id, epoch, training_settings, name=name, owner=owner, keep_exercise=leaving is None
        )
        if leaving is not None and parent.exercise is not None:
            self._store.log_event(fork.id, f"not in the exercise {parent.exercise!r}: {leaving}", "warning")
        return fork

    def rename(self, run_id: str, name: str) -> RunRecord:
        """Give one of the user's runs a new name."""
        return self._scheduler.rename(self._controlled(run_id).id, name)

    def delete(self, run_id: str) -> None:
        """Delete one of the user's ended or queued runs and its files."""
        self._scheduler.delete(self._controlled(run_id).id)

    def share(self, run_id: str, shared: bool = True) -> RunRecord:
        """Share a run with the class (every signed-in user may read it), or stop sharing it; teachers only."""
        if not self.user.sees_everything:
            raise AccessError(
                f"Only a teacher can share a run with the class; you are signed in as {self.user.name} "
                f"({self.user.role}). Ask your teacher to share run {run_id}."
            )
        run = self.get_run(run_id)
        self._store.set_shared(run.id, shared)
        return self._store.get_run(run.id)

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until a run the user may read has ended (or `timeout` seconds pass); return its record."""
        return self._scheduler.wait(self.get_run(run_id).id, timeout=timeout)
