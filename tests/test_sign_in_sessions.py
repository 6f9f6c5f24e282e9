"""Sign-in sessions kept in the store: a cookie's session ends on sign-out, at the lesson's end, when
the class code or secret changes, when its user is removed, and after its lifetime; then it is refused."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from cnnlab.classroom import joining, roster, sign_in_sessions
from cnnlab.classroom.settings import ClassroomSettings, TeacherClaim
from cnnlab.classroom.users import Role, User
from cnnlab.errors import SignInError
from cnnlab.store import database
from cnnlab.store.people import PeopleTable
from cnnlab.store.run_store import Store
from tests.made_runs import make_run

CLASS = ClassroomSettings(
    source=Path("classroom.toml"),
    class_code="conv-class-7",
    teacher_password="pool-and-stride",
    secret="0123456789abcdef-the-class-secret",
)
NOW = 1_800_000_000.0


@pytest.fixture
def people(tmp_path: Path) -> PeopleTable:
    return Store(tmp_path).people


def _joined(people: PeopleTable, name: str, role: Role = Role.STUDENT) -> User:
    word = CLASS.class_code if role == Role.STUDENT else CLASS.teacher_password
    return joining.join(people, CLASS, role, name, word or "", "1234", NOW)


def _cookie(people: PeopleTable, user: User, settings: ClassroomSettings = CLASS) -> tuple[str, str]:
    """A session of `user` and the cookie token its ticket was redeemed for."""
    started = sign_in_sessions.start(people, user, settings, NOW)
    cookie = sign_in_sessions.redeem(people, started.ticket, NOW + 1)
    assert cookie is not None and cookie.max_age == int(settings.session_hours * 3600) - 1
    return started.session_id, cookie.token


def _user_of_cookie(
    people: PeopleTable, token: str, settings: ClassroomSettings = CLASS, now: float = NOW
) -> User:
    return sign_in_sessions.active_user(
        people, sign_in_sessions.session_of_token(people, token), settings, now
    )


def test_a_ticket_is_redeemed_once_and_the_cookie_names_the_user(people: PeopleTable) -> None:
    ada = _joined(people, "Ada")
    started = sign_in_sessions.start(people, ada, CLASS, NOW)
    assert sign_in_sessions.redeem(people, started.ticket, NOW + sign_in_sessions.TICKET_SECONDS + 1) is None
    cookie = sign_in_sessions.redeem(people, started.ticket, NOW)
    assert cookie is not None
    assert sign_in_sessions.redeem(people, started.ticket, NOW) is None  # Used.
    assert _user_of_cookie(people, cookie.token) == ada
    with pytest.raises(SignInError, match="no such session"):
        sign_in_sessions.session_of_token(people, cookie.token[:-2] + "xx")


def test_sign_out_ends_the_session_and_a_replayed_cookie_is_refused(people: PeopleTable) -> None:
    ada = _joined(people, "Ada")
    session_id, token = _cookie(people, ada)
    _, other_token = _cookie(people, ada)  # Ada on a second device.
    sign_in_sessions.sign_out(people, session_id, NOW + 5)
    with pytest.raises(SignInError, match=r"has ended \(you signed out\)"):
        _user_of_cookie(people, token)
    assert _user_of_cookie(people, other_token) == ada


def test_ending_the_lesson_ends_every_student_session_not_the_teachers(people: PeopleTable) -> None:
    students = [_cookie(people, _joined(people, name))[1] for name in ("Ada", "Grace", "Alan")]
    teacher = _joined(people, "Ms Turing", Role.TEACHER)
    _, teacher_token = _cookie(people, teacher)
    assert sign_in_sessions.end_lesson(people, NOW + 60) == 3
    for token in students:
        with pytest.raises(SignInError, match="your teacher ended the lesson"):
            _user_of_cookie(people, token)
    assert _user_of_cookie(people, teacher_token) == teacher


@pytest.mark.parametrize("change", ["class_code", "secret", "teacher_password"])
def test_a_new_class_code_or_secret_ends_the_sessions(people: PeopleTable, change: str) -> None:
    _, token = _cookie(people, _joined(people, "Ada"))
    changed = dataclasses.replace(CLASS, **{change: "a-new-value-of-sixteen-chars-or-more"})
    with pytest.raises(SignInError, match="class code or secret changed"):
        _user_of_cookie(people, token, changed)
    with pytest.raises(SignInError, match="class code or secret changed"):
        _user_of_cookie(people, token)  # Ended for good, even with the old settings back.


def test_a_session_lasts_its_lifetime(people: PeopleTable) -> None:
    lesson = dataclasses.replace(CLASS, session_hours=0.5)
    _, token = _cookie(people, _joined(people, "Ada"), lesson)
    assert _user_of_cookie(people, token, lesson, now=NOW + 1799).name == "Ada"
    with pytest.raises(SignInError, match=r"it lasts 0\.5 hours"):
        _user_of_cookie(people, token, lesson, now=NOW + 1801)


def test_removing_or_renaming_a_user_reaches_their_sessions(people: PeopleTable) -> None:
    ada, grace = _joined(people, "Ada"), _joined(people, "Grace")
    _, ada_token = _cookie(people, ada)
    _, grace_token = _cookie(people, grace)
    roster.rename(people, ada.id, "Ada Lovelace")
    assert _user_of_cookie(people, ada_token).name == "Ada Lovelace"
    roster.remove(people, grace.id)
    with pytest.raises(SignInError, match="no such session"):
        _user_of_cookie(people, grace_token)


def test_a_version_1_store_keeps_its_students_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    make_run(store, owner="student:alan", name="alan's")
    make_run(store, owner="teacher:lee", name="example")
    connection = sqlite3.connect(tmp_path / "runs.sqlite3")
    connection.executescript("DROP TABLE sessions; DROP TABLE users; PRAGMA user_version = 1;")
    connection.close()
    people = Store(tmp_path).people  # Migrates to the current version (users came in version 2).
    assert people.display_names() == {"student:alan": "alan", "teacher:lee": "lee"}
    connection = sqlite3.connect(tmp_path / "runs.sqlite3")
    assert connection.execute("PRAGMA user_version").fetchone()[0] == database.SCHEMA_VERSION
    connection.close()
    # The first to join as Alan (any case, any width) chooses the PIN and gets the runs back.
    alan = joining.join(people, CLASS, Role.STUDENT, "ALAN", "conv-class-7", "8642", NOW)
    assert alan.id == "student:alan"
    with pytest.raises(SignInError, match="already taken"):
        joining.join(people, CLASS, Role.STUDENT, "Ａｌａｎ", "conv-class-7", "1111", NOW)


def test_a_version_3_store_gets_look_alike_name_keys(tmp_path: Path) -> None:
    people = Store(tmp_path).people
    alan = joining.join(people, CLASS, Role.STUDENT, "Alan", "conv-class-7", "8642", NOW)
    connection = sqlite3.connect(tmp_path / "runs.sqlite3")
    # Version 3's key: NFKC and case-folding only.
    connection.executescript("UPDATE users SET name_key = 'alan'; PRAGMA user_version = 3;")
    connection.close()
    people = Store(tmp_path).people
    with pytest.raises(SignInError, match="already taken"):
        joining.join(people, CLASS, Role.STUDENT, "\u0410lan", "conv-class-7", "1111", NOW)  # Cyrillic А
    assert joining.join(people, CLASS, Role.STUDENT, "alan", "conv-class-7", "8642", NOW).id == alan.id


def test_ending_the_lesson_refuses_older_school_sign_ins_of_students(people: PeopleTable) -> None:
    student = {"iss": "https://id.school", "sub": "ada", "iat": NOW}
    teacher = {"iss": "https://id.school", "sub": "tess", "iat": NOW, "role": "teacher"}
    settings = dataclasses.replace(CLASS, teacher_claim=TeacherClaim("role", "teacher"))
    assert joining.openid_user(people, settings, student).role == Role.STUDENT
    sign_in_sessions.end_lesson(people, NOW + 60)
    with pytest.raises(SignInError, match="your teacher ended the lesson"):
        joining.openid_user(people, settings, student)
    assert joining.openid_user(people, settings, {**student, "iat": NOW + 61}).role == Role.STUDENT
    assert joining.openid_user(people, settings, teacher).role == Role.TEACHER


def test_an_openid_sign_in_is_a_session_that_sign_out_and_the_lesson_end_end(people: PeopleTable) -> None:
    """Streamlit's cookie carries the same claims on every request of one sign-in: replayed after
    sign-out (or after the lesson ended) it names an ended session and is refused; a new sign-in
    (new `iat` and `nonce`) is a new session."""
    claims = {"iss": "https://id.school", "sub": "ada", "iat": NOW, "nonce": "n1", "name": "Ada"}
    ada = joining.openid_user(people, CLASS, claims)
    assert sign_in_sessions.openid_session_user(people, ada, claims, CLASS, NOW) == ada
    assert sign_in_sessions.openid_session_user(people, ada, dict(claims), CLASS, NOW + 60) == ada
    sign_in_sessions.sign_out(people, sign_in_sessions.openid_session_id(claims), NOW + 61)
    with pytest.raises(SignInError, match=r"\(you signed out\)\. Sign in again with your school account"):
        sign_in_sessions.openid_session_user(people, ada, claims, CLASS, NOW + 62)
    again = {**claims, "iat": NOW + 70, "nonce": "n2"}
    assert sign_in_sessions.openid_session_user(people, ada, again, CLASS, NOW + 70) == ada
    sign_in_sessions.end_lesson(people, NOW + 80)
    with pytest.raises(SignInError, match="your teacher ended the lesson"):
        sign_in_sessions.openid_session_user(people, ada, again, CLASS, NOW + 81)
    later = {**claims, "iat": NOW + 3 * 3600, "nonce": "n3"}
    sign_in_sessions.openid_session_user(people, ada, later, CLASS, NOW + 3 * 3600)
    with pytest.raises(SignInError, match="it lasts 2 hours"):
        sign_in_sessions.openid_session_user(people, ada, later, CLASS, NOW + 5 * 3600 + 1)
