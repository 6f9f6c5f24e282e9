"""Joining a class with a name and a PIN: names that cannot be borrowed, look-alikes that collide, OpenID users."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.classroom import joining, roster
from cnnlab.classroom.settings import ClassroomSettings, TeacherClaim
from cnnlab.classroom.users import Role
from cnnlab.errors import SignInError
from cnnlab.store.people import PeopleTable, name_key
from cnnlab.store.run_store import Store
from tests.made_runs import make_run

CODE, PASSWORD = "conv-class-7", "pool-and-stride"
CLASS = ClassroomSettings(
    source=Path("classroom.toml"),
    class_code=CODE,
    teacher_password=PASSWORD,
    secret="0123456789abcdef-the-class-secret",
    teachers=frozenset({"ms.turing@school.example"}),
    teacher_claim=TeacherClaim("role", "teacher"),
)
NOW = 1_800_000_000.0


@pytest.fixture
def people(tmp_path: Path) -> PeopleTable:
    return Store(tmp_path).people


def _student(people: PeopleTable, name: str, pin: str = "4711", now: float = NOW) -> str:
    return joining.join(people, CLASS, Role.STUDENT, name, CODE, pin, now).id


@pytest.mark.parametrize(
    "look_alike",
    [
        "ALAN",
        "alan",
        "Ａｌａｎ",
        "  Alan ",
        "ＡＬＡＮ",
        "\u0410lan",  # Cyrillic А
        "\u0410l\u0430n",  # Cyrillic А and а
        "\u0391LAN",  # Greek Α
        "\u0391LA\u039d",  # Greek Α and Ν
        "A1an",  # the digit one for the letter l
        "AIan",  # a capital I for the letter l
    ],
)
def test_look_alike_names_are_one_name(look_alike: str) -> None:
    assert name_key(look_alike) == name_key("Alan")
    assert name_key("Ａｄａ Ｌｏｖｅｌａｃｅ") == name_key("ada  lovelace")
    assert name_key("Alan") != name_key("Alana")


@pytest.mark.parametrize(
    ("name", "look_alike"),
    [("Ada", "\u0410da"), ("Paul", "\u03a1aul"), ("Sam", "\u0405am"), ("Bob", "B0b"), ("Vera", "\u03bdera")],
)
def test_a_look_alike_of_another_script_is_refused_as_taken(
    people: PeopleTable, name: str, look_alike: str
) -> None:
    _student(people, name)
    with pytest.raises(SignInError, match="already taken"):
        _student(people, look_alike, pin="9999")


@pytest.mark.parametrize(
    ("name", "other"), [("Ada", "Ida"), ("Nina", "Viva"), ("Arnie", "Amie"), ("Zoe", "Zoë")]
)
def test_names_that_only_resemble_each_other_stay_two(name: str, other: str) -> None:
    assert name_key(name) != name_key(other)


def test_each_join_makes_its_own_user_with_a_random_id(people: PeopleTable) -> None:
    ada, grace = _student(people, "Ada"), _student(people, "Grace")
    assert ada != grace and ada.startswith("user:") and "ada" not in ada
    assert people.display_names() == {ada: "Ada", grace: "Grace"}
    assert people.user(ada) is not None and "4711" not in str(people.user(ada))  # Only a hash is kept.


@pytest.mark.parametrize("impostor_name", ["Alan", "ALAN", "Ａｌａｎ"])
def test_a_taken_name_lets_in_only_its_pin(people: PeopleTable, impostor_name: str) -> None:
    alan = _student(people, "Alan", pin="1234")
    with pytest.raises(SignInError, match="'Alan' is already taken"):
        _student(people, impostor_name, pin="9999")
    assert _student(people, impostor_name, pin="1234") == alan  # Alan himself, on another device.
    with pytest.raises(SignInError, match="already taken"):
        joining.join(people, CLASS, Role.TEACHER, impostor_name, PASSWORD, "1234", NOW)


def test_wrong_pins_lock_the_name_for_a_while(people: PeopleTable) -> None:
    alan = _student(people, "Alan", pin="1234")
    for _ in range(joining.MAXIMUM_WRONG_PINS):
        with pytest.raises(SignInError, match="already taken"):
            _student(people, "Alan", pin="0000")
    with pytest.raises(SignInError, match="Too many wrong PINs"):
        _student(people, "Alan", pin="1234")
    assert _student(people, "Alan", pin="1234", now=NOW + joining.LOCK_SECONDS + 1) == alan


@pytest.mark.parametrize("pin", ["", "123", "12ab", "1234567890123", "١٢٣٤"])
def test_a_pin_is_four_to_twelve_digits(people: PeopleTable, pin: str) -> None:
    with pytest.raises(SignInError, match="PIN must be 4 to 12 digits"):
        _student(people, "Ada", pin=pin)


def test_wrong_code_and_bad_names_are_refused(people: PeopleTable) -> None:
    with pytest.raises(SignInError, match="class code is not right"):
        joining.join(people, CLASS, Role.STUDENT, "Ada", PASSWORD, "1234", NOW)
    with pytest.raises(SignInError, match="teacher password is not right"):
        joining.join(people, CLASS, Role.TEACHER, "Ada", CODE, "1234", NOW)
    for name in ["", "teacher:bob", "x" * 41, "<script>"]:
        with pytest.raises(SignInError):
            _student(people, name)
    assert people.users() == []


def test_the_teacher_renames_merges_and_removes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    people = store.people
    ada, ada_again, grace = _student(people, "Ada"), _student(people, "Ada L"), _student(people, "Grace")
    make_run(store, owner=ada_again, name="second account")
    assert roster.rename(people, grace, " Grace  Hopper ") == "Grace Hopper"
    with pytest.raises(SignInError, match="already taken"):
        roster.rename(people, grace, "ＡＤＡ")
    assert roster.merge(people, ada_again, ada) == 1
    assert [run.owner for run in store.list_runs()] == [ada]
    assert _student(people, "Ada L", pin="2222") not in (ada, ada_again)  # The merged name is free again.
    roster.remove(people, grace)
    assert _student(people, "Grace Hopper", pin="3333") != grace
    roster.clear_pin(people, ada)
    assert _student(people, "Ada", pin="5555") == ada  # The next join chooses Ada's new PIN.


def test_openid_users_are_known_by_issuer_and_subject(people: PeopleTable) -> None:
    claims = {"iss": "https://id.school", "sub": "42", "email": "ada@school.example", "name": "Ada"}
    ada = joining.openid_user(people, CLASS, claims)
    assert ada.role == Role.STUDENT and ada.id.startswith("user:")
    # Same subject, new e-mail and name: the same user. Another subject with Ada's e-mail: someone else.
    assert joining.openid_user(people, CLASS, {**claims, "email": "a@x.org", "name": "Ada L"}).id == ada.id
    assert joining.openid_user(people, CLASS, {**claims, "sub": "43"}).id != ada.id
    assert joining.openid_user(people, CLASS, {**claims, "iss": "https://other.idp"}).id != ada.id


def test_a_teacher_email_counts_only_when_verified(people: PeopleTable) -> None:
    teacher = {"iss": "i", "sub": "t", "email": "MS.Turing@school.example"}
    assert joining.openid_user(people, CLASS, teacher).role == Role.STUDENT
    assert joining.openid_user(people, CLASS, {**teacher, "email_verified": False}).role == Role.STUDENT
    assert joining.openid_user(people, CLASS, {**teacher, "email_verified": True}).role == Role.TEACHER
    assert (
        joining.openid_user(people, CLASS, {"iss": "i", "sub": "h", "role": "teacher"}).role == Role.TEACHER
    )
