"""Who someone is in a class: joining with a code, a display name and a personal PIN; OpenID users.

Each person who joins gets their own user with a stable random id ("user:" and 16 hex digits); the
display name is only a label. A name is the class's once taken: names are compared after NFKC
normalisation, case-folding and folding look-alike letters of other scripts (`cnnlab.store.people.name_key`),
so "ALAN", "alan", "Ａｌａｎ" and "Аlаn" (Cyrillic а) are one name. At their first join a person chooses a PIN (4 to 12 digits); joining again with the
name (another day, another device) takes the same PIN, so someone else who types "Alan" is refused
rather than let in as Alan. Five wrong PINs in a row lock the name for a few minutes; a teacher can
clear a forgotten PIN from the console (the next join with the name chooses a new one).

An OpenID user is known by the issuer and subject of their token, never by the e-mail address; a
student's sign-in from before the teacher last ended the lesson (its `iat`) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from cnnlab.classroom.settings import ClassroomSettings
from cnnlab.classroom.users import Role, User
from cnnlab.errors import SignInError
from cnnlab.store.people import PeopleTable, StoredUser, name_key

MAXIMUM_NAME_LENGTH = 40
NAME_PUNCTUATION = " .'-_"
PIN_LENGTHS = (4, 12)
MAXIMUM_WRONG_PINS = 5
LOCK_SECONDS = 300
# A few milliseconds per PIN: a PIN of a few digits cannot resist someone who reads the database
# anyway, so what protects a name is the server-side lock after `MAXIMUM_WRONG_PINS`, not the cost.
_SCRYPT = {"n": 2**12, "r": 8, "p": 1}
_JOIN_ROLES = (Role.STUDENT, Role.TEACHER)
LESSON_ENDED = "lesson ended"  # the class mark (and session end reason) of the teacher's "End the lesson"


def clean_name(name: str) -> str:
    """A display name with surrounding and repeated spaces removed; SignInError when it is not usable."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise SignInError("Type your name (the name your teacher and class will see) before joining.")
    if len(cleaned) > MAXIMUM_NAME_LENGTH or not all(
        character.isalnum() or character in NAME_PUNCTUATION for character in cleaned
    ):
        raise SignInError(
            f"A display name may use letters, digits, spaces and . ' - _ (at most {MAXIMUM_NAME_LENGTH} "
            f"characters); got {name!r}. Choose another name."
        )
    return cleaned


def check_pin(pin: str) -> str:
    """The PIN without surrounding spaces; SignInError unless it is 4 to 12 digits."""
    cleaned = pin.strip()
    low, high = PIN_LENGTHS
    if not (cleaned.isascii() and cleaned.isdigit() and low <= len(cleaned) <= high):
        raise SignInError(
            f"Your PIN must be {low} to {high} digits (got {len(cleaned)} characters). The first time you join "
            "you choose it; type the same PIN whenever you join again, on any computer."
        )
    return cleaned


def hash_pin(pin: str) -> str:
    """A salted scrypt hash of the PIN: "scrypt$<salt>$<hash>" (the PIN itself is never kept)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    """True when `pin` is the PIN `stored` (a `hash_pin` result) was made from."""
    kind, _, rest = stored.partition("$")
    salt, _, expected = rest.partition("$")
    if kind != "scrypt" or not salt or not expected:
        return False
    digest = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), expected)


def new_user_id() -> str:
    """A stable random user id, the owner column of the user's runs."""
    return f"user:{secrets.token_hex(8)}"


def _taken(name: str) -> SignInError:
    return SignInError(
        f"The name {name!r} is already taken in this class. If it is yours, type the PIN you chose when you "
        "first joined; otherwise choose another name. Forgot your PIN? Your teacher can clear it."
    )


def join(
    people: PeopleTable,
    settings: ClassroomSettings,
    role: Role,
    name: str,
    secret_word: str,
    pin: str,
    now: float,
) -> User:
    """The user who joins as `role` with a display name, the class code (or teacher password) and a PIN.

    A new name makes a new user with that PIN; a taken name lets in only its owner's PIN. Raises
    SignInError when this class has no such way in, the word is wrong, or the name or PIN is refused.
    """
    if role not in _JOIN_ROLES:
        raise SignInError(f"One joins a class as a student or a teacher; got {role.value!r}.")
    expected = settings.class_code if role == Role.STUDENT else settings.teacher_password
    what = "class code" if role == Role.STUDENT else "teacher password"
    if expected is None:
        raise SignInError(f"This class has no {what}; ask your teacher how to sign in.")
    cleaned = clean_name(name)
    if not hmac.compare_digest(secret_word.strip().encode(), expected.encode()):
        raise SignInError(f"That {what} is not right. Check it with your teacher and type it again.")
    checked_pin = check_pin(pin)
    key = name_key(cleaned)
    existing = people.user_named(key)
    if existing is None:
        made = StoredUser(new_user_id(), cleaned, key, role.value, hash_pin(checked_pin), None, now)
        if people.add_user(made):
            return User(id=made.id, name=made.name, role=role)
        existing = people.user_named(key)  # Someone took the name at the same moment.
        if existing is None:
            raise _taken(cleaned)
    return _returning(people, existing, role, checked_pin, now)


def _returning(people: PeopleTable, existing: StoredUser, role: Role, pin: str, now: float) -> User:
    """The user whose name was typed, if the PIN is theirs (their first PIN, for a user without one)."""
    if existing.locked_until is not None and now < existing.locked_until:
        minutes = max(1, round((existing.locked_until - now) / 60))
        raise SignInError(
            f"Too many wrong PINs for {existing.name!r}: try again in {minutes} minute(s), or ask your teacher."
        )
    if existing.role != role.value:
        raise _taken(existing.name)
    if existing.pin_hash is None:
        # A user from before PINs (or whose PIN the teacher cleared): this join chooses it.
        people.set_pin(existing.id, hash_pin(pin))
    elif pin_matches(pin, existing.pin_hash):
        if existing.failed_pins:
            people.clear_failed_pins(existing.id)
    else:
        locked = existing.failed_pins + 1 >= MAXIMUM_WRONG_PINS
        people.record_failed_pin(existing.id, now + LOCK_SECONDS if locked else None)
        raise _taken(existing.name)
    return User(id=existing.id, name=existing.name, role=role)


def stored_user(people: PeopleTable, user_id: str) -> User | None:
    """The user with this id as a `User` (their current name and role), or None when removed."""
    found = people.user(user_id)
    if found is None:
        return None
    return User(id=found.id, name=found.name, role=Role(found.role))


def openid_user(people: PeopleTable, settings: ClassroomSettings, claims: Mapping[str, object]) -> User:
    """The user an OpenID token names: found by its issuer and subject, made at their first sign-in.

    The display name comes from the token (`name`, else the e-mail, else the subject); the role is
    teacher when `settings.is_teacher` says so (a listed e-mail only when the provider verified it).
    """
    issuer = str(claims.get("iss") or "")
    subject = str(claims.get("sub") or "")
    if not subject:
        raise SignInError("Your school account's sign-in names nobody (no subject); sign in again.")
    issuer_subject = f"{issuer} {subject}"
    email = claims.get("email")
    email_text = str(email).strip().lower() if email else None
    name = str(claims.get("name") or email_text or subject)
    role = Role.TEACHER if settings.is_teacher(email_text, claims) else Role.STUDENT
    signed_in_at = claims.get("iat")
    lesson_ended = people.mark(LESSON_ENDED)
    ended = (
        isinstance(signed_in_at, (int, float)) and lesson_ended is not None and signed_in_at < lesson_ended
    )
    if role == Role.STUDENT and ended:
        raise SignInError(
            "Your sign-in has ended (your teacher ended the lesson). Sign in again with your school account."
        )
    found = people.user_by_subject(issuer_subject)
    if found is None:
        made = StoredUser(new_user_id(), name[:200], None, role.value, None, issuer_subject, time.time())
        if not people.add_user(made):
            found = people.user_by_subject(issuer_subject)
            if found is None:
                raise SignInError("Your school account could not be recorded; sign in again.")
        else:
            found = made
    elif found.name != name:
        people.rename(found.id, name[:200], None)
    return User(id=found.id, name=name, role=role)
