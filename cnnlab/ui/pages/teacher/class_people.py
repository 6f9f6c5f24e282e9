"""The console's people: "End the lesson" for every student, and the roster (rename, merge, remove, clear a PIN)."""

from __future__ import annotations

import time
from datetime import datetime

import streamlit as st

from cnnlab.classroom import roster, sign_in_sessions
from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text
from cnnlab.store.people import StoredUser
from cnnlab.ui.session import identity, presentation

PERSON_KEY = "teacher_person"
NOTICE_KEY = "teacher_people_notice"


def _end_lesson() -> None:
    ended = sign_in_sessions.end_lesson(identity.people(), time.time())
    st.session_state[NOTICE_KEY] = (
        f"The lesson has ended: {ended} student sign-in(s) closed. Students join again with the class code, "
        "their name and their PIN."
    )


def _label(user: StoredUser) -> str:
    how = "class code" if user.issuer_subject is None else "school account"
    return f"{user.name} · {user.role} · {how}"


def _act(action: str, user: StoredUser, users: dict[str, StoredUser]) -> None:
    """Run one roster action from the buttons' callbacks; a refusal is shown as the notice."""
    people = identity.people()
    try:
        if action == "rename":
            new_name = roster.rename(people, user.id, st.session_state.get("teacher_person_name", ""))
            notice = f"Renamed {user.name!r} to {new_name!r}."
        elif action == "merge":
            into = users[st.session_state["teacher_person_into"]]
            moved = roster.merge(people, user.id, into.id)
            notice = f"Merged {user.name!r} into {into.name!r}: {moved} run(s) moved."
        elif action == "clear_pin":
            roster.clear_pin(people, user.id)
            notice = f"Cleared the PIN of {user.name!r}: the next join with this name chooses a new one."
        else:
            roster.remove(people, user.id)
            notice = f"Removed {user.name!r}; their runs stay in the class's runs."
    except CnnLabError as error:
        notice = str(error)
    st.session_state[NOTICE_KEY] = notice


def section() -> None:
    """The lesson's end and the class's people."""
    st.subheader("The class's people")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(as_text(notice))  # It names students, in the words they typed.
    settings = identity.classroom_settings()
    if settings.join_code_enabled:
        st.button(
            "End the lesson",
            key="teacher_end_lesson",
            icon=":material/logout:",
            on_click=_end_lesson,
            help="Signs every student out at once, on every device: they join again next lesson.",
        )
        st.caption(f"A sign-in also ends by itself after {settings.session_hours:g} hours (session_hours).")
    users = {user.id: user for user in identity.people().users()}
    if not users:
        st.caption("Nobody has joined yet.")
        return
    rows = [
        {
            "name": user.name,
            "role": user.role,
            "signs in with": "school account" if user.issuer_subject else "class code",
            "PIN": "set" if user.pin_hash else "not yet",
            "joined": datetime.fromtimestamp(user.created_at).strftime("%Y-%m-%d %H:%M"),
        }
        for user in users.values()
    ]
    if presentation.enabled():
        # Large type, like the console's other tables: `st.table` renders markdown, so names are escaped.
        st.table([{column: as_text(value) for column, value in row.items()} for row in rows], hide_index=True)
    else:
        st.dataframe(rows, hide_index=True, width="stretch", key="teacher_people_table")
    person_id = st.selectbox(
        "Person", list(users), format_func=lambda user_id: _label(users[user_id]), key=PERSON_KEY
    )
    if person_id is None:
        return
    person = users[person_id]
    rename_column, merge_column = st.columns(2)
    rename_column.text_input("New name", key="teacher_person_name", max_chars=40)
    rename_column.button("Rename", key="teacher_rename", on_click=_act, args=("rename", person, users))
    others = [user_id for user_id in users if user_id != person_id]
    if others:
        merge_column.selectbox(
            "Merge into",
            others,
            format_func=lambda user_id: _label(users[user_id]),
            key="teacher_person_into",
        )
        merge_column.button(
            "Merge",
            key="teacher_merge",
            on_click=_act,
            args=("merge", person, users),
            help="Gives this person's runs to the other and removes this name (two accounts of one student).",
        )
    pin_column, remove_column = st.columns(2)
    if person.issuer_subject is None:
        pin_column.button(
            "Clear PIN", key="teacher_clear_pin", on_click=_act, args=("clear_pin", person, users)
        )
    remove_column.button(
        "Remove",
        key="teacher_remove",
        on_click=_act,
        args=("remove", person, users),
        help="Signs them out and frees the name; their runs stay.",
    )
