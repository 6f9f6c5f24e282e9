"""What a teacher did to a student's run, as the run's pages say it: "Paused by your teacher".

The store logs who asked for a stop, pause or resume when it was not the run's owner
(`Store.requested_by`); these helpers turn that into the words the Train and Runs pages show.
"""

from __future__ import annotations

from cnnlab.classroom.access import TEACHER
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.ui import server
from cnnlab.ui.session import identity


def teacher_action(run: RunRecord) -> str | None:
    """ "pause" or "stop" when a teacher paused or stopped the run as it now is (not its owner), else None."""
    action = {Status.PAUSED: "pause", Status.STOPPED: "stop"}.get(run.status)
    if action is None or server.store().requested_by(run.id, action) != TEACHER:
        return None
    return action


def teacher_words(run: RunRecord) -> str:
    """Who the teacher is to the viewer: "your teacher" to the run's owner, "a teacher" to others."""
    return "your teacher" if identity.current_user().id == run.owner else "a teacher"


def reason_line(run: RunRecord) -> str:
    """The run's recorded reason, told by who ended it: a teacher's stop is not "Stopped by the user"."""
    if teacher_action(run) == "stop":
        when = "before it started" if run.started_at is None else f"after epoch {run.last_epoch}"
        return f"Stopped by {teacher_words(run)} {when}."
    return run.reason or ""
