"""Exercises: the link round trip, locked fields enforced, and damaged, forged or oversized links refused."""

from __future__ import annotations

import base64
import dataclasses
import json
import stat
import zlib
from pathlib import Path
from typing import Any

import pytest
from made_runs import make_run, reached

from cnnlab import share
from cnnlab.classroom import exercises
from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.exercises import Exercise
from cnnlab.classroom.limits import Limits
from cnnlab.classroom.users import Role, User
from cnnlab.errors import BudgetError, SpecError
from cnnlab.model import presets
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.specs import AugmentationSettings, DataSettings, TrainingSettings
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

KEY = b"k" * 32


def teacher_setup() -> share.Setup:
    preset = presets.get(presets.DEFAULT_PRESET)
    return share.Setup(
        DataSettings(dataset="digits", subset=600, seed=3),
        preset.spec,
        TrainingSettings(**{**preset.training, "epochs": 2, "learning_rate": 0.003, "batch_size": 64}),
    )


def student_setup() -> share.Setup:
    """A setup that differs from the teacher's in every field a control sets."""
    other = presets.get("mnist_minimal")
    return share.Setup(
        DataSettings(
            dataset="shapes",
            image_size=20,
            color_mode="rgb",
            subset=300,
            validation_fraction=0.3,
            test_fraction=0.25,
            seed=9,
            options={"noise": 0.2},
        ),
        other.spec,
        TrainingSettings(
            optimizer="sgd",
            learning_rate=0.5,
            momentum=0.5,
            nesterov=True,
            weight_decay=0.2,
            schedule="step",
            schedule_step_epochs=7,
            schedule_decay_rate=0.3,
            plateau_factor=0.7,
            plateau_patience=9,
            batch_size=8,
            epochs=50,
            l2=0.01,
            early_stopping=True,
            early_stopping_monitor="loss",
            early_stopping_patience=11,
            restore_best_weights=False,
            seed=123,
            augmentation=AugmentationSettings(rotation=0.3),
        ),
    )


def value(setup: share.Setup, section: str, field: str) -> object:
    return setup.model if section == "model" else getattr(getattr(setup, section), field)


def test_the_student_setup_differs_in_every_controlled_field() -> None:
    """The oracle of the enforce tests: otherwise an unenforced field could look enforced."""
    for control in exercises.CONTROLS.values():
        for section, field in control.fields:
            assert value(teacher_setup(), section, field) != value(student_setup(), section, field), field


def test_a_link_round_trips() -> None:
    exercise = Exercise("Week 3: deeper", teacher_setup(), frozenset({"epochs"}), frozenset({"optimizer"}))
    token = exercises.encode(exercise, KEY)
    assert exercises.decode(token, KEY) == exercise
    assert len(token) < 4000  # A link a teacher can paste into a chat.


@pytest.mark.parametrize("name", list(exercises.CONTROLS))
def test_enforce_sets_exactly_the_fixed_controls_fields(name: str) -> None:
    exercise = Exercise("one control", teacher_setup(), frozenset({name}))
    enforced = exercises.enforce(exercise, student_setup())
    fixed = set(exercises.CONTROLS[name].fields)
    for control in exercises.CONTROLS.values():
        for section, field in control.fields:
            source = teacher_setup() if (section, field) in fixed else student_setup()
            assert value(enforced, section, field) == value(source, section, field), (name, field)


def test_hidden_controls_are_enforced_like_locked_ones_and_hidden_wins() -> None:
    exercise = Exercise("hide", teacher_setup(), frozenset({"epochs", "batch_size"}), frozenset({"epochs"}))
    assert exercise.locked == {"batch_size"} and exercise.hidden == {"epochs"}
    enforced = exercises.enforce(exercise, student_setup())
    assert (enforced.training.epochs, enforced.training.batch_size) == (2, 64)
    assert enforced.training.learning_rate == student_setup().training.learning_rate


def test_fixing_the_model_locks_the_data_it_was_built_for() -> None:
    exercise = exercises.create("model", teacher_setup(), hidden=["model_layers"])
    assert exercise.hidden == {"model_layers"}
    assert exercise.locked == {"dataset", "image_size"}
    assert exercises.create("free", teacher_setup(), locked=["epochs"]).locked == {"epochs"}


@pytest.mark.parametrize(
    ("name", "locked", "message"),
    [("", (), "needs a name"), ("x" * 81, (), "needs a name"), ("ok", ("warp_speed",), "warp_speed")],
)
def test_a_bad_exercise_is_refused(name: str, locked: tuple[str, ...], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        exercises.create(name, teacher_setup(), locked=locked)


def test_an_edited_link_is_refused() -> None:
    """A student who unpacks the link, unlocks a control and packs it again keeps the old signature."""
    token = exercises.encode(Exercise("locked", teacher_setup(), frozenset({"epochs"})), KEY)
    body, signature = token.split(".")
    content = share.payload(body)
    content["locked"] = []
    with pytest.raises(SpecError, match="was changed after the teacher made it"):
        exercises.decode(f"{share.pack(content)}.{signature}", KEY)
    with pytest.raises(SpecError, match="was changed after the teacher made it"):
        exercises.decode(token, b"another server's key")


@pytest.mark.parametrize(
    ("token", "message"), [("", "no signature"), ("abc", "no signature"), (".sig", "no signature")]
)
def test_a_damaged_link_is_refused(token: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        exercises.decode(token, KEY)


def signed(content: dict[str, Any]) -> str:
    body = share.pack(content)
    return f"{body}.{exercises._signature(body, KEY)}"


def test_a_signed_link_with_a_broken_exercise_is_refused_clearly() -> None:
    """Even correctly signed (say, by an older version), a malformed exercise is a clear error."""
    good = {"name": "n", "setup": share.to_payload(teacher_setup()), "locked": [], "hidden": []}
    with pytest.raises(SpecError, match="has no 'hidden' part"):
        exercises.decode(signed({key: item for key, item in good.items() if key != "hidden"}), KEY)
    with pytest.raises(SpecError, match="lists of names"):
        exercises.decode(signed({**good, "locked": "epochs"}), KEY)
    with pytest.raises(SpecError, match="cannot be used"):
        exercises.decode(signed({**good, "setup": {"data": {}}}), KEY)
    assert exercises.decode(signed(good), KEY).name == "n"


def test_an_oversized_link_is_refused() -> None:
    with pytest.raises(SpecError, match="longer than any exercise"):
        exercises.decode("A" * (exercises.MAX_TOKEN_CHARACTERS + 1), KEY)
    # A small token that unpacks to more than a megabyte (a compression bomb), even correctly signed.
    bomb = zlib.compress(json.dumps({"name": "x" * (share.MAX_SETUP_BYTES + 10)}).encode(), level=9)
    body = base64.urlsafe_b64encode(bomb).decode().rstrip("=")
    token = f"{body}.{exercises._signature(body, KEY)}"
    assert len(token) < exercises.MAX_TOKEN_CHARACTERS
    with pytest.raises(SpecError, match="unpacks to more than"):
        exercises.decode(token, KEY)


def test_the_signing_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = exercises.signing_key(home)
    assert len(key) == 32 and exercises.signing_key(home) == key
    assert stat.S_IMODE((home / exercises.KEY_FILE).stat().st_mode) == 0o600
    assert [path.name for path in home.iterdir()] == [exercises.KEY_FILE]  # No draft left behind.
    assert exercises.signing_key(tmp_path / "other") != key


def test_enforce_keeps_a_setup_that_already_follows_the_exercise() -> None:
    exercise = Exercise("all", teacher_setup(), frozenset(exercises.CONTROLS))
    assert exercises.enforce(exercise, student_setup()) == teacher_setup()
    changed = dataclasses.replace(teacher_setup(), training=student_setup().training)
    assert exercises.enforce(Exercise("none", teacher_setup()), changed) == changed


def test_the_control_fixing_a_setting_is_found_for_sweeps() -> None:
    exercise = exercises.create("Week 3", teacher_setup(), locked=["epochs"], hidden=["learning_rate"])
    assert exercises.fixing_control(exercise, "training", "epochs") is exercises.CONTROLS["epochs"]
    assert (
        exercises.fixing_control(exercise, "training", "learning_rate") is exercises.CONTROLS["learning_rate"]
    )
    assert exercises.fixing_control(exercise, "training", "batch_size") is None
    assert exercises.fixing_control(exercise, "model", "") is None
    with_model = exercises.create("Week 4", teacher_setup(), locked=["model_layers"])
    assert exercises.fixing_control(with_model, "model", "") is exercises.CONTROLS["model_layers"]


# The exercise tag holds only while a run stays within the settings its exercise fixes.


def exercise_run(store: Store, locked: frozenset[str], *, epochs: int = 4) -> RunRecord:
    """A completed run of exercise "week 3" that trained its `epochs` with a checkpoint of the last."""
    run = make_run(
        store,
        epochs=epochs,
        name="mine",
        owner="student:ada",
        status=Status.QUEUED,
        exercise="week 3",
        exercise_locked=locked,
        exercise_hidden=frozenset({"optimizer"}),
    )
    reached(store, run.id, Status.COMPLETED)
    store.save_checkpoint(run.id, "latest", epochs, lambda path: path.write_bytes(b"weights"))
    for epoch in range(1, epochs + 1):
        store.save_checkpoint(run.id, epoch, epoch, lambda path: path.write_bytes(b"weights"))
    return store.get_run(run.id)


def student_access(store: Store) -> RunAccess:
    """Ada's access to `store`, through a one-slot scheduler whose slot another run holds: what she
    queues stays queued (no worker starts)."""
    make_run(store, owner="student:bo", status=Status.RUNNING)
    student = User("student:ada", "Ada", Role.STUDENT)
    return RunAccess(
        store,
        student,
        Limits(max_queued_per_student=9, max_epochs=100),
        Scheduler(store, warm=False, max_workers=1),
    )


def test_a_run_continued_past_the_locked_epochs_leaves_its_exercise(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = exercise_run(store, frozenset({"epochs"}))
    assert run.exercise_control_names("locked") == {"epochs"}
    assert exercises.leaves_on_continue(run, 4) is None  # Up to the locked epochs it stays.
    continued = student_access(store).continue_run(run.id, 40)
    assert continued.exercise is None and continued.training().epochs == 44
    assert continued.exercise_control_names("hidden") == {"optimizer"}  # Hidden stays hidden.
    messages = list(store.events(run.id)["message"])
    assert "left the exercise 'week 3': continued to 44 epochs, past the 4 the exercise fixes" in messages


def test_a_continue_keeps_the_exercise_when_it_does_not_fix_the_epochs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = exercise_run(store, frozenset({"learning_rate"}))
    assert student_access(store).continue_run(run.id, 3).exercise == "week 3"


def test_a_fork_stays_in_the_exercise_unless_it_changes_a_fixed_setting(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = exercise_run(store, frozenset({"learning_rate", "epochs"}))
    access = student_access(store)
    same = access.fork(run.id, 2, run.training())
    other_batch = access.fork(run.id, 2, dataclasses.replace(run.training(), batch_size=16))
    faster = access.fork(run.id, 2, dataclasses.replace(run.training(), learning_rate=0.1))
    longer = access.fork(run.id, 2, dataclasses.replace(run.training(), epochs=9))
    assert [store.get_run(fork.id).exercise for fork in (same, other_batch, faster, longer)] == [
        "week 3",
        "week 3",
        None,
        None,
    ]
    assert store.get_run(faster.id).exercise_control_names("hidden") == {"optimizer"}
    # Another student's fork of it (shared with the class) starts from Ada's weights: outside the exercise.
    store.set_shared(run.id, True)
    bo = RunAccess(store, User("student:bo", "Bo", Role.STUDENT), access.limits, Scheduler(store, warm=False))
    borrowed = bo.fork(run.id, 2, run.training())
    assert store.get_run(borrowed.id).exercise is None and store.get_run(borrowed.id).owner == "student:bo"
    assert "learning rate and schedule" in " ".join(store.events(faster.id)["message"])


def test_the_builder_refuses_an_exercise_the_class_limits_would_refuse() -> None:
    setup = teacher_setup()
    exercise = exercises.create("Too long", setup, ["epochs"])
    exercises.check_fits(exercise, Limits(max_epochs=2))  # Within the limit: accepted.
    with pytest.raises(
        BudgetError, match=r"Students could not start the exercise 'Too long': .*max_epochs"
    ) as refused:
        exercises.check_fits(exercise, Limits(max_epochs=1))
    assert "The number of epochs is 2, above this class's limit of 1" in str(refused.value)
    with pytest.raises(BudgetError, match="max_parameters"):
        exercises.check_fits(exercise, Limits(max_parameters=1_000))
    with pytest.raises(BudgetError, match="max_training_images"):
        exercises.check_fits(exercise, Limits(max_training_images=100))
    exercises.check_fits(exercise, Limits.unlimited())
