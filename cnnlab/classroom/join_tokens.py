"""Joining a class without an identity provider: a class code (or the teacher password) and a display name.

Whoever joins gets a `User` and a token: the user's id, name, role and the time of joining, signed
with HMAC-SHA256 over the class's secret. The browser keeps the token (a cookie) so a refresh keeps
the identity; `verify` refuses a token that was edited, made without the secret, or is too old.

User ids never collide: a student's is "student:<name>", a teacher's "teacher:<name>" (names
compared without regard to case or repeated spaces, and never containing ":"), an OpenID user's
"oidc:<e-mail or subject>". The same name typed again gives the same id, so a student who joins
again (another day, another computer) finds their runs; the class code is what keeps strangers out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

from cnnlab.classroom.settings import ClassroomSettings
from cnnlab.classroom.users import Role, User
from cnnlab.errors import SignInError

MAXIMUM_NAME_LENGTH = 40
NAME_PUNCTUATION = " .'-_"
TOKEN_LIFETIME_SECONDS = 12 * 3600  # a school day; joining again takes a few seconds
CLOCK_SKEW_SECONDS = 300
_ID_PREFIXES = {Role.STUDENT: "student:", Role.TEACHER: "teacher:"}


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


def user_id(name: str, role: Role) -> str:
    """The id of someone who joined with a code: the role and the name, case and spacing ignored."""
    return _ID_PREFIXES[role] + clean_name(name).casefold()


def join(settings: ClassroomSettings, role: Role, name: str, secret_word: str) -> User:
    """The user who joins as `role` with a display name and the class code (students) or teacher password.

    Raises SignInError when this class does not allow that way in, the word is wrong, or the name unusable.
    """
    if role not in _ID_PREFIXES:
        raise SignInError(f"One joins a class as a student or a teacher; got {role.value!r}.")
    expected = settings.class_code if role == Role.STUDENT else settings.teacher_password
    what = "class code" if role == Role.STUDENT else "teacher password"
    if expected is None:
        raise SignInError(f"This class has no {what}; ask your teacher how to sign in.")
    cleaned = clean_name(name)
    if not hmac.compare_digest(secret_word.strip().encode(), expected.encode()):
        raise SignInError(f"That {what} is not right. Check it with your teacher and type it again.")
    return User(id=user_id(cleaned, role), name=cleaned, role=role)


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: str, secret: str) -> str:
    return _encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def sign(user: User, secret: str, issued_at: float | None = None) -> str:
    """The token of a user who joined: "<payload>.<signature>", both base64url, safe in a cookie."""
    payload = {
        "id": user.id,
        "name": user.name,
        "role": user.role.value,
        "iat": int(time.time() if issued_at is None else issued_at),
        "nonce": secrets.token_hex(4),
    }
    encoded = _encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{encoded}.{_signature(encoded, secret)}"


def verify(
    token: str, secret: str, now: float | None = None, lifetime_seconds: float = TOKEN_LIFETIME_SECONDS
) -> User:
    """The user a token names, if this class's secret signed it and it is not too old.

    Raises SignInError when the token was edited, forged, expired, or is not a token at all.
    """
    refused = "Your saved sign-in was refused"
    encoded, separator, signature = token.strip().partition(".")
    if not separator or not hmac.compare_digest(signature.encode(), _signature(encoded, secret).encode()):
        raise SignInError(
            f"{refused}: its signature does not match (it was edited, or made without this class's "
            "secret). Join again with the class code."
        )
    try:
        payload = json.loads(_decode(encoded))
        user = User(id=str(payload["id"]), name=str(payload["name"]), role=Role(payload["role"]))
        issued_at = float(payload["iat"])
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise SignInError(
            f"{refused}: it cannot be read ({error}). Join again with the class code."
        ) from error
    if user.role not in _ID_PREFIXES or user.id != user_id(user.name, user.role):
        raise SignInError(f"{refused}: it names {user.id!r} as a {user.role.value}. Join again.")
    moment = time.time() if now is None else now
    if issued_at > moment + CLOCK_SKEW_SECONDS:
        raise SignInError(f"{refused}: it claims to be from the future. Join again with the class code.")
    if moment - issued_at > lifetime_seconds:
        hours = lifetime_seconds / 3600
        raise SignInError(f"{refused}: it is more than {hours:g} hours old. Join again with the class code.")
    return user
