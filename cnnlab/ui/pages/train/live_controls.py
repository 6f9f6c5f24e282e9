"""The live view's controls (Stop, Pause or Resume, Continue, Fork) in a fragment of their own.

The part of the Train page that follows a run redraws on a timer (`cnnlab.ui.pages.train.live_run`); the
controls sit apart from it, so a tick does not send them again, and a click reruns only them: the
click's callback writes the request to the store before anything is drawn, and the rerun says it
("Stopping…", "Resuming…") at once, whatever the other viewers cost the server. The controls also
say a paused run's status, so that a Resume replaces "Paused after epoch 2" in the click's own
rerun instead of at the next tick of the refreshing part (5 s apart while paused). The controls are drawn again
only when what they show changes: the refreshing part compares the run with `controls_state`
of the last drawing and reruns the page when they differ (a status change, another session's
request).

While many sessions follow a run its refresh is stretched (every 2 or 3 s), so the session that
clicked follows its own request closely: after the click the fragment watches the run for up to
`answer_seconds` and redraws the page the moment the worker has answered ("Stopped after epoch").

A run followed through its stream has Stop and Pause or Resume drawn by the browser instead
(`cnnlab.ui.stream.live_chart.controls`): a click is sent to the server's control route and every
viewer sees the answer through the stream, with no script run at all; the status is said beside
the progress bar, from the stream. Continue and Fork stay Streamlit popovers: they are enabled once
the run has ended, when the page reruns once.
"""

from __future__ import annotations

import time

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cnnlab.classroom import exercises
from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.store import statuses
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.ui import server
from cnnlab.ui.pages.train import run_cache
from cnnlab.ui.pages.train.run_status import (
    STATUS_ICONS,
    TEACHER_STOP_RULE,
    pending_request,
    said_by_controls,
    show_status,
)
from cnnlab.ui.session import identity, state
from cnnlab.ui.stream import live_chart
from cnnlab.ui.stream.run_feed import status_of
from cnnlab.ui.widgets import run_owner
from cnnlab.ui.widgets.teacher_actions import teacher_action

CONTROL_ERROR = "live_control_error"  # session state: why the last control click was refused
AWAITING = "live_control_awaiting"  # session state: the run whose answer to this session's click is awaited
DRAWN = "live_controls_drawn"  # session state: `controls_state` of the run as the controls last drew it
ANSWER_STEP_SECONDS = 0.1  # how often the clicking session looks for the worker's answer
HELD_HELP = "Your teacher paused this run: only your teacher can resume it."


def controls_state(run: RunRecord) -> tuple[str, str, str | None]:
    """What the controls are drawn from; when it changes, they must be drawn again."""
    return (run.id, run.status.value, pending_request(run))


def request(action: str, run_id: str) -> None:
    """A control button's click callback: ask the run's worker to stop, pause or resume, at once.

    It runs before the controls redraw, so the request is in the store whatever the redraw costs,
    and the redraw shows it ("Stopping…"). A request the run can no longer take is said, not raised.
    """
    scheduler = server.scheduler()
    st.session_state.pop(CONTROL_ERROR, None)
    try:
        {"stop": scheduler.stop, "pause": scheduler.pause, "resume": scheduler.resume}[action](run_id)
    except CnnLabError as error:
        st.session_state[CONTROL_ERROR] = str(error)
    else:
        st.session_state[AWAITING] = run_id


@st.fragment
def controls(run_id: str, answer_seconds: float, streamed: bool = False) -> None:
    """The run's name, a request on its way, and the buttons; rerun alone when one is clicked.

    `answer_seconds`: how long, after this session's own click, to watch for the worker's answer
    before leaving it to the live view's next tick (0: not at all, the tick comes soon enough).
    `streamed`: the run is followed through its stream: Stop, Pause and Resume are drawn by the
    browser and the status is said by the live view, both from the stream.
    """
    run = server.store().get_run(run_id)
    # The run's name and its controls share one row, so the live view below starts high on the screen.
    name_column, buttons_column = st.columns([2, 3], vertical_alignment="center")
    with name_column:
        # A streamed run pauses and resumes with no rerun: its icon would go stale, and the status
        # row below says the same in words.
        live = streamed and run.status in (Status.RUNNING, Status.PAUSED)
        icon = "" if live else STATUS_ICONS.get(run.status, "")
        st.subheader(f"{icon} {as_text(run.name)}".strip())
        run_owner.say_whose(run)
    with buttons_column:
        row = st.container(horizontal=True, key="run_controls")
        if streamed:
            with row:
                _streamed_requests(run)
        else:
            _requests(row, run)
        _continue_and_fork(row, run)
    if said_by_controls(run) and not streamed:
        show_status(run)  # "Stopping: …", "Resuming: …", said here so that the click's rerun says it
    if CONTROL_ERROR in st.session_state:
        st.error(as_text_lines(st.session_state.pop(CONTROL_ERROR)))
    st.session_state[DRAWN] = controls_state(run)
    if st.session_state.pop(AWAITING, None) == run_id and answer_seconds > 0:
        _await_answer(run, answer_seconds)


def _await_answer(run: RunRecord, seconds: float) -> None:
    """Redraw the page as soon as the run's worker answers the request (or leave it to the tick)."""
    reader = server.store()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(ANSWER_STEP_SECONDS)  # The request is on screen already: this only waits for news.
        if controls_state(reader.get_run(run.id)) != controls_state(run):
            st.rerun()


def _streamed_requests(run: RunRecord) -> None:
    """Stop and Pause or Resume drawn by the browser from the run's stream, sent to the control route."""
    live_chart.controls(
        server.store().home,
        identity.current_user().id,
        run.id,
        status_of(server.store(), run, None),  # The stream's history, which follows, says it afresh.
        may_control=server.store().may_control(run),
        sees_everything=identity.current_user().sees_everything,
        held_help=HELD_HELP,
    )


def _requests(row: DeltaGenerator, run: RunRecord) -> None:
    """Stop and Pause or Resume as Streamlit buttons, as the run's status allows (a polled view)."""
    # One button in one place for each request: while the worker has not yet answered it, its
    # progress, disabled.
    pending = pending_request(run)
    row.button(
        "Stopping…" if pending == "stop" else "Stop",
        key="stop_run",
        disabled=not run.is_active or pending == "stop",
        on_click=request,
        args=("stop", run.id),
    )
    if pending in ("pause", "resume"):
        label = "Pausing…" if pending == "pause" else "Resuming…"
        row.button(label, key="control_pending", disabled=True)
    elif run.status == Status.PAUSED:
        # A run a teacher paused waits for the teacher: its owner sees why Resume is off.
        held = not identity.current_user().sees_everything and teacher_action(run) == "pause"
        row.button(
            "Resume",
            key="resume_run",
            disabled=bool(pending) or held,
            on_click=request,
            args=("resume", run.id),
            help=HELD_HELP if held else None,
        )
    else:
        row.button(
            "Pause",
            key="pause_run",
            disabled=run.status != Status.RUNNING or bool(pending),
            on_click=request,
            args=("pause", run.id),
        )


def _continue_and_fork(row: DeltaGenerator, run: RunRecord) -> None:
    """Continue and Fork, as popovers: enabled for an ended run (as the access rule allows)."""
    # A disabled popover cannot open, so its widgets are not drawn.
    # A run a teacher stopped waits for the teacher, like one a teacher paused; its owner may fork it.
    stopped = not identity.current_user().sees_everything and teacher_action(run) == "stop"
    continuable = run.status in statuses.CONTINUABLE and not stopped
    with row.popover(
        "Continue",
        disabled=not continuable,
        help=f"Your teacher stopped this run. {TEACHER_STOP_RULE}" if stopped else None,
    ):
        if continuable:
            extra = st.number_input("More epochs", 1, 200, 5, key="continue_epochs")
            if exercises.leaves_on_continue(run, run.last_epoch + int(extra)):
                st.warning(
                    f"Its exercise fixes {run.training().epochs} epochs: continuing past them takes this run "
                    "out of the exercise and its leaderboard.",
                    icon=":material/logout:",
                )
            if st.button("Continue training", key="continue_run"):
                try:
                    server.scheduler().continue_run(run.id, int(extra))
                except CnnLabError as error:
                    st.error(as_text_lines(error))
                else:
                    st.rerun()
    # Checkpoints are read only for an ended run, the only kind that can be forked.
    saved = [] if run.is_active else _saved_epochs(run)
    with row.popover("Fork", disabled=not saved):
        if not saved:
            return
        epoch = (
            saved[-1]
            if len(saved) == 1
            else st.select_slider("From epoch", saved, saved[-1], key="fork_epoch")
        )
        st.caption("The fork starts from that epoch's weights with the hyperparameters set above.")
        if st.button("Fork", key="fork_run"):
            try:
                child = server.scheduler().fork(run.id, epoch, state.draft().training)
            except CnnLabError as error:
                st.error(as_text_lines(error))
            else:
                state.follow_run(child.id)
                st.rerun()


def _saved_epochs(run: RunRecord) -> list[int]:
    frames = run_cache.live(run, server.store().home).current(status=run.status.value, control=run.control)
    return sorted(epoch for name, epoch in frames.checkpoints.items() if name.startswith("epoch_"))
