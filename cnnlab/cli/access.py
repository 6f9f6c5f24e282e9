"""Who the command line acts as: `python -m cnnlab --as OWNER [--role ROLE] COMMAND ...`.

Without `--as` the CLI acts as the local user, who reads and controls every run (CNN Lab as it
always was). With `--as user:3f9a...` (the owner id of a user's runs, as `python -m cnnlab people`
lists them) it reads and changes runs through `cnnlab.classroom.access.RunAccess` exactly as that
user would on the pages: a student lists only their own and shared runs, cannot stop or read
another's, and their runs are checked against the class budget of the classroom file.

`--as` acts as a user; it is not a sign-in: nothing is asked of the user it names. So only the
server's operator, the account that owns `$CNNLAB_HOME` (who can read the store anyway), may use it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.classroom.users import LOCAL_USER, Role, User
from cnnlab.errors import CnnLabError

if TYPE_CHECKING:  # Imported when used: `python -m cnnlab presets` stays quick.
    from cnnlab.classroom.access import RunAccess
    from cnnlab.classroom.limits import Limits
    from cnnlab.runs.queue.scheduler import Scheduler
    from cnnlab.store.run_store import Store

OPTION = "--as"
ROLE_OPTION = "--role"
DESTINATION = "acting_user"
ROLE_DESTINATION = "acting_role"
_USER_ID = re.compile(r"[^\s]{1,200}")


class ActingUserError(CnnLabError):
    """`--as` or `--role` names no valid user or role."""


def add_option(parser: argparse.ArgumentParser) -> None:
    """Add `--as OWNER` and `--role ROLE` to the top-level parser (before the command)."""
    parser.add_argument(
        OPTION,
        dest=DESTINATION,
        default=None,
        metavar="OWNER",
        help="act as the user whose runs are owned by OWNER (an id `people` lists), with what they may do in "
        "the browser. This acts as a user; it is not a sign-in: only the server's operator (the account that "
        "owns $CNNLAB_HOME) may use it. Default: the local user, who may do everything",
    )
    parser.add_argument(
        ROLE_OPTION,
        dest=ROLE_DESTINATION,
        default=None,
        metavar="ROLE",
        help="the role of the --as user: student or teacher (default: teacher for an OWNER that starts with "
        "'teacher:', else student)",
    )


def add_people_command(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `people`: the class's users (id, role, how they sign in, name), the ids `--as` takes."""
    people = subcommands.add_parser(
        "people", help="list the class's users: the ids --as takes, roles and names"
    )
    people.add_argument("--json", dest="as_json", action="store_true", help="print one JSON document instead")
    people.set_defaults(handler=_command_people)


def _command_people(arguments: argparse.Namespace) -> int:
    from cnnlab.store.run_store import Store, default_home

    users = Store(default_home()).people.users()
    described = [
        {
            "id": user.id,
            "role": str(user.role),
            "signs_in_with": "class code" if user.issuer_subject is None else "school account",
            "name": user.name,
        }
        for user in users
    ]
    if arguments.as_json:
        print(json.dumps(described))
        return 0
    print(f"{'ID':<22} {'ROLE':<8} {'SIGNS IN WITH':<15} NAME")
    for row in described:
        print(f"{row['id']:<22} {row['role']:<8} {row['signs_in_with']:<15} {row['name']}")
    return 0


def parse_user(owner: str | None, role_text: str | None = None) -> User:
    """The user `--as OWNER [--role ROLE]` names; the local user without `--as`."""
    if owner is None:
        if role_text is not None:
            raise ActingUserError(f"{ROLE_OPTION} {role_text} needs {OPTION} OWNER: whose role is it?")
        return LOCAL_USER
    roles = {role.value: role for role in (Role.STUDENT, Role.TEACHER)}
    default = Role.TEACHER.value if owner.startswith("teacher:") else Role.STUDENT.value
    role = roles.get((role_text or default).strip().lower())
    if role is None:
        raise ActingUserError(
            f"{ROLE_OPTION} must be one of {', '.join(roles)}; got {role_text!r}. For example: "
            f"{OPTION} lee {ROLE_OPTION} teacher."
        )
    if not _USER_ID.fullmatch(owner):
        raise ActingUserError(
            f"{OPTION} takes the owner id of the user's runs, without spaces (e.g. user:3f9a0c1d2e4b5a69); "
            f"got {owner!r}."
        )
    require_operator(_home())
    return User(id=owner, name=owner.partition(":")[2] or owner, role=role)


def _home() -> Path:
    from cnnlab.store.run_store import default_home

    return default_home()


def require_operator(home: Path) -> None:
    """Refuse `--as` (ActingUserError) unless this process runs as the account that owns `home`.

    A folder not made yet has no operator to protect: whoever makes it will own it.
    """
    if not hasattr(os, "geteuid"):  # pragma: no cover - Windows: one account runs the server.
        return
    try:
        owner = home.stat().st_uid
    except FileNotFoundError:
        return
    if owner != os.geteuid():
        raise ActingUserError(
            f"{OPTION} acts as another user and is not a sign-in, so only the server's operator (the account "
            f"that owns {home}, uid {owner}) may use it; this is uid {os.geteuid()}. Sign in through the browser "
            "instead, or ask the operator."
        )


def class_limits(store: Store) -> Limits:
    """The class budget from the classroom file the server reads (`cnnlab.classroom.settings`)."""
    from cnnlab.classroom.settings import load_settings

    return load_settings(store.home).limits


def runs(
    arguments: argparse.Namespace, *, owner: str | None = None, scheduler: Scheduler | None = None
) -> RunAccess:
    """The runs of `$CNNLAB_HOME` (or of `scheduler`'s store) as the CLI's acting user may use them.

    `owner` names the local user's new runs (the CLI's `--owner`, "cli" by default), as before `--as`.
    Changes go through `scheduler`, else through an unstarted one without a warm worker.
    """
    from cnnlab.classroom.access import RunAccess
    from cnnlab.store.run_store import Store, default_home

    store = scheduler.store if scheduler is not None else Store(default_home())
    user = parse_user(getattr(arguments, DESTINATION, None), getattr(arguments, ROLE_DESTINATION, None))
    if user.role == Role.LOCAL and owner is not None:
        user = User(id=owner, name=owner, role=Role.LOCAL)
    return RunAccess(store, user, class_limits(store) if user.role == Role.STUDENT else None, scheduler)
