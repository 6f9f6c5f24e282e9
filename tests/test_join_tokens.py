"""Joining with a class code, and the signed identity a browser keeps: forged, edited or old ones are refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cnnlab.classroom import join_tokens
from cnnlab.classroom.settings import ClassroomSettings
from cnnlab.classroom.users import Role, User
from cnnlab.errors import SignInError

SECRET = "0123456789abcdef-the-class-secret"
CLASS = ClassroomSettings(
    source=Path("classroom.toml"),
    class_code="conv-class-7",
    teacher_password="pool-and-stride",
    secret=SECRET,
)


def test_a_student_joins_with_the_class_code() -> None:
    user = join_tokens.join(CLASS, Role.STUDENT, "  Ada   Lovelace ", " conv-class-7 ")
    assert user == User(id="student:ada lovelace", name="Ada Lovelace", role=Role.STUDENT)
    assert join_tokens.join(CLASS, Role.STUDENT, "ADA LOVELACE", "conv-class-7").id == user.id


def test_a_teacher_joins_with_the_teacher_password_only() -> None:
    teacher = join_tokens.join(CLASS, Role.TEACHER, "Ms Turing", "pool-and-stride")
    assert teacher.role == Role.TEACHER and teacher.is_teacher
    with pytest.raises(SignInError, match="teacher password is not right"):
        join_tokens.join(CLASS, Role.TEACHER, "Ms Turing", "conv-class-7")
    with pytest.raises(SignInError, match="class code is not right"):
        join_tokens.join(CLASS, Role.STUDENT, "Ada", "pool-and-stride")
    without_password = ClassroomSettings(source=Path("c.toml"), class_code="conv-class-7", secret=SECRET)
    with pytest.raises(SignInError, match="no teacher password"):
        join_tokens.join(without_password, Role.TEACHER, "Ms Turing", "anything")
    with pytest.raises(SignInError, match="student or a teacher"):
        join_tokens.join(CLASS, Role.LOCAL, "Ms Turing", "pool-and-stride")


@pytest.mark.parametrize("name", ["", "   ", "teacher:bob", "x" * 41, "<script>"])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(SignInError):
        join_tokens.join(CLASS, Role.STUDENT, name, "conv-class-7")


def test_ids_do_not_collide_across_names_or_roles() -> None:
    names = ["Ada", "Ada L", "Ada-L", "Ada_L", "ada.l", "Zoë", "Zoe", "Ada Lovelace"]
    students = {join_tokens.join(CLASS, Role.STUDENT, name, "conv-class-7").id for name in names}
    assert len(students) == len(names)
    teacher = join_tokens.join(CLASS, Role.TEACHER, "Ada", "pool-and-stride")
    assert teacher.id not in students
    assert all(not user_id.startswith("oidc:") for user_id in [*students, teacher.id])


def test_a_signed_identity_comes_back() -> None:
    user = join_tokens.join(CLASS, Role.STUDENT, "Ada Lovelace", "conv-class-7")
    token = join_tokens.sign(user, SECRET)
    assert join_tokens.verify(token, SECRET) == user
    assert all(character.isalnum() or character in "-_." for character in token)


def _edited(token: str, **changes: object) -> str:
    """The token with its payload changed and its signature kept."""
    payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{encoded}.{signature}"


def test_an_edited_identity_is_refused() -> None:
    token = join_tokens.sign(User(id="student:ada", name="Ada", role=Role.STUDENT), SECRET)
    for edited in [
        _edited(token, role="teacher", id="teacher:ada"),
        _edited(token, name="Grace", id="student:grace"),
        _edited(token, iat=9_999_999_999),
    ]:
        with pytest.raises(SignInError, match="signature does not match"):
            join_tokens.verify(edited, SECRET)


def test_a_forged_identity_is_refused() -> None:
    teacher = User(id="teacher:mallory", name="Mallory", role=Role.TEACHER)
    with pytest.raises(SignInError, match="signature does not match"):
        join_tokens.verify(join_tokens.sign(teacher, "a-guessed-secret-of-mallory"), SECRET)
    for garbage in ["", "abc", "abc.", ".abc", "a.b.c", join_tokens.sign(teacher, SECRET)[:-2]]:
        with pytest.raises(SignInError):
            join_tokens.verify(garbage, SECRET)


def test_a_signed_identity_whose_id_does_not_match_its_name_is_refused() -> None:
    """Even signed with the secret (by an older or buggy server), an id that is not the name's is refused."""
    forged = User(id="teacher:ms turing", name="Ada", role=Role.STUDENT)
    with pytest.raises(SignInError, match="names 'teacher:ms turing'"):
        join_tokens.verify(join_tokens.sign(forged, SECRET), SECRET)


def test_an_old_or_future_identity_is_refused() -> None:
    user = User(id="student:ada", name="Ada", role=Role.STUDENT)
    issued = 1_800_000_000.0
    token = join_tokens.sign(user, SECRET, issued_at=issued)
    assert join_tokens.verify(token, SECRET, now=issued + join_tokens.TOKEN_LIFETIME_SECONDS - 1) == user
    with pytest.raises(SignInError, match="12 hours old"):
        join_tokens.verify(token, SECRET, now=issued + join_tokens.TOKEN_LIFETIME_SECONDS + 1)
    with pytest.raises(SignInError, match="future"):
        join_tokens.verify(token, SECRET, now=issued - 3600)
