"""The classroom configuration: who teaches, how students join, and the class's limits.

CNN Lab reads it from the TOML file named by `$CNNLAB_CLASSROOM`, else `$CNNLAB_HOME/classroom.toml`.
Without that file there is no classroom: one local user owns everything, as always. For example

    teachers = ["ms.turing@school.example"]     # e-mail addresses of teachers signing in with OpenID
    teacher_claim = { role = "teacher" }        # or: a claim of the OpenID token that marks a teacher
    class_code = "conv-class-7"                 # students join with this code and a display name
    teacher_password = "pool-and-stride"        # a teacher joins with this password and a name
    secret = "a long random string"             # keys the sign-in sessions of those who joined
    session_hours = 2                           # a sign-in lasts this long (a lesson), unless ended sooner

    [limits]                                    # see cnnlab.classroom.limits
    max_epochs = 20

The OpenID provider itself is Streamlit's `[auth]` section of `.streamlit/secrets.toml` (`st.login`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.classroom.limits import Limits
from cnnlab.errors import ClassroomError, CnnLabError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport.
    import tomli as tomllib

CLASSROOM_VARIABLE = "CNNLAB_CLASSROOM"
FILE_NAME = "classroom.toml"
MINIMUM_SECRET_LENGTH = 16
KEYS = ("teachers", "teacher_claim", "class_code", "teacher_password", "secret", "session_hours", "limits")
DEFAULT_SESSION_HOURS = 2.0  # a lesson; joining again takes a few seconds
MAXIMUM_SESSION_HOURS = 24.0


@dataclass(frozen=True)
class TeacherClaim:
    """A claim of the OpenID token that marks a teacher, such as role = "teacher"."""

    name: str
    value: str

    def matches(self, claims: Mapping[str, object]) -> bool:
        """True when the claim equals the value, or is a list holding it (as `groups` claims are)."""
        found = claims.get(self.name)
        if isinstance(found, (list, tuple)):
            return self.value in [str(item) for item in found]
        return found is not None and str(found) == self.value


@dataclass(frozen=True)
class ClassroomSettings:
    """A class's configuration; `source` is None when there is no classroom (single-user CNN Lab)."""

    source: Path | None = None
    teachers: frozenset[str] = frozenset()
    teacher_claim: TeacherClaim | None = None
    class_code: str | None = None
    teacher_password: str | None = None
    secret: str | None = None
    session_hours: float = DEFAULT_SESSION_HOURS
    limits: Limits = field(default_factory=Limits.unlimited)

    @property
    def is_classroom(self) -> bool:
        """True when a classroom file was read."""
        return self.source is not None

    @property
    def join_code_enabled(self) -> bool:
        """True when people may join with a class code or the teacher password (no identity provider needed)."""
        return self.class_code is not None or self.teacher_password is not None

    def is_teacher(self, email: str | None, claims: Mapping[str, object]) -> bool:
        """Whether an OpenID user is a teacher: their e-mail is listed and the provider verified it
        (`email_verified` is true), or the teacher claim matches. An unverified e-mail counts for nothing."""
        verified = claims.get("email_verified") is True or str(claims.get("email_verified")).lower() == "true"
        if verified and email is not None and email.strip().lower() in self.teachers:
            return True
        return self.teacher_claim is not None and self.teacher_claim.matches(claims)


NO_CLASSROOM = ClassroomSettings()


def settings_path(home: Path) -> tuple[Path, bool]:
    """Where the classroom file is, and whether it was named explicitly (then it must exist)."""
    named = os.environ.get(CLASSROOM_VARIABLE)
    if named:
        return Path(named).expanduser(), True
    return Path(home) / FILE_NAME, False


def load_settings(home: Path) -> ClassroomSettings:
    """Read the classroom file (`$CNNLAB_CLASSROOM`, else `home/classroom.toml`); NO_CLASSROOM without one.

    Raises ClassroomError naming the file, the key and the value when the file cannot be used.
    """
    path, named = settings_path(home)
    if not path.is_file():
        if named:
            raise ClassroomError(
                f"{CLASSROOM_VARIABLE} names the classroom file '{path}', which does not exist. "
                f"Create it, or unset {CLASSROOM_VARIABLE} to run CNN Lab without a classroom."
            )
        return NO_CLASSROOM
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ClassroomError(
            f"The classroom file '{path}' cannot be read as TOML: {error}. Fix the file and restart CNN Lab."
        ) from error
    return settings_from_mapping(document, path)


def settings_from_mapping(document: Mapping[str, Any], path: Path) -> ClassroomSettings:
    """Check a parsed classroom file and build its settings; `path` names the file in messages."""
    unknown = sorted(set(document) - set(KEYS))
    if unknown:
        raise ClassroomError(
            f"The classroom file '{path}' has unknown key(s) {', '.join(map(repr, unknown))}. "
            f"Use only {', '.join(KEYS)}."
        )
    class_code = _optional_word(document, "class_code", path)
    teacher_password = _optional_word(document, "teacher_password", path)
    secret = _optional_word(document, "secret", path)
    if (class_code or teacher_password) and secret is None:
        raise ClassroomError(
            f"The classroom file '{path}' sets a class code or teacher password but no 'secret'; "
            'the secret signs the identity of everyone who joins. Add secret = "..." '
            f"(a random string of at least {MINIMUM_SECRET_LENGTH} characters)."
        )
    if secret is not None and len(secret) < MINIMUM_SECRET_LENGTH:
        raise ClassroomError(
            f"The classroom file '{path}' has a 'secret' of {len(secret)} characters; use a random string "
            f"of at least {MINIMUM_SECRET_LENGTH} so nobody can guess it and forge an identity."
        )
    if class_code is not None and class_code == teacher_password:
        raise ClassroomError(
            f"The classroom file '{path}' uses the same value for 'class_code' and 'teacher_password'; "
            "every student could then join as a teacher. Choose a different teacher password."
        )
    limits_table = document.get("limits", {})
    if not isinstance(limits_table, Mapping):
        raise ClassroomError(
            f"The classroom file '{path}' has limits = {limits_table!r}; it must be a [limits] table."
        )
    try:
        limits = Limits.from_mapping(limits_table)
    except CnnLabError as error:
        raise ClassroomError(f"The classroom file '{path}': {error}") from error
    return ClassroomSettings(
        source=path,
        session_hours=_session_hours(document.get("session_hours", DEFAULT_SESSION_HOURS), path),
        teachers=_teachers(document.get("teachers", []), path),
        teacher_claim=_teacher_claim(document.get("teacher_claim"), path),
        class_code=class_code,
        teacher_password=teacher_password,
        secret=secret,
        limits=limits,
    )


def _optional_word(document: Mapping[str, Any], key: str, path: Path) -> str | None:
    """A non-empty string setting, or None when absent; a secret value is never repeated in a message."""
    if key not in document:
        return None
    value = document[key]
    if not isinstance(value, str) or not value.strip():
        shown = f"a {type(value).__name__}" if key in ("secret", "teacher_password") else repr(value)
        raise ClassroomError(
            f"The classroom file '{path}' has {key} = {shown}; it must be a non-empty string in quotes."
        )
    return value.strip()


def _session_hours(value: object, path: Path) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAXIMUM_SESSION_HOURS
    ):
        raise ClassroomError(
            f"The classroom file '{path}' has session_hours = {value!r}; it must be a number of hours above 0 "
            f"and at most {MAXIMUM_SESSION_HOURS:g}, such as session_hours = 2 (a lesson)."
        )
    return float(value)


def _teachers(value: object, path: Path) -> frozenset[str]:
    if not isinstance(value, list):
        raise ClassroomError(
            f"The classroom file '{path}' has teachers = {value!r}; it must be a list of e-mail addresses, "
            'such as teachers = ["ms.turing@school.example"].'
        )
    for address in value:
        if not isinstance(address, str) or "@" not in address:
            raise ClassroomError(
                f"The classroom file '{path}' lists {address!r} in 'teachers', which is not an e-mail address. "
                "List the e-mail addresses teachers sign in with."
            )
    return frozenset(address.strip().lower() for address in value)


def _teacher_claim(value: object, path: Path) -> TeacherClaim | None:
    if value is None:
        return None
    if (
        not isinstance(value, Mapping)
        or len(value) != 1
        or not all(isinstance(item, (str, int)) and not isinstance(item, bool) for item in value.values())
    ):
        raise ClassroomError(
            f"The classroom file '{path}' has teacher_claim = {value!r}; it must name one claim and its "
            'value, such as teacher_claim = { role = "teacher" }.'
        )
    ((name, claim_value),) = value.items()
    return TeacherClaim(name=str(name), value=str(claim_value))
