"""Whose run this is: the owner's display name on every page that shows one run, and in run tables.

Without sign-in there is one user and nothing is said. With a class, a page showing a run says
"Your run", or "Ada's run" (a teacher looking at a student's run, or a student at a shared one).
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from cnnlab.classroom.owner_names import owner_name
from cnnlab.classroom.users import Role
from cnnlab.plain_text import as_text
from cnnlab.store.records import RunRecord
from cnnlab.ui import server


def owner_names() -> dict[str, str]:
    """Every user's display name by user id (the class's registered users, `people.display_names`)."""
    return server.store().user_names()


def whose(run: RunRecord, names: Mapping[str, str] | None = None) -> str:
    """The run's owner as a page says it: "Your run", "Ada's run" (plain text, not yet escaped)."""
    if run.owner == server.store().user.id:
        return "Your run"
    owner = owner_name(run.owner, owner_names() if names is None else names)
    return f"{owner}'s run"


def say_whose(run: RunRecord) -> None:
    """A caption naming whose run this is (and that it is shared); nothing without sign-in."""
    if server.store().user.role == Role.LOCAL:
        return
    shared = ", shared with the class" if run.shared else ""
    st.caption(f":material/person: {as_text(whose(run))}{shared}.")
