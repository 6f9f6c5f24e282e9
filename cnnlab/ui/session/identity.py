"""Who is using this browser session: the signed-in `User`, or the local user without sign-in.

Three modes, from the configuration:
- OpenID Connect: Streamlit's `[auth]` section in secrets.toml; people sign in with `st.login` and
  `st.user` names them. A teacher is listed by e-mail in classroom.toml or carries its teacher claim.
- Join code: classroom.toml sets a class code (and a teacher password). Whoever joins gets a signed
  token in a cookie of this browser (`cnnlab_classroom`): a refresh keeps the identity (the server
  reads it back through `st.context.cookies`), a shared link does not carry it (it is not in the
  address), and an edited or forged cookie is refused.
- Neither: the local user, who owns everything; no sign-in screen, CNN Lab as it always was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from cnnlab.classroom import join_tokens
from cnnlab.classroom.settings import ClassroomSettings, load_settings, settings_path
from cnnlab.classroom.users import LOCAL_USER, Role, User
from cnnlab.errors import SignInError
from cnnlab.store.run_store import default_home

COOKIE_NAME = "cnnlab_classroom"
USER_STATE_KEY = "classroom_user"  # AppTest may sign a session in by setting it to a `User` (join-code mode)
_TOKEN_KEY = "classroom_token"
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


def openid_user(settings: ClassroomSettings) -> User | None:
    """The user `st.user` names after an OpenID sign-in, or None when nobody signed in that way."""
    if not openid_configured() or not st.user.is_logged_in:
        return None
    claims: Mapping[str, object] = st.user.to_dict()
    email = claims.get("email")
    subject = str(claims.get("sub") or "")
    email_text = str(email).strip().lower() if email else None
    name = str(claims.get("name") or email_text or subject)
    role = Role.TEACHER if settings.is_teacher(email_text, claims) else Role.STUDENT
    return User(id=f"oidc:{email_text or subject}", name=name, role=role)


def joined_user(settings: ClassroomSettings) -> User | None:
    """The user who joined with a code in this session, or whose signed cookie this browser sent."""
    if not settings.join_code_enabled or settings.secret is None:
        return None
    user = st.session_state.get(USER_STATE_KEY)
    if isinstance(user, User):
        return user
    if st.session_state.get(_SIGNED_OUT_KEY):
        return None
    token = st.context.cookies.get(COOKIE_NAME)
    if not isinstance(token, str) or not token:
        return None  # No cookie (AppTest, outside a browser, has no real cookies either).
    try:
        user = join_tokens.verify(token, settings.secret)
    except SignInError as error:
        st.session_state[_REFUSAL_KEY] = str(error)
        return None
    st.session_state[USER_STATE_KEY] = user
    st.session_state[_TOKEN_KEY] = token
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
    """Sign this session in as a user who just joined with a code, and keep the token for the cookie."""
    assert settings.secret is not None  # A class with a join code always has a secret (settings checks it).
    st.session_state[USER_STATE_KEY] = user
    st.session_state[_TOKEN_KEY] = join_tokens.sign(user, settings.secret)
    st.session_state.pop(_SIGNED_OUT_KEY, None)
    st.session_state.pop(_REFUSAL_KEY, None)


def forget_join() -> None:
    """Sign a joined user out of this session; the next script run also clears the browser's cookie."""
    st.session_state.pop(USER_STATE_KEY, None)
    st.session_state.pop(_TOKEN_KEY, None)
    st.session_state[_SIGNED_OUT_KEY] = True


def refusal() -> str | None:
    """Why the cookie this browser sent was refused (edited, forged, expired), if it was."""
    message = st.session_state.get(_REFUSAL_KEY)
    return message if isinstance(message, str) else None


def cookie_script(token: str | None) -> str:
    """A same-origin script that stores the token in this browser's cookie, or deletes it when None.

    The cookie lives for the token's lifetime, on the whole site, sent only with requests from this
    site (SameSite=Strict), so a link opened elsewhere does not carry it.
    """
    if token is None:
        setting = f"{COOKIE_NAME}=; Max-Age=0; Path=/; SameSite=Strict"
    else:
        lifetime = join_tokens.TOKEN_LIFETIME_SECONDS
        setting = f"{COOKIE_NAME}={token}; Max-Age={lifetime}; Path=/; SameSite=Strict"
    return f"<script>document.cookie = {json.dumps(setting)};</script>"


def session_token() -> str | None:
    """The signed token of the user who joined in this session (what the cookie should hold)."""
    token = st.session_state.get(_TOKEN_KEY)
    return token if isinstance(token, str) else None
