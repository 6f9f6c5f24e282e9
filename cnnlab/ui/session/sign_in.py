"""The sign-in gate at the top of app.py: the sign-in screen for whoever is not signed in, the sidebar for who is.

Without sign-in configured the gate shows nothing and lets the local user through. A bad
classroom.toml stops every page with its message rather than opening the class to everyone.
"""

from __future__ import annotations

import time

import streamlit as st

from cnnlab.classroom import joining
from cnnlab.classroom.settings import ClassroomSettings
from cnnlab.classroom.users import Role, User
from cnnlab.errors import ClassroomError, SignInError
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.ui.session import identity

OPENID_BUTTON = "Sign in with your school account"
_ROLE_CHOICES = {"Student": Role.STUDENT, "Teacher": Role.TEACHER}
_ERROR_KEY = "sign_in_error"


def gate() -> User:
    """The user of this session; shows the sign-in screen and stops the script while nobody is signed in."""
    try:
        settings = identity.classroom_settings()
    except ClassroomError as error:
        st.error(as_text_lines(error))
        st.stop()
    user = identity.signed_in_user(settings)
    if user is None:
        _sign_in_screen(settings)
        st.stop()
    if identity.sign_in_required(settings):
        _sidebar(user)
    return user


def _sidebar(user: User) -> None:
    """Who is signed in, a sign-out button, and (for a joined user) the script that keeps the cookie."""
    with st.sidebar:
        st.markdown(f"Signed in as **{as_text(user.name)}** · {user.role.value}")
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            if identity.openid_configured() and st.user.is_logged_in:
                identity.forget_openid()  # Ended here: a copy of Streamlit's cookie is refused after.
                st.logout()  # Streamlit clears its cookie and sends the browser to its logout page.
                st.stop()
            identity.forget_join()
            st.rerun()
        ticket = identity.take_ticket()
        if ticket is not None:
            # Just joined: the server's route turns the one-time ticket into the HttpOnly session cookie.
            st.html(identity.cookie_script(ticket), unsafe_allow_javascript=True)


def _join(settings: ClassroomSettings) -> None:
    """The Join button's callback: check the code or password and the name, then sign this session in."""
    role = _ROLE_CHOICES[st.session_state.get("sign_in_role") or "Student"]
    word_key = "sign_in_class_code" if role == Role.STUDENT else "sign_in_teacher_password"
    try:
        user = joining.join(
            identity.people(),
            settings,
            role,
            st.session_state.get("sign_in_name", ""),
            st.session_state.get(word_key, ""),
            st.session_state.get("sign_in_pin", ""),
            time.time(),
        )
    except SignInError as error:
        st.session_state[_ERROR_KEY] = str(error)
        return
    st.session_state.pop(_ERROR_KEY, None)
    identity.remember_join(user, settings)


def _sign_in_screen(settings: ClassroomSettings) -> None:
    st.title("Sign in to CNN Lab")
    refusal = identity.refusal()
    if refusal is not None:
        st.error(as_text_lines(refusal))
    if settings.join_code_enabled and identity.cookie_to_clear():
        # No one is signed in here: have the server clear the cookie this browser still holds (signed out, ended).
        st.html(identity.cookie_script(None), unsafe_allow_javascript=True)
    if identity.openid_configured():
        st.write("Use the account your school gave you.")
        if st.button(OPENID_BUTTON, key="sign_in_openid", type="primary", icon=":material/login:"):
            st.login()
    if settings.join_code_enabled:
        _join_form(settings)


def _join_form(settings: ClassroomSettings) -> None:
    st.subheader("Join with the class code")
    choices = [
        label
        for label, role in _ROLE_CHOICES.items()
        if (settings.class_code if role == Role.STUDENT else settings.teacher_password) is not None
    ]
    role = _ROLE_CHOICES[st.radio("Join as", choices, key="sign_in_role", horizontal=True) or choices[0]]
    st.text_input("Your name", key="sign_in_name", max_chars=joining.MAXIMUM_NAME_LENGTH)
    if role == Role.STUDENT:
        st.text_input("Class code", key="sign_in_class_code", type="password")
    else:
        st.text_input("Teacher password", key="sign_in_teacher_password", type="password")
    low, high = joining.PIN_LENGTHS
    st.text_input(
        "Your PIN",
        key="sign_in_pin",
        type="password",
        max_chars=high,
        help=f"{low} to {high} digits. The first time you join, choose one and remember it: it proves you are you "
        "when you join again (another day, another computer). Nobody else can then use your name.",
    )
    st.button("Join", key="sign_in_join", type="primary", on_click=_join, args=(settings,))
    error = st.session_state.get(_ERROR_KEY)
    if error:
        st.error(as_text(error))  # It may quote the name as typed.
    st.caption(
        "Your name is shown to your teacher and class, and nobody else can take it. This browser remembers you "
        "until you sign out or the lesson ends; a link you share does not sign anyone else in."
    )
