"""Who is using this browser session: the signed-in `User`, or the local user without sign-in.

Three modes, from the configuration:
- OpenID Connect: Streamlit's `[auth]` section in secrets.toml; people sign in with `st.login` and
  are known by their token's issuer and subject (`cnnlab.classroom.joining.openid_user`). A teacher
  is listed by a verified e-mail in classroom.toml or carries its teacher claim. Each sign-in is a
  server-side session too (`sign_in_sessions.openid_session_user`), which sign-out ends.
- Join code: classroom.toml sets a class code (and a teacher password). Whoever joins with a name
  and their PIN gets a server-side session (`cnnlab.classroom.sign_in_sessions`); the browser keeps
  only an HttpOnly cookie naming it, set by the `/cnnlab/session` route (`cookie_routes`). Every
  script run checks the session is still open, so sign-out, "End the lesson" or a change of the
  class code signs the person out, and a copied cookie is refused after.
- Neither: the local user, who owns everything; no sign-in screen, CNN Lab as it always was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from cnnlab.classroom import joining, sign_in_sessions
from cnnlab.classroom.settings import ClassroomSettings, load_settings, settings_path
from cnnlab.classroom.users import LOCAL_USER, User
from cnnlab.errors import SignInError
from cnnlab.store.people import PeopleTable
from cnnlab.store.run_store import Store, default_home

COOKIE_NAME = sign_in_sessions.COOKIE_NAME
SESSION_ROUTE = "/cnnlab/session"  # redeems a join's ticket for the HttpOnly cookie (`cookie_routes`)
SIGN_OUT_ROUTE = "/cnnlab/sign-out"  # ends the cookie's session and clears the cookie
USER_STATE_KEY = "classroom_user"  # AppTest may sign a session in by setting it to a `User` (join-code mode)
SESSION_STATE_KEY = "classroom_session"
_TICKET_KEY = "classroom_ticket"
_CLEAR_COOKIE_KEY = "classroom_clear_cookie"
_SIGNED_OUT_KEY = "classroom_signed_out"
_REFUSAL_KEY = "classroom_refusal"


@st.cache_resource(show_spinner=False, max_entries=8)
def _settings_version(home: str, path: str, modified: int | None) -> ClassroomSettings:
    return load_settings(Path(home))


def classroom_settings() -> ClassroomSettings:
    """This server's classroom configuration (NO_CLASSROOM without a classroom file); may raise ClassroomError.

    Read once per version of the file: every page asks for it on every run.
    """
    home = default_home()
    path, _ = settings_path(home)
    try:
        modified: int | None = path.stat().st_mtime_ns
    except OSError:
        modified = None
    return _settings_version(str(home), str(path), modified)


def openid_configured() -> bool:
    """True when secrets.toml has Streamlit's `[auth]` section, so `st.login` can sign people in."""
    try:
        return bool(st.secrets.load_if_toml_exists() and "auth" in st.secrets)
    except FileNotFoundError:
        return False


def sign_in_required(settings: ClassroomSettings) -> bool:
    """True when this server has sign-in configured (OpenID or a join code): nobody acts as the local user."""
    return openid_configured() or settings.join_code_enabled


@st.cache_resource(show_spinner=False)
def _people_at(home: str) -> PeopleTable:
    return Store(Path(home)).people


def people() -> PeopleTable:
    """The users and sign-in sessions of this server's store (CNNLAB_HOME)."""
    return _people_at(str(default_home()))


def openid_user(settings: ClassroomSettings) -> User | None:
    """The user `st.user` names after an OpenID sign-in (by issuer and subject), or None when nobody did."""
    if not openid_configured() or not st.user.is_logged_in:
        return None
    claims: Mapping[str, object] = st.user.to_dict()
    try:
        user = joining.openid_user(people(), settings, claims)
        # The sign-in is a session the server ends: Streamlit's cookie replayed after sign-out is refused.
        return sign_in_sessions.openid_session_user(people(), user, claims, settings, time.time())
    except SignInError as error:
        st.session_state[_REFUSAL_KEY] = str(error)
        return None


def joined_user(settings: ClassroomSettings) -> User | None:
    """The user whose sign-in session (joined here, or named by this browser's cookie) is still open."""
    if not settings.join_code_enabled or settings.secret is None:
        return None
    user = st.session_state.get(USER_STATE_KEY)
    if isinstance(user, User):
        return user  # Signed in by a test (AppTest has no cookies and no routes).
    if st.session_state.get(_SIGNED_OUT_KEY):
        return None
    session_id = st.session_state.get(SESSION_STATE_KEY)
    try:
        if not isinstance(session_id, str):
            token = st.context.cookies.get(COOKIE_NAME)
            if not isinstance(token, str) or not token:
                return None  # No cookie (AppTest, outside a browser, has no real cookies either).
            session_id = sign_in_sessions.session_of_token(people(), token)
        user = sign_in_sessions.active_user(people(), session_id, settings, time.time())
    except SignInError as error:
        st.session_state.pop(SESSION_STATE_KEY, None)
        st.session_state[_REFUSAL_KEY] = str(error)
        return None
    st.session_state[SESSION_STATE_KEY] = session_id
    return user


def signed_in_user(settings: ClassroomSettings) -> User | None:
    """The user of this session: the local user without sign-in, else whoever signed in (None: nobody yet)."""
    if not sign_in_required(settings):
        return LOCAL_USER
    return openid_user(settings) or joined_user(settings)


def current_user() -> User:
    """The user of this session (the local user, who owns everything, when no sign-in is configured).

    The gate at the top of app.py has shown the sign-in screen to anyone not signed in, so a page
    always gets a user; should one run without the gate, it stops rather than act as nobody.
    """
    user = signed_in_user(classroom_settings())
    if user is None:
        st.stop()
    return user


def remember_join(user: User, settings: ClassroomSettings) -> None:
    """Start a sign-in session for a user who just joined; the next script run hands its ticket to the cookie route."""
    started = sign_in_sessions.start(people(), user, settings, time.time())
    st.session_state[SESSION_STATE_KEY] = started.session_id
    st.session_state[_TICKET_KEY] = started.ticket
    st.session_state.pop(_SIGNED_OUT_KEY, None)
    st.session_state.pop(_REFUSAL_KEY, None)


def forget_join() -> None:
    """Sign a joined user out: end their session on the server; the next script run also clears the cookie."""
    session_id = st.session_state.pop(SESSION_STATE_KEY, None)
    if isinstance(session_id, str):
        sign_in_sessions.sign_out(people(), session_id, time.time())
    st.session_state.pop(USER_STATE_KEY, None)
    st.session_state.pop(_TICKET_KEY, None)
    st.session_state[_SIGNED_OUT_KEY] = True
    # This session's cookie may have been set after it connected (so `st.context.cookies` lacks it).
    st.session_state[_CLEAR_COOKIE_KEY] = True


def forget_openid() -> None:
    """End this browser's OpenID sign-in on the server (before `st.logout` clears Streamlit's cookie)."""
    if openid_configured() and st.user.is_logged_in:
        session_id = sign_in_sessions.openid_session_id(st.user.to_dict())
        sign_in_sessions.sign_out(people(), session_id, time.time())


def refusal() -> str | None:
    """Why this browser's sign-in was refused or ended (edited cookie, signed out, lesson ended), if it was."""
    message = st.session_state.get(_REFUSAL_KEY)
    return message if isinstance(message, str) else None


def take_ticket() -> str | None:
    """The ticket of a session started by this join, once: the page posts it to `SESSION_ROUTE`."""
    ticket = st.session_state.pop(_TICKET_KEY, None)
    return ticket if isinstance(ticket, str) else None


def cookie_script(ticket: str | None) -> str:
    """A same-origin script that has the server set the session cookie (ticket), or clear it (None).

    The cookie is HttpOnly: only the server's routes set or clear it; this script never sees it.
    """
    if ticket is None:
        request = f"fetch({json.dumps(SIGN_OUT_ROUTE)}, {{method: 'POST', credentials: 'same-origin'}});"
    else:
        body = json.dumps(f"ticket={ticket}")
        request = (
            f"fetch({json.dumps(SESSION_ROUTE)}, {{method: 'POST', credentials: 'same-origin', "
            f"headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: {body}}});"
        )
    return f"<script>{request}</script>"


def cookie_to_clear() -> bool:
    """True when this browser may hold a sign-in cookie no longer good: it sent one, or signed out here.

    The sign-in screen then has the server clear it (`cookie_script(None)`).
    """
    token = st.context.cookies.get(COOKIE_NAME)
    signed_out_here = bool(st.session_state.pop(_CLEAR_COOKIE_KEY, False))
    return signed_out_here or (isinstance(token, str) and bool(token))
