"""The Runs page's view of a sweep: a live table of its runs, the parallel-coordinates chart, and actions.

A sweep on Optuna also shows how far its search has got, Optuna's importance and history charts,
and a button that tries more settings (`cnnlab.ui.widgets.search_view`); a pruned trial's row says why.
The view is a fragment that re-reads the sweep's runs (one query, `cnnlab.runs.queue.sweeps.Sweeps.runs`)
when the class stream says one of them changed or a new one was queued (`live_chart.watch_class`),
at most once a second, and reruns the page once when the last one ends. It polls every
`POLL_SECONDS` instead where the stream does not connect, and while a search is open with no run
queued or training (its next trials, or its end, are the server's watcher's to write). The best run
is preselected and marked; choosing a row picks another. The picked run opens on the Train page,
forks, or becomes the draft in one click; "Stop the sweep" stops every queued and live run. The sweep
shown is in the address as `?sweep=<id>`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from cnnlab.classroom.users import User
from cnnlab.errors import CnnLabError
from cnnlab.figures import sweeps as sweep_figures
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.runs.queue import sweeps
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.ui import server
from cnnlab.ui.session import identity, state
from cnnlab.ui.stream import live_chart
from cnnlab.ui.widgets import run_table, search_view, tables

POLL_SECONDS = 1.0
SWEEP_PARAMETER = "sweep"
BEST_MARK = "★"
PICKER_KEY = "chosen_sweep"
LINK_SEEN_KEY = "cnnlab_sweep_link_seen"  # the sweep the address named when the picker last followed it


@st.cache_resource(show_spinner=False)
def _book_at(home: str) -> sweeps.Sweeps:
    return sweeps.Sweeps(Store(Path(home)))


def book() -> sweeps.Sweeps:
    """The sweeps of this server's store (one database connection per thread, shared by every session)."""
    return _book_at(str(server.store().home))


def visible_sweeps(user: User) -> list[sweeps.SweepRecord]:
    """The sweeps `user` may see: all of them for a teacher or the local user, else their own."""
    return book().list_sweeps(owner=None if user.sees_everything else user.id)


def sweeps_section() -> None:
    """The Runs page's sweeps: a picker (the linked sweep first chosen) and the chosen sweep's view."""
    found = visible_sweeps(identity.current_user())
    if not found:
        return
    st.subheader("Sweeps")
    by_id = {sweep.id: sweep for sweep in found}
    linked = st.query_params.get(SWEEP_PARAMETER)
    if linked in by_id and st.session_state.get(LINK_SEEN_KEY) != linked:
        st.session_state[PICKER_KEY] = linked  # A new address (a link, a page opened again) names the sweep.
    st.session_state[LINK_SEEN_KEY] = linked
    chosen = st.selectbox(
        "Sweep",
        list(by_id),
        index=list(by_id).index(linked) if linked in by_id else 0,
        key=PICKER_KEY,
        format_func=lambda sweep_id: (
            f"{by_id[sweep_id].name} ({sweep_id[-4:]}): {by_id[sweep_id].describe()}"
        ),
    )
    if chosen is None:
        return
    if linked != chosen:
        st.query_params[SWEEP_PARAMETER] = chosen
        st.session_state[LINK_SEEN_KEY] = chosen
    sweep_panel(by_id[chosen])


def going(sweep: sweeps.SweepRecord, runs: list[sweeps.SweepRun]) -> bool:
    """True while a run of the sweep is queued or training, or its search may still ask for trials."""
    search_open = sweep.search is not None and not sweep.closed
    return search_open or any(item.run.is_active for item in runs)


def _timed(runs: list[sweeps.SweepRun], key: str) -> bool:
    """True when the sweep's view must poll: the stream did not connect, or no run of it is queued or
    training (an open search's next trials, or its end, change no run the stream would tell of)."""
    return not live_chart.class_streamed(key) or not any(item.run.is_active for item in runs)


def sweep_panel(sweep: sweeps.SweepRecord) -> None:
    """One sweep, live while a run of it is active: table, chart, the picked run's actions, stop all."""
    key = f"sweep_{sweep.id}"
    first_runs = book().runs(sweep.id)
    polling = going(sweep, first_runs)  # The sweep as the caller has just read it.
    timed = polling and _timed(first_runs, key)

    @st.fragment(run_every=POLL_SECONDS if timed else None)
    def live() -> None:
        runs = book().runs(sweep.id)
        if polling and (not going(book().get(sweep.id), runs) or timed != _timed(runs, key)):
            st.rerun()  # Every run has ended, or the view should now poll (or stop polling): redraw once.
        if polling and not timed:
            reader = server.store()
            newest = max(item.run.created_at for item in runs)  # A trial queued after it is news.
            live_chart.watch_class(reader.home, reader.user.id, [item.run for item in runs], key, newest)
        frame = sweeps.table(sweep, runs)
        top = sweeps.best(runs)
        ended = sum(item.run.is_ended for item in runs)
        summary = f"{ended} of {len(runs)} runs ended"
        if top is not None and top.best_val_accuracy is not None:
            summary += f"; best so far {as_text(top.run.name)} ({top.best_val_accuracy:.1%}), marked {BEST_MARK} and red"
        st.caption(f"{summary}.")
        shown = frame.drop(columns=["id"]).assign(
            best=[BEST_MARK if marked else "" for marked in frame["best"]]
        )
        event = st.dataframe(
            shown,
            hide_index=True,
            key=f"sweep_table_{sweep.id}",
            on_select="rerun",
            selection_mode="single-row",
            column_config={"status": tables.status_column(), sweeps.ACCURACY_COLUMN: tables.share_column()},
        )
        figure = sweep_figures.parallel_coordinates(frame, sweep.settings, top.run.id if top else None)
        st.caption(
            "Each line is a run: its settings, then its best validation accuracy; the best run in red. "
            "Drag along an axis to pick out a range."
        )
        st.plotly_chart(figure, key=f"sweep_chart_{sweep.id}")
        search_view.search_panel(book(), sweep, runs)
        picked = run_table.chosen_run_id(frame, event.selection.rows) or (top.run.id if top else None)
        by_id = {item.run.id: item.run for item in runs}
        if picked in by_id:
            _actions(by_id[picked], picked_by_hand=bool(event.selection.rows))
        active = [item for item in runs if item.run.is_active]
        if st.button(
            f"Stop the sweep ({len(active)} queued or training)",
            key=f"stop_sweep_{sweep.id}",
            disabled=not active,
            icon=":material/stop_circle:",
        ):
            sweeps.stop(book(), sweep.id, server.scheduler())
            st.rerun()

    live()


def _actions(run: RunRecord, picked_by_hand: bool) -> None:
    """Open, fork or adopt the settings of the picked run (the best one unless a row is chosen)."""
    st.markdown(
        f"**{'Chosen' if picked_by_hand else 'Best'} run: {as_text(run.name)}** ({run.status}, {run.last_epoch} epochs)"
    )
    columns = st.columns(3)
    if columns[0].button(
        "Open on the Train page", key="sweep_open", type="primary", icon=":material/monitoring:"
    ):
        run_table.open_on_train_page(run.id)
    if columns[1].button("Make its settings the draft", key="sweep_draft", icon=":material/edit_note:"):
        use_as_draft(run)
        st.success(
            "Its data, model and training settings are now the draft on the Data, Model and Train pages."
        )
    saved = sorted(
        epoch for name, epoch in server.store().checkpoints(run.id).items() if name.startswith("epoch_")
    )
    with columns[2].popover("Fork", disabled=not saved or run.is_active, icon=":material/fork_right:"):
        if not saved:
            return
        more = st.number_input("More epochs", 1, 200, 5, key="sweep_fork_epochs")
        st.caption(f"The fork starts from epoch {saved[-1]}'s weights with this run's settings.")
        if st.button("Fork", key="sweep_fork"):
            training = dataclasses.replace(run.training(), epochs=saved[-1] + int(more))
            try:
                child = server.scheduler().fork(run.id, saved[-1], training)
            except CnnLabError as error:
                st.error(as_text_lines(error))
                return
            run_table.open_on_train_page(child.id)


def use_as_draft(run: RunRecord) -> None:
    """Make the run's data, model and training settings the draft setup."""
    state.set_data(run.data())
    state.set_model(run.model_spec())
    state.set_training(run.training())
