"""The CLI acting as a user (`python -m cnnlab --as OWNER [--role ROLE] ...`): a student lists, stops, reads
and trains only as they may in the browser; without `--as` the local user does everything, as before."""

from __future__ import annotations

import os

import pytest
from made_runs import make_run

from cnnlab import specs
from cnnlab.classroom import joining
from cnnlab.classroom.settings import ClassroomSettings
from cnnlab.classroom.users import Role
from cnnlab.cli import main as cli
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

CLASS = ClassroomSettings(source=None, class_code="conv-class-7", secret="0123456789abcdef-the-class-secret")
SPEC = specs.ModelSpec.from_dict(
    {
        "name": "tiny",
        "input_shape": [8, 8, 1],
        "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 10}],
    }
)


def _run(store: Store, owner: str, name: str) -> RunRecord:
    return make_run(store, spec=SPEC, epochs=1, owner=owner, name=name)


def _listed(capsys: pytest.CaptureFixture[str], *arguments: str) -> set[str]:
    assert cli.main([*arguments, "runs"]) == 0
    return {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}


def test_a_student_lists_only_their_runs_the_local_user_and_a_teacher_all(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ada, bob = _run(store, "student:ada", "ada's"), _run(store, "student:bob", "bob's")
    assert _listed(capsys, "--as", "student:bob") == {bob.id}
    assert _listed(capsys, "--as", "student:bob", "--role", "student") == {bob.id}
    assert _listed(capsys, "--as", "teacher:lee") == {ada.id, bob.id}
    assert _listed(capsys, "--as", "lee", "--role", "teacher") == {ada.id, bob.id}
    assert _listed(capsys) == {ada.id, bob.id}


@pytest.mark.parametrize("command", [["stop"], ["evaluate"], ["predict", "image.png"]])
def test_a_student_cannot_stop_or_read_another_students_run(
    store: Store, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    ada = _run(store, "student:ada", "ada's")
    assert cli.main(["--as", "student:bob", command[0], ada.id, *command[1:]]) == 2
    error = capsys.readouterr().err
    assert f"Run {ada.id!r} is not one you can open" in error and "ada's" not in error
    assert cli.main(["--as", "student:bob", command[0], "z" * len(ada.id), *command[1:]]) == 2
    assert capsys.readouterr().err.replace("z" * len(ada.id), ada.id) == error  # Missing reads the same.
    assert store.get_run(ada.id).status == Status.QUEUED


def test_a_teacher_and_the_owner_stop_a_run(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    ada_first, ada_second = _run(store, "student:ada", "first"), _run(store, "student:ada", "second")
    assert cli.main(["--as", "teacher:lee", "stop", ada_first.id]) == 0
    assert cli.main(["--as", "student:ada", "stop", ada_second.id]) == 0
    assert {store.get_run(run.id).status for run in (ada_first, ada_second)} == {Status.STOPPED}


def test_a_students_training_over_the_class_budget_is_refused(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    (store.home / "classroom.toml").write_text("[limits]\nmax_epochs = 3\n", encoding="utf-8")
    assert cli.main(["--as", "student:ada", "train", "digits_default", "--epochs", "4"]) == 2
    error = capsys.readouterr().err
    assert "The number of epochs is 4, above this class's limit of 3 (max_epochs" in error
    assert store.list_runs() == []


def test_a_student_resuming_a_search_is_held_to_the_class_budget(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    (store.home / "classroom.toml").write_text("[limits]\nmax_queued_per_student = 2\n", encoding="utf-8")
    search = ["--learning-rate", "1e-4..1e-2:log", "--trials", "2", "--parallel", "2", "--name", "ada's"]
    assert cli.main(["--as", "student:ada", "sweep", "digits_default", *search]) == 0
    assert len(store.list_runs(status=Status.QUEUED, owner="student:ada")) == 2
    capsys.readouterr()
    assert cli.main(["--as", "student:ada", "sweep", "--resume", "ada's", "--trials", "+4"]) == 2
    error = capsys.readouterr().err
    assert "cannot try 4 more settings: You already have 2 run(s) waiting in the queue" in error
    assert "allows 2 per student (max_queued_per_student in classroom.toml)" in error
    assert cli.main(["--as", "teacher:lee", "sweep", "--resume", "ada's", "--trials", "+4"]) == 0


def test_a_malformed_acting_user_is_refused(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--as", "student:ada", "--role", "headmaster", "runs"]) == 2
    assert "--role must be one of student, teacher; got 'headmaster'" in capsys.readouterr().err
    assert cli.main(["--role", "teacher", "runs"]) == 2
    assert "--role teacher needs --as OWNER" in capsys.readouterr().err


def test_only_the_operator_who_owns_the_home_may_act_as_someone(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = _run(store, "user:ada", "ada's")
    assert _listed(capsys, "--as", "user:ada") == {ada.id}  # This account owns CNNLAB_HOME: the operator.
    if os.geteuid() != 0:
        pytest.skip("handing the folder to another account needs root")
    os.chown(store.home, 4242, -1)  # Another account's server: this one is not its operator.
    try:
        assert cli.main(["--as", "user:ada", "stop", ada.id]) == 2
        error = capsys.readouterr().err
        assert "--as acts as another user and is not a sign-in, so only the server's operator" in error
        assert f"owns {store.home}, uid 4242" in error
        assert store.get_run(ada.id).status == Status.QUEUED
    finally:
        os.chown(store.home, os.geteuid(), -1)


def test_the_help_says_as_is_not_a_sign_in(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "This acts as a user; it is not a sign-in: only the server's operator" in help_text


def test_people_lists_the_ids_that_as_takes(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    ada = joining.join(store.people, CLASS, Role.STUDENT, "Ada Lovelace", "conv-class-7", "2468", 0.0)
    assert cli.main(["people"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["ID", "ROLE"]
    assert row.split()[:2] == [ada.id, "student"] and row.endswith("class code      Ada Lovelace")
    mine = _run(store, ada.id, "ada's")
    assert _listed(capsys, "--as", ada.id) == {mine.id}
