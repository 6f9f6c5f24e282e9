"""Who acts on runs: a `User` with a role.

Without sign-in configured, CNN Lab has one user, `LOCAL_USER`, who owns and controls everything
(the tool as it always was). With sign-in, a teacher sees and controls every run and a student only
their own, plus runs a teacher shared with the class (read-only).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    """What a user may do with other people's runs."""

    LOCAL = "local"  # the only user of a CNN Lab without sign-in: owns everything
    TEACHER = "teacher"  # sees and controls every run, shares runs and exercises
    STUDENT = "student"  # sees and controls their own runs, reads shared ones

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class User:
    """A signed-in person (or the local user): a stable id (the owner column of their runs) and a name."""

    id: str
    name: str
    role: Role

    @property
    def sees_everything(self) -> bool:
        """True for the local user and teachers: every run is theirs to read and control."""
        return self.role in (Role.LOCAL, Role.TEACHER)

    @property
    def is_teacher(self) -> bool:
        """True for a teacher (the local user has no classroom to teach)."""
        return self.role == Role.TEACHER


LOCAL_USER = User(id="local", name="Local user", role=Role.LOCAL)
