"""The teacher's roster: rename, merge or remove the people of a class, or clear a forgotten PIN.

Removing or merging a user deletes their row, which ends their sign-in sessions (the store's
foreign key cascades); their runs stay, a merged user's runs and sweeps now owned by the other.
"""

from __future__ import annotations

from cnnlab.classroom import joining
from cnnlab.errors import SignInError
from cnnlab.store.people import PeopleTable, StoredUser, name_key


def _existing(people: PeopleTable, user_id: str) -> StoredUser:
    found = people.user(user_id)
    if found is None:
        raise SignInError(f"No user {user_id!r} in this class (removed meanwhile?). Reload the page.")
    return found


def rename(people: PeopleTable, user_id: str, new_name: str) -> str:
    """Give a user another display name (checked as at joining); the cleaned name. SignInError if taken."""
    user = _existing(people, user_id)
    cleaned = joining.clean_name(new_name)
    key = None if user.name_key is None else name_key(cleaned)
    if not people.rename(user_id, cleaned, key):
        raise SignInError(
            f"The name {cleaned!r} is already taken in this class; choose another, or merge the two."
        )
    return cleaned


def merge(people: PeopleTable, from_id: str, into_id: str) -> int:
    """Move every run and sweep of `from_id` to `into_id` and remove `from_id`; how many runs moved."""
    if from_id == into_id:
        raise SignInError("Choose two different people to merge.")
    _existing(people, from_id)
    _existing(people, into_id)
    return people.merge(from_id, into_id)


def remove(people: PeopleTable, user_id: str) -> None:
    """Remove a user and end their sessions; their runs stay (the teacher still sees them)."""
    _existing(people, user_id)
    people.remove(user_id)


def clear_pin(people: PeopleTable, user_id: str) -> None:
    """Forget a user's PIN: the next person to join with the name chooses a new one (tell only its owner)."""
    _existing(people, user_id)
    people.set_pin(user_id, None)
