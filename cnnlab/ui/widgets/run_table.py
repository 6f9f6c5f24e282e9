"""The table of runs on the Home and Runs pages: live while a run in it is active, and a row opens its run.

The table is a fragment that follows the class stream (`cnnlab.ui.stream`) while some run it lists is
queued, starting, running or paused: it is drawn again when the stream says a listed run changed,
so "starting, 0 epochs" becomes "running, 3 epochs" without a reload or a timer (where the stream
does not connect, it re-reads the store every `POLL_SECONDS` instead). When the last of them ends it
reruns the page once, which draws the table without following anything: a page of finished runs
costs nothing. Choosing a row follows that run on the Train page.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import streamlit as st

from cnnlab.classroom.owner_names import owner_name
from cnnlab.model import shapes
from cnnlab.store import names, records
from cnnlab.store.records import RunRecord
from cnnlab.ui import server
from cnnlab.ui.session import controls, state
from cnnlab.ui.stream import live_chart
from cnnlab.ui.widgets import tables

if TYPE_CHECKING:
    import pandas as pd  # Imported where a table is made, so a page that shows none does not load pandas.

POLL_SECONDS = 1.0
TRAIN_PAGE = "app_pages/train.py"


def should_poll(runs: Sequence[RunRecord]) -> bool:
    """True while some run in `runs` can still change: queued, starting, running or paused."""
    return any(run.is_active for run in runs)


def chosen_run_id(table: pd.DataFrame, rows: Sequence[int]) -> str | None:
    """The id of the run in the first selected row of `table` (a `runs_table`), if any."""
    if not rows or "id" not in table or not 0 <= rows[0] < len(table):
        return None
    return str(table["id"].iloc[rows[0]])


def open_on_train_page(run_id: str) -> None:
    """Switch to the Train page following run `run_id`, keeping the setup in the URL."""
    state.follow_run(run_id)
    parameters = {state.RUN_PARAMETER: run_id}
    setup = st.query_params.get(state.SETUP_PARAMETER)
    if setup:
        parameters[state.SETUP_PARAMETER] = setup
    st.switch_page(TRAIN_PAGE, query_params=parameters)


def _owners_for_teachers() -> dict[str, str] | None:
    """Display names by user id for a teacher, whose table lists the class's runs; None for anyone else."""
    access = server.store()
    return access.user_names() if access.user.is_teacher else None


def live_runs_table(key: str, limit: int | None = None) -> list[RunRecord]:
    """Draw the newest runs (all of them, or `limit`) as a table that follows them while they are
    active; a chosen row opens its run on the Train page. Returns the runs as first read."""
    runs = server.store().list_runs(limit=limit)
    if not runs:
        return runs
    polling = should_poll(runs)
    streamed = polling and live_chart.class_streamed(key)
    details = st.toggle(
        "Show ids, parent runs and devices",
        key=f"{key}_details",
        help="The run's id (as in the address and the command line), the run it was forked or continued "
        "from, and the device it trained on.",
    )

    @st.fragment(run_every=POLL_SECONDS if polling and not streamed else None)
    def table() -> None:
        reader = server.store()
        current = reader.list_runs(limit=limit)
        if (polling and not should_poll(current)) or streamed != (polling and live_chart.class_streamed(key)):
            st.rerun()  # Every listed run has ended, or the stream did not connect: redraw the page once.
        if streamed:
            # A table of the newest `limit` runs shows a new one: it follows runs newer than its oldest.
            full = limit is not None and len(current) >= limit
            since = min(run.created_at for run in current) if full and current else 0.0
            live_chart.watch_class(reader.home, reader.user.id, current, key, since)
        frame = runs_table(current, _owners_for_teachers())
        event = st.dataframe(
            frame,
            hide_index=True,
            key=key,
            on_select="rerun",
            selection_mode="single-row",
            column_config=RUNS_TABLE_COLUMNS,
            column_order=[*MAIN_COLUMNS, *DETAIL_COLUMNS] if details else MAIN_COLUMNS,
        )
        chosen = chosen_run_id(frame, event.selection.rows)
        if chosen is not None:
            open_on_train_page(chosen)

    table()
    st.caption("Choose a row to follow that run on the Train page.")
    return runs


def duration(run: RunRecord) -> datetime.timedelta | None:
    """How long the run has been training (or trained), to the second; None before it started."""
    if run.started_at is None:
        return None
    return datetime.timedelta(seconds=int((run.ended_at or time.time()) - run.started_at))


# The columns shown at first, which fit a 1280-pixel screen without scrolling sideways; the toggle above
# the table adds the others.
MAIN_COLUMNS = (
    "name",
    "status",
    "dataset",
    "model",
    "parameters",
    "epochs",
    "best val. accuracy",
    "duration",
)
DETAIL_COLUMNS = ("id", "parent", "device")

# How `runs_table`'s numbers are written: the columns hold numbers, the browser writes them.
RUNS_TABLE_COLUMNS = {
    "status": tables.status_column(),
    "parameters": tables.count_column(),
    "best val. accuracy": tables.share_column(),
    "duration": st.column_config.NumberColumn(format="compact"),  # A clock: 00:01:05.
    "shared with the class": st.column_config.CheckboxColumn(
        help="A teacher shared this run with the class: you may look at it and fork it, not change it."
    ),
}
SHARED_COLUMN = "shared with the class"  # only when some listed run is shared


def runs_table(runs: list[RunRecord], owners: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per run: name, status, dataset, model, parameters, best validation accuracy, duration, parent.

    With `owners` (a teacher's table: user id to display name) each row says whose run it is. The
    dataset is named, never its server path (an upload is its file's name). A run whose exercise hides
    its layers from the viewer hides its model's name (a preset's name says its layers).
    """
    import pandas as pd

    from cnnlab.runs.views.compare import HIDDEN

    rows = []
    for run in runs:
        spec = run.model_spec()
        owner = {} if owners is None else {"owner": owner_name(run.owner, owners)}
        rows.append(
            {
                "id": run.id,
                **owner,
                "name": run.name,
                "status": str(run.status),
                "dataset": names.dataset_name(run.data()),
                "model": HIDDEN if controls.layers_hidden_from_viewer(run) else spec.name,
                "parameters": shapes.analyse(spec).total_parameters,
                "epochs": run.last_epoch,
                "best val. accuracy": run.result("best_val_accuracy"),
                "duration": duration(run),
                "parent": run.parent_id or "",
                "device": records.recorded_device(run.results) or "",
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["best val. accuracy"] = table["best val. accuracy"].astype(
        float
    )  # Empty, not None, before an epoch.
    table["duration"] = pd.to_timedelta(table["duration"])
    if any(run.shared for run in runs):
        # Runs a teacher shared with the class sit among a student's own: the column says which.
        table.insert(list(table.columns).index("status") + 1, SHARED_COLUMN, [run.shared for run in runs])
    return table
