"""A run's status in words and icons, as the Train page's live view says it to a learner.

The live view says it in two places: the controls (`cnnlab.ui.pages.train.live_controls`) say a request on its
way ("Stopping…") the moment it is clicked, and the refreshing part (`cnnlab.ui.pages.train.live_run`) says
everything else as the run moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from cnnlab.plain_text import as_text
from cnnlab.store import statuses
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.ui.widgets.teacher_actions import teacher_action, teacher_words

STATUS_ICONS: dict[Status, str] = {
    Status.QUEUED: ":material/hourglass_top:",
    Status.STARTING: ":material/rocket_launch:",
    Status.RUNNING: ":material/directions_run:",
    Status.PAUSED: ":material/pause_circle:",
    Status.COMPLETED: ":material/check_circle:",
    Status.STOPPED: ":material/stop_circle:",
    Status.PRUNED: ":material/content_cut:",
    Status.DIVERGED: ":material/error:",
    Status.FAILED: ":material/cancel:",
    Status.INTERRUPTED: ":material/warning:",
}


# The worker's reason for a run stopped on request (`cnnlab.runs.worker.training`, fake jobs in tests).
USER_STOP_REASON = "Stopped by the user"
# The rule for a run a teacher stopped (`RunAccess.continue_run` enforces it).
TEACHER_STOP_RULE = (
    "Only a teacher can continue it; you may fork it (a fork is a new run of yours, within the class limits)."
)
# The sentences of the statuses a click leads to, filled in by `status_message` and, for a run
# followed through its stream, by the browser (`cnnlab/ui/stream/live_run.js`) from the stream's status:
# `{next_epoch}`, `{epochs_planned}`, `{last_epoch}`, `{teacher}` ("your teacher", "a teacher").
SENTENCES: dict[str, str] = {
    "paused_by_teacher": (
        "Paused by {teacher} after epoch {last_epoch}; only a teacher can resume it (you may stop it)."
    ),
    "stopped_by_teacher": "Stopped by {teacher} after epoch {last_epoch}. " + TEACHER_STOP_RULE,
    "stopping": "Stopping: the run ends after its current batch…",
    "pausing": "Pausing: epoch {next_epoch} stops after its current batch…",
    "training": "Training: epoch {next_epoch} of {epochs_planned}.",
    "resuming": "Resuming: training carries on with epoch {next_epoch}…",
    "paused": "Paused after epoch {last_epoch}; resume to carry on from the same optimizer state.",
    "stopped": "Stopped after epoch {last_epoch}: Stop was pressed.",
}
# Early stopping's monitors, as a learner reads them.
MONITOR_WORDS = {
    "val_loss": "the validation loss",
    "val_accuracy": "the validation accuracy",
    "loss": "the training loss",
    "accuracy": "the training accuracy",
}


def pending_request(run: RunRecord) -> str | None:
    """The stop, pause or resume the run's worker has not answered yet (None for an ended run)."""
    return run.control if run.status in statuses.LIVE else None


def said_by_controls(run: RunRecord) -> bool:
    """True when the controls, not the refreshing part, say the run's status: while a request is on
    its way, and while the run is paused (its sentence changes only with a click or a status).

    A click reruns only the controls: the status they say is new at once ("Resuming: …"), where
    the refreshing part's would stay as it was until its next tick (5 s apart while paused)."""
    return bool(pending_request(run)) or run.status == Status.PAUSED


def status_message(run: RunRecord, epochs_planned: int, teacher: str | None = None) -> str:
    """One sentence on where the run is, in words a learner understands.

    `teacher` ("your teacher", "a teacher") says that a teacher paused or stopped it (see `cnnlab.ui.widgets.teacher_actions`).
    """
    next_epoch = min(run.last_epoch + 1, epochs_planned)
    words: dict[str, object] = {
        "next_epoch": next_epoch,
        "epochs_planned": epochs_planned,
        "last_epoch": run.last_epoch,
        "teacher": teacher or "",
    }
    if teacher and run.status == Status.PAUSED and run.control != "resume":
        return SENTENCES["paused_by_teacher"].format(**words)
    if teacher and run.status == Status.STOPPED:
        if run.started_at is None:
            return f"Stopped by {teacher} before it started. {TEACHER_STOP_RULE}"
        return SENTENCES["stopped_by_teacher"].format(**words)
    if run.control == "stop" and run.status in statuses.LIVE:
        return SENTENCES["stopping"]
    if run.control == "prune" and run.status in statuses.LIVE:
        return "Pruning: its sweep stops it after its current batch (it fell behind the other trials)…"
    if run.status == Status.QUEUED:
        return f"Queued: position {run.queue_position or 1} in the queue; it starts when a worker is free."
    if run.status == Status.STARTING:
        return "Starting: preparing the data and the model…"
    if run.status == Status.RUNNING and run.control == "pause":
        return SENTENCES["pausing"].format(**words)
    if run.status == Status.RUNNING:
        return SENTENCES["training"].format(**words)
    if run.status == Status.PAUSED and run.control == "resume":
        return SENTENCES["resuming"].format(**words)
    if run.status == Status.PAUSED:
        return SENTENCES["paused"].format(**words)
    if run.status == Status.COMPLETED:
        accuracy = run.result("test_accuracy")
        tested = f"; test accuracy {accuracy:.1%}" if accuracy is not None else ""
        if run.last_epoch < epochs_planned:
            return (
                f"Completed after {run.last_epoch} of {epochs_planned} epochs{tested}. {_stopped_early(run)}"
            )
        return f"Completed after {run.last_epoch} epochs{tested}."
    reason = run.reason or ""
    if run.status == Status.STOPPED:
        # Say who stopped it, once: "Stopped after epoch 21. Stopped by the user after 21 epoch(s)."
        # told the same thing twice. A run cancelled in the queue says "Stopped before it started.".
        if run.started_at is None:
            said = "Stopped before it started."
            return said if reason in ("", said) else f"{said} {as_text(reason)}"
        if not reason or reason.startswith(USER_STOP_REASON):
            return SENTENCES["stopped"].format(**words)
        return f"Stopped after epoch {run.last_epoch}: {as_text(reason)}"
    hint = f" **What to do:** {as_text(run.hint)}" if run.hint else ""
    return {
        Status.DIVERGED: f"Diverged: CNN Lab stopped this run. {as_text(reason)}{hint}",
        Status.FAILED: f"Failed: {as_text(reason)}{hint}",
        Status.PRUNED: f"{as_text(reason) or f'Pruned after epoch {run.last_epoch}.'} Its sweep stopped it as "
        "losing and gave its worker to the next setting; continue it to train it to the end.",
        Status.INTERRUPTED: f"Interrupted: {as_text(reason) or 'the server restarted while it ran.'} Continue it to carry on.",
    }.get(run.status, str(run.status))


def _stopped_early(run: RunRecord) -> str:
    """Why a completed run ended before its planned epochs: CNN Lab's early stopping, in plain words."""
    settings = run.training()
    if not settings.early_stopping:
        return "It ended before its planned epochs."
    watched = MONITOR_WORDS.get(settings.early_stopping_monitor, settings.early_stopping_monitor)
    return (
        f"CNN Lab stopped it early (early stopping): {watched} had not improved for "
        f"{settings.early_stopping_patience} epochs."
    )


def status_sentence(run: RunRecord) -> str:
    """`status_message` of `run` as this viewer reads it (who the teacher is to them, if one acted)."""
    teacher = teacher_words(run) if teacher_action(run) else None
    return status_message(run, run.training().epochs, teacher)


def stream_words(run: RunRecord) -> dict[str, Any]:
    """What the browser needs to say `run`'s status in these words as its stream changes it."""
    return {"sentences": SENTENCES, "teacher": teacher_words(run), "user_stop_reason": USER_STOP_REASON}


def show_status(run: RunRecord) -> None:
    """The status sentence in the colour of its news: red for a failure, green for a finish, else blue."""
    message = status_sentence(run)
    show: dict[Status, Callable[..., Any]] = {
        Status.DIVERGED: st.error,
        Status.FAILED: st.error,
        Status.COMPLETED: st.success,
    }
    show.get(run.status, st.info)(message)
