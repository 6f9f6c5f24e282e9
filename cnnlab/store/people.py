"""The store's people: the users of a class and their sign-in sessions (the only SQL about them).

A user has a stable random id (the owner column of their runs), a display name that is only a
label, a role, and either a PIN hash (someone who joined with the class code or teacher password)
or an OpenID issuer and subject (someone who signed in with a school account). Names of users who
joined with a code are unique in the class after `name_key` (NFKC, case and look-alike letters
folded, spaces collapsed), so "ALAN", "alan", "Ａｌａｎ" and "Аlаn" (Cyrillic а) are one name.

A session is what a joined browser's cookie refers to: the cookie holds a random token whose hash
is kept here, so sign-out, "end the lesson", a change of the class code or secret, or the end of
its lifetime ends it on the server, and a copied cookie is worth nothing after. `cnnlab.classroom`
holds the rules (PINs, lifetimes, messages); this module only keeps and reads the rows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from cnnlab import look_alikes
from cnnlab.store.database import Database

_USER_COLUMNS = "id, name, name_key, role, pin_hash, issuer_subject, created_at, failed_pins, locked_until"
_SESSION_COLUMNS = "s.id, s.user_id, s.class_key, s.created_at, s.expires_at, s.ended_at, s.end_reason"


def name_key(name: str) -> str:
    """The form in which two display names are compared: NFKC, case and look-alike letters folded
    (`cnnlab.look_alikes.skeleton`: Cyrillic "А" is Latin "A"), spaces collapsed."""
    return " ".join(look_alikes.skeleton(name).split())


@dataclass(frozen=True)
class StoredUser:
    """A user's row: `name_key` is None for an OpenID user (whose names need not be unique)."""

    id: str
    name: str
    name_key: str | None
    role: str
    pin_hash: str | None
    issuer_subject: str | None
    created_at: float
    failed_pins: int = 0
    locked_until: float | None = None


@dataclass(frozen=True)
class StoredSession:
    """A session's row and its user (None when the user was removed meanwhile)."""

    id: str
    user_id: str
    class_key: str
    created_at: float
    expires_at: float
    ended_at: float | None
    end_reason: str | None
    user: StoredUser | None


def _user(row: sqlite3.Row) -> StoredUser:
    return StoredUser(**dict(zip(row.keys(), tuple(row), strict=True)))


class PeopleTable:
    """The users and sessions tables of one store (`store.people`)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # Users.
    def add_user(self, user: StoredUser) -> bool:
        """Add a user; False when the id, the name (its `name_key`) or the issuer and subject is taken."""
        try:
            with self._database.transaction() as connection:
                connection.execute(
                    f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user.id,
                        user.name,
                        user.name_key,
                        user.role,
                        user.pin_hash,
                        user.issuer_subject,
                        user.created_at,
                        user.failed_pins,
                        user.locked_until,
                    ),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def _one_user(self, condition: str, value: str) -> StoredUser | None:
        query = f"SELECT {_USER_COLUMNS} FROM users WHERE {condition} = ?"
        row = self._database.connection().execute(query, (value,)).fetchone()
        return None if row is None else _user(row)

    def user(self, user_id: str) -> StoredUser | None:
        """The user with this id, if there is one."""
        return self._one_user("id", user_id)

    def user_named(self, key: str) -> StoredUser | None:
        """The user whose name has this `name_key`, if there is one."""
        return self._one_user("name_key", key)

    def user_by_subject(self, issuer_subject: str) -> StoredUser | None:
        """The OpenID user with this issuer and subject, if they signed in before."""
        return self._one_user("issuer_subject", issuer_subject)

    def users(self) -> list[StoredUser]:
        """Every user, by name."""
        rows = self._database.connection().execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name, id")
        return [_user(row) for row in rows.fetchall()]

    def display_names(self) -> dict[str, str]:
        """Each user id's display name."""
        rows = self._database.connection().execute("SELECT id, name FROM users").fetchall()
        return {str(row["id"]): str(row["name"]) for row in rows}

    def set_pin(self, user_id: str, pin_hash: str | None) -> None:
        """Set (or with None, clear, so the next join with the name chooses one) a user's PIN; failures reset."""
        with self._database.transaction() as connection:
            connection.execute(
                "UPDATE users SET pin_hash = ?, failed_pins = 0, locked_until = NULL WHERE id = ?",
                (pin_hash, user_id),
            )

    def record_failed_pin(self, user_id: str, locked_until: float | None) -> None:
        """Count a wrong PIN for the user, and lock the name until `locked_until` when given."""
        with self._database.transaction() as connection:
            connection.execute(
                "UPDATE users SET failed_pins = failed_pins + 1, locked_until = COALESCE(?, locked_until) "
                "WHERE id = ?",
                (locked_until, user_id),
            )

    def clear_failed_pins(self, user_id: str) -> None:
        """Forget a user's wrong PINs after a right one."""
        with self._database.transaction() as connection:
            connection.execute(
                "UPDATE users SET failed_pins = 0, locked_until = NULL WHERE id = ?", (user_id,)
            )

    def rename(self, user_id: str, name: str, key: str | None) -> bool:
        """Give a user another display name; False when another user has that name."""
        try:
            with self._database.transaction() as connection:
                connection.execute(
                    "UPDATE users SET name = ?, name_key = ? WHERE id = ?", (name, key, user_id)
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def merge(self, from_id: str, into_id: str) -> int:
        """Give `from_id`'s runs and sweeps to `into_id` and remove `from_id` (its sessions end); runs moved."""
        with self._database.transaction() as connection:
            moved = connection.execute(
                "UPDATE runs SET owner = ? WHERE owner = ?", (into_id, from_id)
            ).rowcount
            connection.execute("UPDATE sweeps SET owner = ? WHERE owner = ?", (into_id, from_id))
            connection.execute("DELETE FROM users WHERE id = ?", (from_id,))
        return int(moved)

    def remove(self, user_id: str) -> None:
        """Remove a user and their sessions; their runs stay (a teacher still sees them)."""
        with self._database.transaction() as connection:
            connection.execute("DELETE FROM users WHERE id = ?", (user_id,))

    # Sessions.
    def start_session(
        self,
        session_id: str,
        user_id: str,
        *,
        ticket_hash: str,
        ticket_expires_at: float,
        class_key: str,
        now: float,
        expires_at: float,
    ) -> None:
        """Record a new session of `user_id`, whose cookie a browser gets by redeeming the ticket once."""
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT INTO sessions (id, user_id, ticket_hash, ticket_expires_at, class_key, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, user_id, ticket_hash, ticket_expires_at, class_key, now, expires_at),
            )

    def open_session(
        self, session_id: str, user_id: str, *, class_key: str, now: float, expires_at: float
    ) -> None:
        """Record session `session_id` of `user_id` (an OpenID sign-in's, which has no ticket nor cookie
        of ours) unless it is recorded already, ended or not."""
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO sessions (id, user_id, class_key, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (session_id, user_id, class_key, now, expires_at),
            )

    def redeem_ticket(self, ticket_hash: str, token_hash: str, now: float) -> StoredSession | None:
        """Exchange a session's unused, unexpired ticket for its cookie token (kept as `token_hash`)."""
        with self._database.transaction() as connection:
            row = connection.execute(
                "SELECT id FROM sessions WHERE ticket_hash = ? AND ticket_expires_at >= ? AND ended_at IS NULL",
                (ticket_hash, now),
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE sessions SET ticket_hash = NULL, ticket_expires_at = NULL, token_hash = ? WHERE id = ?",
                (token_hash, row["id"]),
            )
        return self.session(str(row["id"]))

    def _one_session(self, condition: str, value: str) -> StoredSession | None:
        connection = self._database.connection()
        row = connection.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE {condition} = ?", (value,))
        found = row.fetchone()
        if found is None:
            return None
        values = dict(zip(found.keys(), tuple(found), strict=True))
        return StoredSession(**values, user=self.user(str(found["user_id"])))

    def session(self, session_id: str) -> StoredSession | None:
        """The session with this id, if there is one."""
        return self._one_session("s.id", session_id)

    def session_by_token(self, token_hash: str) -> StoredSession | None:
        """The session whose cookie token has this hash, if there is one."""
        return self._one_session("s.token_hash", token_hash)

    def end_session(self, session_id: str, reason: str, now: float) -> None:
        """End one session (if it is not ended already) for `reason`."""
        with self._database.transaction() as connection:
            connection.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                (now, reason, session_id),
            )

    def end_sessions(self, reason: str, now: float, *, role: str | None = None) -> int:
        """End every open session (of users with `role`, when given) for `reason`; how many ended."""
        condition = "" if role is None else " AND user_id IN (SELECT id FROM users WHERE role = ?)"
        with self._database.transaction() as connection:
            cursor = connection.execute(
                f"UPDATE sessions SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL{condition}",
                (now, reason) if role is None else (now, reason, role),
            )
        return int(cursor.rowcount)

    # Moments of the class.
    def set_mark(self, name: str, moment: float) -> None:
        """Remember when something happened to the whole class (such as "lesson ended")."""
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT INTO class_marks (name, time) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET time = ?",
                (name, moment, moment),
            )

    def mark(self, name: str) -> float | None:
        """When `name` last happened to the class, or None."""
        row = self._database.connection().execute("SELECT time FROM class_marks WHERE name = ?", (name,))
        found = row.fetchone()
        return None if found is None else float(found["time"])
