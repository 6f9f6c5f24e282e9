"""Who is using this browser session: the signed-in `User`, or the local user without sign-in."""

from __future__ import annotations

from cnnlab.classroom.users import LOCAL_USER, User


def current_user() -> User:
    """The user of this session (the local user, who owns everything, when no sign-in is configured)."""
    return LOCAL_USER
