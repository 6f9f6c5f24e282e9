"""The sidebar card of the run this session follows: its name, status and epoch, one click from its live view.

Every page draws it (`app.py`), so the followed run (`cnnlab.ui.session.state.followed_run`) is in
view and back in the URL wherever the learner goes. While the run can still change the card re-reads
it every few seconds, except on the Train page, whose live view follows the run's stream: there the
card says the status only, not the epoch, from the same stream (a Pause reruns no page), and never
reruns on a timer. A run this user may not see (another student's) is not shown at all, the page
that opens it says "not yours".
"""

from __future__ import annotations

import streamlit as st

from cnnlab.errors import AccessError, RunError
from cnnlab.store.records import RunRecord
from cnnlab.ui import server
from cnnlab.ui.session import state
from cnnlab.ui.stream import live_chart

TRAIN_PAGE = "app_pages/train.py"
REFRESH_SECONDS = 3.0  # while the followed run is queued, starting, running or paused


def progress_text(run: RunRecord) -> str:
    """Where the run is, in a few words: its status and its epoch out of those planned."""
    epochs = run.training().epochs
    return f"{str(run.status).capitalize()} · epoch {min(run.last_epoch, epochs)} of {epochs}"


def _read(run_id: str) -> RunRecord | None:
    """The run, or None when it is gone or not this user's (the pages say which)."""
    try:
        return server.store().get_run(run_id)
    except (AccessError, RunError):
        return None


def show(live_page: bool = False) -> None:
    """Draw the followed run's card in the sidebar (nothing when no run is followed).

    `live_page`: the page is the Train page, whose live view follows the run (the card then polls not).
    """
    run_id = state.followed_run()
    if run_id is None:
        return
    run = _read(run_id)
    if run is None:
        return

    @st.fragment(run_every=REFRESH_SECONDS if run.is_active and not live_page else None)
    def card() -> None:
        current = _read(run_id)
        if current is None:
            return
        with st.container(border=True, key="followed_run_card"):
            st.caption("The run you follow")
            st.text(current.name)  # The learner's own words: shown as text, never as markdown.
            word = str(current.status).capitalize()
            if live_page and current.is_active:
                reader = server.store()
                live_chart.status_word(reader.home, reader.user.id, run_id, word)
            else:
                st.caption(word if live_page else progress_text(current))
            st.page_link(
                TRAIN_PAGE,
                label="Watch it live",
                icon=":material/monitoring:",
                query_params={state.RUN_PARAMETER: run_id},
            )

    with st.sidebar:
        card()
