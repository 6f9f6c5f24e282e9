"""The classroom file: where it is found, what it holds, and the messages of a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.classroom.limits import Limits
from cnnlab.classroom.settings import NO_CLASSROOM, ClassroomSettings, TeacherClaim, load_settings
from cnnlab.errors import ClassroomError

SECRET = "0123456789abcdef-secret"
FULL_FILE = f"""
teachers = ["Ms.Turing@School.example", "hopper@school.example"]
teacher_claim = {{ role = "teacher" }}
class_code = " conv-class-7 "
teacher_password = "pool-and-stride"
secret = "{SECRET}"
session_hours = 1.5

[limits]
max_epochs = 5
max_queued_per_student = "none"
"""


def test_no_file_means_no_classroom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    settings = load_settings(tmp_path)
    assert settings == NO_CLASSROOM
    assert not settings.is_classroom and not settings.join_code_enabled
    assert settings.limits == Limits.unlimited()


def test_a_full_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (tmp_path / "classroom.toml").write_text(FULL_FILE)
    settings = load_settings(tmp_path)
    assert settings == ClassroomSettings(
        source=tmp_path / "classroom.toml",
        teachers=frozenset({"ms.turing@school.example", "hopper@school.example"}),
        teacher_claim=TeacherClaim(name="role", value="teacher"),
        class_code="conv-class-7",
        teacher_password="pool-and-stride",
        secret=SECRET,
        session_hours=1.5,
        limits=Limits.from_mapping({"max_epochs": 5, "max_queued_per_student": "none"}),
    )
    assert settings.limits.max_epochs == 5 and settings.limits.max_queued_per_student is None
    assert settings.is_classroom and settings.join_code_enabled


def test_a_file_without_limits_gets_the_class_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (tmp_path / "classroom.toml").write_text('teachers = ["a@b.example"]\n')
    settings = load_settings(tmp_path)
    assert settings.limits == Limits()
    assert settings.is_classroom and not settings.join_code_enabled


def test_the_environment_names_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(FULL_FILE)
    (tmp_path / "classroom.toml").write_text("this is not read = at all [")
    monkeypatch.setenv("CNNLAB_CLASSROOM", str(elsewhere))
    assert load_settings(tmp_path).source == elsewhere
    monkeypatch.setenv("CNNLAB_CLASSROOM", str(tmp_path / "missing.toml"))
    with pytest.raises(ClassroomError, match=r"missing\.toml.*does not exist"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('teachers = "ada@school.example"', ["teachers", "'ada@school.example'"]),
        ('teachers = ["not-an-address"]', ["teachers", "'not-an-address'"]),
        ("class_code = 42\nsecret = '0123456789abcdef'", ["class_code = 42"]),
        ('class_code = "   "\nsecret = "0123456789abcdef"', ["class_code = '   '"]),
        ('class_code = "abc"', ["'secret'"]),
        ('class_code = "abc"\nsecret = "short"', ["'secret'", "5 characters"]),
        ('class_code = "same"\nteacher_password = "same"\nsecret = "0123456789abcdef"', ["teacher_password"]),
        ('teacher_claim = { role = "teacher", group = "staff" }', ["teacher_claim", "'group': 'staff'"]),
        ('teacher_claim = "teacher"', ["teacher_claim = 'teacher'"]),
        ('clas_code = "abc"', ["'clas_code'"]),
        ("limits = 3", ["limits = 3"]),
        ("session_hours = 0", ["session_hours = 0"]),
        ('session_hours = "2"', ["session_hours = '2'"]),
        ("session_hours = 48", ["session_hours = 48", "at most 24"]),
        ("[limits]\nmax_epochs = -1", ["max_epochs", "-1"]),
        ("[limits]\nmax_epoch = 3", ["'max_epoch'"]),
        ("class_code = ", ["cannot be read as TOML"]),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_key_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: list[str]
) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    path = tmp_path / "classroom.toml"
    path.write_text(text + "\n")
    with pytest.raises(ClassroomError) as refused:
        load_settings(tmp_path)
    message = str(refused.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_a_secret_is_never_repeated_in_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_CLASSROOM", raising=False)
    (tmp_path / "classroom.toml").write_text('class_code = "abc"\nsecret = "hunter2"\n')
    with pytest.raises(ClassroomError) as refused:
        load_settings(tmp_path)
    assert "hunter2" not in str(refused.value)


def test_teachers_are_named_by_verified_e_mail_or_claim() -> None:
    settings = ClassroomSettings(
        source=Path("classroom.toml"),
        teachers=frozenset({"ms.turing@school.example"}),
        teacher_claim=TeacherClaim(name="groups", value="staff"),
    )
    assert settings.is_teacher(" MS.Turing@School.example ", {"email_verified": True})
    # An e-mail the provider did not verify (or did not say) makes nobody a teacher.
    assert not settings.is_teacher("ms.turing@school.example", {"email_verified": False})
    assert not settings.is_teacher("ms.turing@school.example", {})
    assert settings.is_teacher(None, {"groups": ["pupils", "staff"]})
    assert settings.is_teacher("x@school.example", {"groups": "staff"})
    assert not settings.is_teacher("ada@school.example", {"groups": ["pupils"]})
    assert not settings.is_teacher(None, {})
    assert not NO_CLASSROOM.is_teacher("ms.turing@school.example", {"role": "teacher"})
