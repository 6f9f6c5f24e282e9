"""Sign-in sessions the server can end, for people who joined with a class code or teacher password.

Joining starts a session in the store (`cnnlab.store.people`) with a one-time ticket. The page hands
the ticket to the server's `/cnnlab/session` route, which redeems it for a random token set as an
HttpOnly, SameSite=Lax cookie (Secure under HTTPS): page JavaScript never sees the token, and a
refresh brings the session back. The store keeps only hashes of tickets and tokens.

A session ends when its person signs out, when a teacher ends the lesson (every student's session),
when the teacher removes or merges its user, when the class code, teacher password or secret
changes (each session remembers a key made from them), or after `session_hours` (a lesson, 2 hours
by default). An ended session's cookie is refused, so a copied cookie is worth nothing after.

A sign-in with the school's OpenID provider is a session too. Streamlit keeps that sign-in in a
cookie of its own, which carries the ID token's claims; the session's id is a hash of them
(`openid_session_id`), the same on every request of one sign-in and new at the next (a new `iat` and
`nonce`). The session is recorded at the sign-in's first request, and sign-out, "end the lesson", a
change of the class's code or secret and `session_hours` end it like any other: Streamlit's cookie,
copied before `st.logout` and replayed after, names an ended session and is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cnnlab.classroom import joining
from cnnlab.classroom.joining import LESSON_ENDED
from cnnlab.classroom.settings import ClassroomSettings
from cnnlab.classroom.users import User
from cnnlab.errors import SignInError
from cnnlab.store.people import PeopleTable, StoredSession

COOKIE_NAME = "cnnlab_classroom"
TICKET_SECONDS = 120.0  # the page redeems its ticket at once; a minute or two covers a slow browser
OPENID_PREFIX = "openid:"  # the ids of OpenID sign-ins' sessions
JOIN_AGAIN = "Join again with the class code."
SIGN_IN_AGAIN = "Sign in again with your school account."
SIGNED_OUT = "signed out"
CLASS_CHANGED = "class changed"
_ENDINGS = {
    SIGNED_OUT: "you signed out",
    LESSON_ENDED: "your teacher ended the lesson",
    CLASS_CHANGED: "the class code or secret changed",
}


@dataclass(frozen=True)
class Started:
    """A new session: its id (kept by the Streamlit session) and the one-time ticket for the cookie."""

    session_id: str
    ticket: str


@dataclass(frozen=True)
class Cookie:
    """What the cookie route sets: the token and how many seconds the cookie lives."""

    token: str
    max_age: int


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def class_key(settings: ClassroomSettings) -> str:
    """A key of the class's code, teacher password and secret: it changes when any of them does."""
    parts = "\0".join([settings.class_code or "", settings.teacher_password or ""])
    return hmac.new((settings.secret or "").encode(), parts.encode(), hashlib.sha256).hexdigest()


def start(people: PeopleTable, user: User, settings: ClassroomSettings, now: float) -> Started:
    """Start a session for a user who just joined; it lives `settings.session_hours` unless ended sooner."""
    session_id, ticket = secrets.token_urlsafe(18), secrets.token_urlsafe(24)
    people.start_session(
        session_id,
        user.id,
        ticket_hash=_hash(ticket),
        ticket_expires_at=now + TICKET_SECONDS,
        class_key=class_key(settings),
        now=now,
        expires_at=now + settings.session_hours * 3600,
    )
    return Started(session_id, ticket)


def redeem(people: PeopleTable, ticket: str, now: float) -> Cookie | None:
    """The cookie for a session's unused ticket (None for a used, expired, ended or unknown ticket)."""
    token = secrets.token_urlsafe(32)
    session = people.redeem_ticket(_hash(ticket), _hash(token), now)
    if session is None:
        return None
    return Cookie(token=token, max_age=max(0, int(session.expires_at - now)))


def session_of_token(people: PeopleTable, token: str) -> str:
    """The id of the session a cookie's token belongs to; SignInError when it belongs to none."""
    session = people.session_by_token(_hash(token.strip()))
    if session is None:
        raise SignInError(
            "Your saved sign-in was refused: this server has no such session (it was edited, made up, "
            "or its user was removed). Join again with the class code."
        )
    return session.id


def active_user(
    people: PeopleTable, session_id: str, settings: ClassroomSettings, now: float, again: str = JOIN_AGAIN
) -> User:
    """The user of a session that is still open; SignInError saying why it is not (and ending it), then
    `again` (how to sign in again)."""
    session = people.session(session_id)
    if session is None or session.user is None:
        raise SignInError(f"Your sign-in has ended: your teacher removed your name. {again}")
    reason = _why_ended(session, settings, now)
    if reason is not None:
        if session.ended_at is None:
            people.end_session(session.id, reason, now)
        hours = settings.session_hours
        said = f"it lasts {hours:g} hours" if reason == "expired" else _ENDINGS.get(reason, reason)
        raise SignInError(f"Your sign-in has ended ({said}). {again}")
    user = joining.stored_user(people, session.user_id)
    if user is None:  # pragma: no cover - removed between the two reads
        raise SignInError(f"Your sign-in has ended: your teacher removed your name. {again}")
    return user


def openid_session_id(claims: Mapping[str, object]) -> str:
    """The id of the session an OpenID sign-in stands for: a hash of its ID token's claims (the same on
    every request of the sign-in, new at the next sign-in)."""
    return OPENID_PREFIX + _hash(json.dumps(dict(claims), sort_keys=True, default=str))


def openid_session_user(
    people: PeopleTable, user: User, claims: Mapping[str, object], settings: ClassroomSettings, now: float
) -> User:
    """`user`, signed in with OpenID as `claims` say, while that sign-in's session is open (recorded at its
    first request); SignInError when it has ended (signed out, lesson ended, class changed, expired)."""
    session_id = openid_session_id(claims)
    expires_at = now + settings.session_hours * 3600
    people.open_session(session_id, user.id, class_key=class_key(settings), now=now, expires_at=expires_at)
    active_user(people, session_id, settings, now, again=SIGN_IN_AGAIN)
    return user


def _why_ended(session: StoredSession, settings: ClassroomSettings, now: float) -> str | None:
    if session.ended_at is not None:
        return session.end_reason or SIGNED_OUT
    if not hmac.compare_digest(session.class_key, class_key(settings)):
        return CLASS_CHANGED
    if now >= session.expires_at:
        return "expired"
    return None


def sign_out(people: PeopleTable, session_id: str, now: float) -> None:
    """End one session: its person signed out."""
    people.end_session(session_id, SIGNED_OUT, now)


def end_lesson(people: PeopleTable, now: float) -> int:
    """End every student's session (the teacher's "End the lesson"); how many ended.

    Students signed in with a school account sign in again too: their sign-in is older than the mark
    this leaves (`joining.openid_user`).
    """
    people.set_mark(LESSON_ENDED, now)
    return people.end_sessions(LESSON_ENDED, now, role="student")
