"""Errors a user can cause, with messages safe to show them.

Every message says what was wrong, the value received, and what to do. Pages catch
`CnnLabError` only; anything else is a bug.
"""

from __future__ import annotations


class CnnLabError(Exception):
    """Base class of every error a user can cause."""


class SpecError(CnnLabError):
    """A model, data or training specification cannot be read (bad JSON, unknown key or type)."""


class ArchitectureError(CnnLabError):
    """A model specification is readable but cannot be built or trained as it stands.

    `problems` holds every problem found, each naming its layer.
    """

    def __init__(self, message: str, problems: tuple = ()) -> None:
        super().__init__(message)
        self.problems = problems


class DatasetUnavailable(CnnLabError):
    """A dataset cannot be loaded here (offline, or its file is missing)."""


class DatasetError(CnnLabError):
    """A dataset was found but cannot be used (too few classes or images, bad options)."""


class ImageError(CnnLabError):
    """An image cannot be decoded safely (corrupt, too large, not an image)."""


class ArchiveError(CnnLabError):
    """An uploaded archive is unsafe or unreadable (path traversal, zip bomb, corrupt)."""


class RunError(CnnLabError):
    """A training run cannot be started, found or changed as asked."""


class AccessError(RunError):
    """A user asked to read or change a run that is not theirs (another student's, or a shared run to change)."""


class BudgetError(CnnLabError):
    """A run asks for more than the class allows (queued runs, epochs, parameters, training images)."""


class ClassroomError(CnnLabError):
    """The classroom configuration (classroom.toml) cannot be used, or a sign-in is refused."""


class SignInError(ClassroomError):
    """A sign-in is refused: a wrong class code or teacher password, a bad name, a forged or edited identity."""


class SweepError(CnnLabError):
    """A sweep cannot be planned or found as asked (a refused value, too many runs, an unknown sweep)."""
