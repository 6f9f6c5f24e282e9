"""The teacher's console: every student's runs live, stop, pause and share any run, an exercise's
leaderboard, and exercise links built from the current draft.

The class table is a fragment that follows the class stream (`cnnlab.ui.stream`): it reads one list
of runs and each live run's last event when the stream says a run changed (its status, request,
epochs or best accuracy), appeared or went, at most once a second, and never on a timer. Where the
stream does not connect it polls instead, every `LIVE_SECONDS` while a run is live (every
`IDLE_SECONDS` otherwise, to notice new runs). It reruns the page when a run appears or changes
status, so the action buttons below always know it. The rows come from `cnnlab.classroom.overview`,
which reads no metric tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import streamlit as st
from pandas.api.types import is_string_dtype

from cnnlab.classroom import exercises, overview
from cnnlab.classroom.owner_names import owner_name
from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.store import names
from cnnlab.store.records import RunRecord
from cnnlab.store.statuses import Status
from cnnlab.ui import server
from cnnlab.ui.pages.teacher import class_people
from cnnlab.ui.session import controls, presentation, state
from cnnlab.ui.stream import live_chart
from cnnlab.ui.widgets import run_owner, tables

if TYPE_CHECKING:
    import pandas as pd

TABLE_KEY = "teacher_runs_table"
LIVE_SECONDS = 2.0  # polling, where the class stream does not connect
IDLE_SECONDS = 5.0
SORT_KEY = "teacher_sort"
RUN_KEY = "teacher_run"
EXERCISE_KEY = "teacher_leaderboard_exercise"
MADE_KEY = "teacher_made_exercise"
# Said under the actions: who may resume a run the teacher paused, or continue one the teacher stopped.
PAUSE_NOTE = (
    "A student's run you pause stays paused until you resume it: its student is told "
    '"Paused by your teacher" and cannot resume it (they may stop it). A run you stop says "Stopped by '
    'your teacher": only a teacher can continue it; its student may fork it (a new run, within the class limits).'
)
TEACHER_PAGE = "teacher"
LIVE_VIEW_PAGE = "train"
PRESENTATION_ROW_HEIGHT = 48


@st.cache_data(max_entries=2048, show_spinner=False)
def _ended_last_event(home: str, run_id: str, ended_at: float | None) -> str:
    """The last event of an ended run: it no longer changes, so it is read once per ending."""
    return _read_last_event(run_id)


def _read_last_event(run_id: str) -> str:
    events = server.store().events(run_id)
    return "" if events.empty else str(events["message"].iloc[-1])


def last_events(runs: Sequence[RunRecord]) -> dict[str, str]:
    """Each run's last event message: read for live runs, from the cache for ended ones."""
    home = str(server.store().home)
    return {
        run.id: _read_last_event(run.id) if run.is_active else _ended_last_event(home, run.id, run.ended_at)
        for run in runs
    }


def _signature(runs: Sequence[RunRecord]) -> tuple[tuple[str, str, bool], ...]:
    """What the action buttons depend on: which runs there are, their status and whether they are shared."""
    return tuple((run.id, str(run.status), run.shared) for run in runs)


def live_view_address(run_id: str) -> str:
    """The address of run `run_id`'s live view (the Train page following it), for a link in a table."""
    return f"{_app_address()}/{LIVE_VIEW_PAGE}?{state.RUN_PARAMETER}={run_id}"


def show_table(frame: pd.DataFrame, key: str, column_config: dict[str, Any]) -> None:
    """A console table: a grid with the run's live-view link; in presentation mode, large HTML type.

    The grid draws on a canvas that the page's large type cannot reach, so presentation mode shows
    an `st.table` instead (HTML cells, enlarged like the rest of the page).
    """
    if presentation.enabled():
        shown = frame.drop(columns=["id", "live view"], errors="ignore")
        # `st.table` renders its cells as markdown: names typed by students are escaped first.
        for column in shown.columns:
            if is_string_dtype(shown[column]):
                shown[column] = shown[column].map(as_text)
        st.table(shown, hide_index=True)
        return
    st.dataframe(
        frame.drop(columns=["id"]),
        hide_index=True,
        width="stretch",
        key=key,
        column_config=column_config,
    )


def class_table(runs: list[RunRecord]) -> None:
    """Every run in one sortable table, redrawn while any run is live; each row links to the run's live view."""
    shown = _signature(runs)
    live = any(run.is_active for run in runs)
    streamed = live_chart.class_streamed(TABLE_KEY)

    @st.fragment(run_every=None if streamed else LIVE_SECONDS if live else IDLE_SECONDS)
    def table() -> None:
        reader = server.store()
        current = reader.list_runs()
        if _signature(current) != shown or streamed != live_chart.class_streamed(TABLE_KEY):
            # A run appeared, ended or was shared (or the stream did not connect): redraw the page so
            # the actions know it.
            st.rerun()
        if streamed:
            live_chart.watch_class(reader.home, reader.user.id, current, TABLE_KEY)
        sort_by = st.session_state.get(SORT_KEY, "live first")
        frame = overview.class_overview(
            current, last_events(current), run_owner.owner_names(), sort_by=sort_by
        )
        frame["live view"] = [live_view_address(run_id) for run_id in frame["id"]]
        show_table(
            frame,
            TABLE_KEY,
            {
                "validation accuracy": tables.share_column(),
                "shared": st.column_config.CheckboxColumn("shared"),
                "live view": st.column_config.LinkColumn(
                    "live view", display_text=rf"{state.RUN_PARAMETER}=(.*)$", help="Open the run's live view"
                ),
            },
        )
        live_count = sum(run.is_active for run in current)
        if streamed:
            updated = "updated as they change."
        elif live_count:
            updated = f"updated every {LIVE_SECONDS:g} s."
        else:
            updated = "checked for new runs every few seconds."
        st.caption(f"{len(current)} run(s), {live_count} live; {updated}")

    st.selectbox("Sort by", list(overview.SORTS), key=SORT_KEY)
    table()


def run_label(run: RunRecord, names: Mapping[str, str]) -> str:
    """The run as the console's picker names it: owner, run name and id, none of which a status change alters.

    A label that said the status changed when the run did, and the picker, which remembers the label
    it showed, then fell back to another run: the action hit a run the teacher had not chosen.
    """
    return f"{owner_name(run.owner, names)} · {run.name} · {run.id}"


def run_actions(runs: list[RunRecord]) -> None:
    """Stop, pause, continue or share the chosen run: the picker's value is the run's id."""
    by_id = {run.id: run for run in runs}
    people = run_owner.owner_names()
    run_id = st.selectbox(
        "Run",
        list(by_id),
        index=None,
        placeholder="Choose a run",
        format_func=lambda run_id: run_label(by_id[run_id], people),
        key=RUN_KEY,
    )
    if run_id is None:
        st.caption("Choose a run to stop, pause, continue or share it.")
        return
    run = server.store().get_run(run_id)  # Read again: the action acts on the run as it is now.
    shared = ", shared with the class" if run.shared else ""
    st.markdown(
        f"{as_text(run_owner.whose(run, people))} **{as_text(run.name)}** is {run.status}{shared}. "
        f"[Open its live view]({live_view_address(run.id)})"
    )
    columns = st.columns(4)
    try:
        if columns[0].button("Stop", key="teacher_stop", disabled=not run.is_active, icon=":material/stop:"):
            server.scheduler().stop(run.id)
            st.rerun()
        if run.status == Status.PAUSED:
            if columns[1].button("Resume", key="teacher_resume", icon=":material/play_arrow:"):
                server.scheduler().resume(run.id)
                st.rerun()
        elif columns[1].button(
            "Pause", key="teacher_pause", disabled=run.status != Status.RUNNING, icon=":material/pause:"
        ):
            server.scheduler().pause(run.id)
            st.rerun()
        share_label = "Stop sharing" if run.shared else "Share with the class"
        if columns[2].button(share_label, key="teacher_share", icon=":material/group:"):
            server.scheduler().share(run.id, not run.shared)
            st.rerun()
    except CnnLabError as error:
        st.error(as_text_lines(error))
    st.caption("A shared run can be opened (read-only) by every student; they cannot change it.")


def leaderboard_section(runs: list[RunRecord]) -> None:
    """The chosen exercise's runs ranked by test accuracy, with their parameters and owners."""
    made = st.session_state.get(MADE_KEY)
    names = overview.exercise_names(runs)
    if made is not None and made.name not in names:
        names.insert(0, made.name)
    if not names:
        st.info("No run belongs to an exercise yet. Make an exercise link below and send it to the class.")
        return
    exercise = st.selectbox("Exercise", names, key=EXERCISE_KEY)
    if exercise is None:
        return
    st.caption(overview.LEADERBOARD_RULE)
    board = overview.leaderboard(runs, exercise, run_owner.owner_names())
    if board.empty:
        st.caption(f"No finished run of {as_text(exercise)} has a test accuracy yet.")
        return
    board["live view"] = [live_view_address(run_id) for run_id in board["id"]]
    show_table(
        board,
        "teacher_leaderboard",
        {
            "test accuracy": tables.share_column(),
            "parameters": tables.count_column(),
            "live view": st.column_config.LinkColumn(
                "live view", display_text=rf"{state.RUN_PARAMETER}=(.*)$"
            ),
        },
    )


def _app_address() -> str:
    """The app's address as the teacher's browser sees it (without this page), or "" when unknown."""
    url = st.context.url or ""
    if not url:
        return ""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith(f"/{TEACHER_PAGE}"):
        path = path[: -len(TEACHER_PAGE) - 1]
    return f"{parts.scheme}://{parts.netloc}{path}"


def exercise_builder() -> None:
    """Build an exercise from the current draft: a name, locked and hidden controls, and its link."""
    setup = state.draft()
    st.caption(
        f"The exercise is the current draft: {as_text(names.dataset_name(setup.data))} data, the model "
        f"{as_text(setup.model.name)} "
        f"({len(setup.model.layers)} layers), {setup.training.optimizer} at learning rate "
        f"{setup.training.learning_rate:g} for {setup.training.epochs} epochs. Change it on the Data, "
        "Model and Train pages first."
    )
    labels = {name: control.label for name, control in exercises.CONTROLS.items()}
    name = st.text_input("Exercise name", key="teacher_exercise_name", placeholder="Week 3: a deeper model")
    columns = st.columns(2)
    locked = columns[0].multiselect(
        "Locked (shown, not editable)", list(labels), format_func=labels.__getitem__, key="teacher_locked"
    )
    hidden = columns[1].multiselect(
        "Hidden", list(labels), format_func=labels.__getitem__, key="teacher_hidden"
    )
    if st.button("Make the link", key="teacher_make_link", type="primary", icon=":material/link:"):
        try:
            exercise = exercises.create(name, setup, locked, hidden)
            exercises.check_fits(exercise, server.store().limits)
            st.session_state[MADE_KEY] = exercise
        except CnnLabError as error:
            st.session_state.pop(MADE_KEY, None)
            st.error(as_text_lines(error))
    made = st.session_state.get(MADE_KEY)
    if made is not None:
        implied = sorted(made.locked - set(locked))
        if implied:
            st.caption(
                "Fixing the model layers also locks "
                + ", ".join(exercises.CONTROLS[name].label for name in implied)
                + ": the layers are built for that data."
            )
        st.markdown(f"Send this link for **{as_text(made.name)}** (the copy button is at its right):")
        st.code(_app_address() + "/" + controls.link(made), language=None, wrap_lines=True)


def console() -> None:
    """The whole console: the class's runs, actions on a run, the leaderboard and the exercise builder."""
    runs = server.store().list_runs()
    st.subheader("The class's runs")
    class_table(runs)
    if runs:
        with st.container(border=True):
            run_actions(runs)
            st.caption(PAUSE_NOTE)
    else:
        st.info("No runs yet. They appear here, live, as soon as a student starts one.")
    st.subheader("Leaderboard")
    leaderboard_section(runs)
    st.subheader("Make an exercise link")
    with st.container(border=True):
        exercise_builder()
    class_people.section()
