"""The Runs page's part of a sweep on Optuna: where the search is, its charts, and "try more settings".

Beside the sweep's table and parallel coordinates (`cnnlab.ui.widgets.sweep_view`), a search shows
how far it has got (trials told, pruned, still to try), Optuna's importance of each swept setting and
its optimization history, and a button that gives it more trials (the sweep goes on where it stopped:
the trials told stay, none is tried again). The charts are computed once per number of finished
trials, not on every refresh of the live view; the importances are computed by the server's sweep
watcher as trials finish (fANOVA imports scikit-learn, seconds on a busy server), and read here.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.figures import sweeps as sweep_figures
from cnnlab.plain_text import as_text_lines
from cnnlab.runs.queue import studies, sweeps, trials
from cnnlab.store.statuses import Status
from cnnlab.ui import server

MORE_TRIALS = 6  # what "Try more settings" offers first


@st.cache_data(max_entries=16, show_spinner=False, ttl=5)
def _charts(home: str, sweep_id: str, finished: int) -> tuple[go.Figure, go.Figure | None]:
    """The history and (once the server has computed them) the importances of the sweep's study."""
    study = studies.read(Path(home), sweep_id)
    seen, found = studies.stored_importances(study)
    return sweep_figures.history(study), sweep_figures.importances(found, seen) if found else None


def progress(sweep: sweeps.SweepRecord, runs: list[sweeps.SweepRun]) -> str:
    """`6 of 12 settings tried so far (2 pruned early, 2 training); 6 to go.` or why it ended."""
    assert sweep.search is not None
    ended = sum(item.run.is_ended for item in runs)
    pruned = sum(item.run.status == Status.PRUNED for item in runs)
    training = len(runs) - ended
    budget = studies.trial_budget(sweep.search, sweep.axes)
    text = f"{ended} of {budget} settings tried ({pruned} stopped early as losing, {training} queued or training)"
    if sweep.search.stopped:
        return f"{text}; the sweep was stopped."
    if sweep.closed:
        return f"{text}; the sweep has spent its budget."
    return f"{text}; {max(0, budget - len(runs))} more to come."


def search_panel(book: sweeps.Sweeps, sweep: sweeps.SweepRecord, runs: list[sweeps.SweepRun]) -> None:
    """How the search is going, its importance and history charts, and the button to try more settings."""
    if sweep.search is None:
        return
    st.caption(f"Search: {sweep.search.describe()}. {progress(sweep, runs)}")
    finished = sum(item.run.status == Status.COMPLETED for item in runs)
    if finished:
        history, importance = _charts(str(book.store.home), sweep.id, finished)
        left, right = st.columns(2)
        if importance is not None:
            left.plotly_chart(importance, key=f"sweep_importances_{sweep.id}")
        else:
            left.caption(
                "Which settings mattered shows once two trials have finished with different settings."
            )
        right.plotly_chart(history, key=f"sweep_history_{sweep.id}")
    left, right = st.columns([1, 2])
    more = int(left.number_input("More settings", 1, 64, MORE_TRIALS, key=f"sweep_more_{sweep.id}"))
    right.write("")
    if right.button(
        f"Try {more} more settings", key=f"sweep_extend_{sweep.id}", icon=":material/add_circle:"
    ):
        try:
            trials.extend(book, sweep.id, more, check_budget=server.scheduler().check_budget)
        except CnnLabError as error:
            st.error(as_text_lines(error))
            return
        st.rerun()
