"""RunAccess: students own their runs, read shared ones, teachers and the local user see and control all.

Real store and a real scheduler. Runs are put into their statuses through the store, and a run the
teacher holds "running" (its heartbeat from this test process) keeps the scheduler's only slot, so
no worker process is started: what is tested here is who may do what, not the workers.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from made_runs import make_run

from cnnlab import specs
from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.limits import Limits
from cnnlab.classroom.users import LOCAL_USER, Role, User
from cnnlab.errors import AccessError, BudgetError
from cnnlab.model import shapes
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.store.reader import RunReader
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

SPEC = specs.ModelSpec.from_dict(
    {
        "name": "tiny",
        "input_shape": [8, 8, 1],
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}],
    }
)
ADA = User("ada", "Ada", Role.STUDENT)
BOB = User("bob", "Bob", Role.STUDENT)
TEACHER = User("lee", "Ms Lee", Role.TEACHER)
NOT_YOURS = "is not one you can open: it does not exist, or it is another student's"


@pytest.fixture
def stand_in_worker() -> Iterator[int]:
    """The pid of a live process named like a CNN Lab worker: the scheduler sees its runs as alive."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "cnnlab-stand-in-worker"],
        stdin=subprocess.PIPE,
    )
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture
def scheduler(tmp_path: Path, stand_in_worker: int) -> Scheduler:
    store = Store(tmp_path / "home")
    executor = LocalProcessExecutor(store.home, threads=1, warm=False)
    target = Scheduler(store, executor, max_workers=1)
    holder = store.create_run(
        RunRequest(
            spec=SPEC,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(),
            owner="lee",
        )
    )
    _live(store, holder, stand_in_worker)  # Holds the only slot: nothing queued starts a worker.
    return target


def _live(store: Store, run: RunRecord, pid: int, status: Status = Status.RUNNING) -> RunRecord:
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    if status == Status.PAUSED:
        store.set_status(run.id, Status.PAUSED)
    store.heartbeat(run.id, pid)
    return store.get_run(run.id)


def _run(store: Store, owner: str, *, epochs: int = 3, trained: bool = False) -> RunRecord:
    """A run of `owner`; `trained`: completed with one epoch of metrics, a snapshot and checkpoints."""
    run = make_run(store, spec=SPEC, epochs=epochs, owner=owner)
    if trained:
        store.set_status(run.id, Status.STARTING)
        store.set_status(run.id, Status.RUNNING)
        store.add_epoch_metrics(run.id, {"epoch": 1, "loss": 0.5, "accuracy": 0.8})
        store.log_event(run.id, "epoch 1 done")
        store.write_snapshot(run.id, 1, "kernels", {"weights": np.ones(2, dtype=np.float32)})
        for which in ("latest", 1):
            store.save_checkpoint(run.id, which, 1, lambda path: path.write_bytes(b"weights"))
        store.set_status(run.id, Status.COMPLETED)
    return store.get_run(run.id)


def _reads(run_id: str) -> dict[str, Callable[[RunAccess], object]]:
    """One call of every RunReader method (but `home` and `list_runs`) on run `run_id`."""
    return {
        "get_run": lambda access: access.get_run(run_id),
        "epoch_metrics": lambda access: access.epoch_metrics(run_id),
        "batch_metrics": lambda access: access.batch_metrics(run_id, after_step=0),
        "events": lambda access: access.events(run_id),
        "diagnoses": lambda access: access.diagnoses(run_id),
        "snapshot_epochs": lambda access: access.snapshot_epochs(run_id, "kernels"),
        "snapshot_path": lambda access: access.snapshot_path(run_id, 1, "kernels"),
        "read_snapshot": lambda access: access.read_snapshot(run_id, 1, "kernels"),
        "checkpoints": lambda access: access.checkpoints(run_id),
        "checkpoint_path": lambda access: access.checkpoint_path(run_id, "latest"),
        "run_folder": lambda access: access.run_folder(run_id),
    }


def _changes(run_id: str) -> dict[str, Callable[[RunAccess], object]]:
    return {
        "stop": lambda access: access.stop(run_id),
        "pause": lambda access: access.pause(run_id),
        "resume": lambda access: access.resume(run_id),
        "kill": lambda access: access.kill(run_id),
        "continue_run": lambda access: access.continue_run(run_id, 1),
        "rename": lambda access: access.rename(run_id, "mine now"),
        "delete": lambda access: access.delete(run_id),
    }


def test_the_reads_cover_every_method_of_the_run_reader() -> None:
    protocol = {name for name, _ in inspect.getmembers(RunReader) if not name.startswith("_")}
    assert protocol - {"home", "list_runs"} == set(_reads("x"))


def test_a_student_lists_their_own_and_shared_runs_a_teacher_and_the_local_user_all(
    scheduler: Scheduler,
) -> None:
    store = scheduler.store
    ada_run, bob_run, shared = _run(store, "ada"), _run(store, "bob"), _run(store, "lee", trained=True)
    store.set_shared(shared.id, True)
    everything = {run.id for run in store.list_runs()}
    assert {run.id for run in RunAccess.of(scheduler, ADA).list_runs()} == {ada_run.id, shared.id}
    assert {run.id for run in RunAccess.of(scheduler, BOB).list_runs(limit=1)} == {shared.id}
    assert {run.id for run in RunAccess.of(scheduler, BOB).list_runs(status="queued")} == {bob_run.id}
    assert {run.id for run in RunAccess.of(scheduler, TEACHER).list_runs()} == everything
    assert {run.id for run in RunAccess.of(scheduler, LOCAL_USER).list_runs()} == everything


def test_a_student_reads_nothing_of_another_students_run(scheduler: Scheduler) -> None:
    ada_run = _run(scheduler.store, "ada", trained=True)
    for access in (RunAccess.of(scheduler, ADA), RunAccess.of(scheduler, TEACHER)):
        for read in _reads(ada_run.id).values():
            read(access)  # The owner and the teacher read every part of it.
    bob = RunAccess.of(scheduler, BOB)
    for name, read in _reads(ada_run.id).items():
        with pytest.raises(AccessError, match=NOT_YOURS):
            read(bob)
        assert name
    with pytest.raises(AccessError, match=NOT_YOURS):
        bob.get_run(ada_run.id[:-3])  # A prefix names the same run.


def test_a_missing_run_and_another_students_read_the_same(scheduler: Scheduler) -> None:
    ada_run = _run(scheduler.store, "ada", trained=True)
    bob_run = _run(scheduler.store, "bob")
    bob = RunAccess.of(scheduler, BOB)
    missing = "z" * len(ada_run.id)
    answers = set()
    for asked in (ada_run.id, ada_run.id[:-3], missing, missing[:-3]):
        with pytest.raises(AccessError) as refused:
            bob.get_run(asked)
        answers.add(str(refused.value).replace(repr(asked), "ID"))
        with pytest.raises(AccessError) as refused:
            bob.epoch_metrics(asked)
        answers.add(str(refused.value).replace(repr(asked), "ID"))
    assert len(answers) == 1, answers
    # A prefix shared with another student's run still names Bob's own, and only his.
    common = next(index for index, (a, b) in enumerate(zip(ada_run.id, bob_run.id, strict=True)) if a != b)
    assert bob.get_run(bob_run.id[:common]).id == bob_run.id


def test_a_student_changes_nothing_of_another_students_run(
    scheduler: Scheduler, stand_in_worker: int
) -> None:
    store = scheduler.store
    running = _live(store, _run(store, "ada"), stand_in_worker)
    paused = _live(store, _run(store, "ada"), stand_in_worker, Status.PAUSED)
    trained = _run(store, "ada", trained=True)
    bob = RunAccess.of(scheduler, BOB)
    for run in (running, paused, trained):
        for name, change in _changes(run.id).items():
            with pytest.raises(AccessError, match=NOT_YOURS):
                change(bob)
            assert store.get_run(run.id) == run, f"{name} changed run {run.id}"
            assert store.pending_control(run.id) is None
        with pytest.raises(AccessError, match=NOT_YOURS):
            bob.fork(run.id, 1)
    assert {run.owner for run in store.list_runs()} == {"lee", "ada"}  # No fork was made.


def test_a_shared_run_is_read_but_not_changed_by_a_student_whose_fork_is_their_own(
    scheduler: Scheduler,
) -> None:
    store = scheduler.store
    shared = _run(store, "ada", trained=True)
    with pytest.raises(AccessError, match="Only a teacher can share"):
        RunAccess.of(scheduler, ADA).share(shared.id)
    shared = RunAccess.of(scheduler, TEACHER).share(shared.id)
    assert shared.shared
    bob = RunAccess.of(scheduler, BOB)
    for read in _reads(shared.id).values():
        read(bob)
    for name, change in _changes(shared.id).items():
        with pytest.raises(AccessError, match="shared with the class: you may look at it but not change it"):
            change(bob)
        assert store.get_run(shared.id) == shared, name
    fork = bob.fork(shared.id, 1, specs.TrainingSettings(epochs=2))
    assert (fork.owner, fork.parent_id, fork.status) == ("bob", shared.id, Status.QUEUED)
    bob.rename(fork.id, "my copy")
    bob.stop(fork.id)
    assert store.get_run(fork.id).name == "my copy" and store.get_run(fork.id).status == Status.STOPPED


def test_a_teacher_controls_every_students_run(scheduler: Scheduler, stand_in_worker: int) -> None:
    store = scheduler.store
    running, queued = _live(store, _run(store, "ada"), stand_in_worker), _run(store, "bob")
    teacher = RunAccess.of(scheduler, TEACHER)
    teacher.pause(running.id)
    assert store.pending_control(running.id) == "pause"
    teacher.stop(running.id)
    assert store.pending_control(running.id) == "stop"
    assert teacher.stop(queued.id).status == Status.STOPPED
    assert teacher.rename(queued.id, "renamed by the teacher").name == "renamed by the teacher"
    teacher.delete(queued.id)
    assert queued.id not in {run.id for run in store.list_runs()}


def test_a_run_the_teacher_paused_is_resumed_by_the_teacher_only(
    scheduler: Scheduler, stand_in_worker: int
) -> None:
    store = scheduler.store
    run = _live(store, _run(store, "ada"), stand_in_worker, Status.PAUSED)
    ada, teacher = RunAccess.of(scheduler, ADA), RunAccess.of(scheduler, TEACHER)
    assert ada.requested_by(run.id, "pause") is None and not ada.paused_by_teacher(run)
    teacher.pause(run.id)  # Already paused by Ada: the teacher now holds the pause.
    assert ada.requested_by(run.id, "pause") == "teacher" and ada.paused_by_teacher(store.get_run(run.id))
    with pytest.raises(
        AccessError, match=f"Your teacher paused run {run.id}; only your teacher can resume it"
    ):
        ada.resume(run.id)
    assert store.pending_control(run.id) is None
    teacher.resume(run.id)
    assert store.pending_control(run.id) == "resume" and ada.requested_by(run.id, "resume") == "teacher"


def test_a_run_the_teacher_stopped_is_continued_by_the_teacher_only_and_its_student_may_fork_it(
    scheduler: Scheduler,
) -> None:
    store = scheduler.store
    run = _run(store, "ada", trained=True)
    stopped = make_run(store, spec=SPEC, epochs=3, owner="ada", status=Status.STARTING)
    store.set_status(stopped.id, Status.RUNNING)
    store.save_checkpoint(stopped.id, "latest", 1, lambda path: path.write_bytes(b"weights"))
    store.save_checkpoint(stopped.id, 1, 1, lambda path: path.write_bytes(b"weights"))
    store.request_control(stopped.id, "stop", by="teacher")
    store.set_status(stopped.id, Status.STOPPED, reason="Stopped by the user after 1 epoch(s).")
    ada, teacher = RunAccess.of(scheduler, ADA), RunAccess.of(scheduler, TEACHER)
    assert ada.stopped_by_teacher(store.get_run(stopped.id)) and not ada.stopped_by_teacher(run)
    with pytest.raises(
        AccessError, match=f"Your teacher stopped run {stopped.id}; only your teacher can continue it"
    ):
        ada.continue_run(stopped.id, 2)
    assert store.get_run(stopped.id).status == Status.STOPPED
    fork = ada.fork(stopped.id, 1)  # A new run of hers, within the class limits.
    assert fork.owner == "ada" and fork.status == Status.QUEUED
    assert teacher.continue_run(stopped.id, 2).status == Status.QUEUED


def test_a_students_own_pause_and_stop_are_not_the_teachers(
    scheduler: Scheduler, stand_in_worker: int
) -> None:
    store = scheduler.store
    run = _live(store, _run(store, "ada"), stand_in_worker, Status.PAUSED)
    ada, teacher = RunAccess.of(scheduler, ADA), RunAccess.of(scheduler, TEACHER)
    ada.resume(run.id)  # She paused it herself (nobody asked): she resumes it.
    assert store.pending_control(run.id) == "resume" and ada.requested_by(run.id, "resume") is None
    queued = _run(store, "bob")
    teacher.stop(queued.id)
    assert store.get_run(queued.id).status == Status.STOPPED
    assert RunAccess.of(scheduler, BOB).requested_by(queued.id, "stop") == "teacher"
    own = _run(store, "lee")
    teacher.stop(own.id)  # The teacher's own run: not "stopped by your teacher".
    assert teacher.requested_by(own.id, "stop") is None


def test_new_runs_belong_to_the_user_and_the_local_users_forks_keep_their_owner(
    scheduler: Scheduler,
) -> None:
    store = scheduler.store
    submitted = RunAccess.of(scheduler, ADA).submit(
        RunRequest(
            spec=SPEC, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings(epochs=2)
        )
    )
    assert submitted.owner == "ada"
    parent = _run(store, "cli", trained=True)
    assert (
        RunAccess.of(scheduler, LOCAL_USER).fork(parent.id, 1, specs.TrainingSettings(epochs=2)).owner
        == "cli"
    )
    assert (
        RunAccess.of(scheduler, TEACHER).fork(parent.id, 1, specs.TrainingSettings(epochs=2)).owner == "lee"
    )


def _submit(access: RunAccess, *, epochs: int = 2, **data: object) -> RunRecord:
    return access.submit(
        RunRequest(
            spec=SPEC,
            data_settings=specs.DataSettings(**data),
            training_settings=specs.TrainingSettings(epochs=epochs),
        )
    )


def test_a_students_runs_over_the_class_budget_are_refused_with_the_limit_named(
    scheduler: Scheduler,
) -> None:
    limits = Limits(max_queued_per_student=2, max_epochs=5, max_parameters=1000, max_training_images=1000)
    ada = RunAccess.of(scheduler, ADA, limits)
    too_big = SPEC.replace_layers([SPEC.layers[0], specs.LayerSpec("Dense", {"units": 100})])
    refusals = {
        "max_epochs": lambda: _submit(ada, epochs=6),
        "max_parameters": lambda: ada.submit(
            RunRequest(
                spec=too_big,
                data_settings=specs.DataSettings(),
                training_settings=specs.TrainingSettings(epochs=1),
            )
        ),
        "max_training_images": lambda: _submit(ada),  # digits: about 1,257 of its 1,797 images train
    }
    received = {
        "max_epochs": "is 6,",
        "max_parameters": f"is {shapes.analyse(too_big).total_parameters:,},",
        "max_training_images": "is 1,257,",
    }
    for key, attempt in refusals.items():
        with pytest.raises(BudgetError, match=key) as refused:
            attempt()
        assert received[key] in str(refused.value)
    assert scheduler.store.list_runs(owner="ada") == []
    _submit(ada, subset=1000)  # 700 training images: within the budget.
    _submit(ada, subset=1000)
    with pytest.raises(BudgetError, match=r"already have 2 run\(s\) waiting.*max_queued_per_student"):
        _submit(ada, subset=1000)
    teacher = RunAccess.of(scheduler, TEACHER, limits)
    assert _submit(teacher, epochs=50).owner == "lee"  # Teachers are not limited.
    assert _submit(RunAccess.of(scheduler, LOCAL_USER, limits), epochs=50).owner == "local"


def test_a_continue_past_the_epoch_budget_is_refused(scheduler: Scheduler) -> None:
    trained = _run(scheduler.store, "ada", epochs=1, trained=True)
    ada = RunAccess.of(scheduler, ADA, Limits(max_epochs=3))
    with pytest.raises(BudgetError, match="The number of epochs is 4,"):
        ada.continue_run(trained.id, 3)
    assert ada.continue_run(trained.id, 2).status == Status.QUEUED


def test_limits_read_from_the_classroom_table() -> None:
    assert Limits.from_mapping({}) == Limits()
    assert Limits.from_mapping({"max_epochs": 5, "max_parameters": "none"}) == Limits(
        max_epochs=5, max_parameters=None
    )
    with pytest.raises(BudgetError, match=r"unknown key.*'max_epoch'"):
        Limits.from_mapping({"max_epoch": 5})
    with pytest.raises(BudgetError, match=r"max_epochs must be a whole number of at least 1.*got 0"):
        Limits.from_mapping({"max_epochs": 0})
