"""A run's status in words and icons, as the Train page's live view says it to a learner.

The live view says it in two places: the controls (`cnnlab.ui.pages.train.live_controls`) say a request on its
way ("Stopping…") the moment it is clicked, and the refreshing part (`cnnlab.ui.pages.train.live_run`) says
everything else as the run moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from cnnlab.store import statuses
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status

STATUS_ICONS: dict[Status, str] = {
    Status.QUEUED: ":material/hourglass_top:",
    Status.STARTING: ":material/rocket_launch:",
    Status.RUNNING: ":material/directions_run:",
    Status.PAUSED: ":material/pause_circle:",
    Status.COMPLETED: ":material/check_circle:",
    Status.STOPPED: ":material/stop_circle:",
    Status.DIVERGED: ":material/error:",
    Status.FAILED: ":material/cancel:",
    Status.INTERRUPTED: ":material/warning:",
}


def pending_request(run: RunRecord) -> str | None:
    """The stop, pause or resume the run's worker has not answered yet (None for an ended run)."""
    return run.control if run.status in statuses.LIVE else None


def status_message(run: RunRecord, epochs_planned: int) -> str:
    """One sentence on where the run is, in words a learner understands."""
    if run.control == "stop" and run.status in statuses.LIVE:
        return "Stopping: the run ends after its current batch…"
    if run.status == Status.QUEUED:
        return f"Queued: position {run.queue_position or 1} in the queue; it starts when a worker is free."
    if run.status == Status.STARTING:
        return "Starting: preparing the data and the model…"
    if run.status == Status.RUNNING and run.control == "pause":
        return f"Pausing: epoch {min(run.last_epoch + 1, epochs_planned)} stops after its current batch…"
    if run.status == Status.RUNNING:
        return f"Training: epoch {min(run.last_epoch + 1, epochs_planned)} of {epochs_planned}."
    if run.status == Status.PAUSED:
        return f"Paused after epoch {run.last_epoch}; resume to carry on from the same optimizer state."
    if run.status == Status.COMPLETED:
        accuracy = run.result("test_accuracy")
        early = " (stopped early: no more progress)" if run.last_epoch < epochs_planned else ""
        tested = f"; test accuracy {accuracy:.1%}" if accuracy is not None else ""
        return f"Completed after {run.last_epoch} epochs{early}{tested}."
    reason = run.reason or ""
    hint = f" {run.hint}" if run.hint else ""
    if run.status == Status.STOPPED:
        # A run cancelled in the queue has the reason "Stopped before it started.": say it once.
        said = (
            "Stopped before it started."
            if run.started_at is None
            else f"Stopped after epoch {run.last_epoch}."
        )
        return said if reason in ("", said) else f"{said} {reason}"
    return {
        Status.DIVERGED: f"Diverged: {reason}{hint}",
        Status.FAILED: f"Failed: {reason}{hint}",
        Status.INTERRUPTED: f"Interrupted: {reason or 'the server restarted while it ran.'} Continue it to carry on.",
    }.get(run.status, str(run.status))


def show_status(run: RunRecord) -> None:
    """The status sentence in the colour of its news: red for a failure, green for a finish, else blue."""
    message = status_message(run, run.training().epochs)
    show: dict[Status, Callable[..., Any]] = {
        Status.DIVERGED: st.error,
        Status.FAILED: st.error,
        Status.COMPLETED: st.success,
    }
    show.get(run.status, st.info)(message)
