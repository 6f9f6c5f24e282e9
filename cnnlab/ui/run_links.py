"""A run named in a link (`?run=...`) that cannot be shown: say which and why, and offer the others.

A hand-edited, stale or shared link may name a run that was deleted, never existed, or has not
saved a model yet. The pages do not silently open another run and rewrite the link: they name the
run, say what is wrong, and show a picker of the runs that can be opened. The link stays as it was
until the user picks one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

import streamlit as st

from cnnlab.errors import AccessError, RunError
from cnnlab.plain_text import as_text
from cnnlab.store.records import RunRecord
from cnnlab.ui import server
from cnnlab.ui.session import state


def missing_run_message(run_id: str) -> str:
    """Why run `run_id` cannot be shown, in a sentence: it is not yours, it does not exist, or it has no model yet."""
    try:
        run = server.store().get_run(run_id)
    except AccessError as error:
        return str(error)  # Another student's run: "not yours", and nothing of it.
    except RunError:
        return f"Run {run_id!r} does not exist (deleted?). Choose one of the runs below."
    if run.id != run_id:
        return f"Run {run_id!r} does not exist (deleted?). Did you mean {run.name!r} ({run.id})?"
    return (
        f"Run {run_id!r} ({run.name}, {run.status}) has not saved a model yet: it saves one at the end "
        "of its first epoch. Choose another run below, or follow it on the Train page."
    )


def refuse_hidden_run() -> None:
    """Say "not yours" when the link names a run this user may not see (the page shows nothing of it)."""
    run_id = state.followed_run()
    if run_id is None:
        return
    try:
        server.store().get_run(run_id)
    except AccessError as error:
        st.warning(as_text(error), icon=":material/lock:")
    except RunError:
        pass  # A missing run: the pages that open one say so.


def pick_instead(
    run_id: str,
    choices: Sequence[RunRecord],
    key: str,
    label: Callable[[RunRecord], str],
    message: str | None = None,
) -> NoReturn:
    """Say that run `run_id` cannot be shown and offer `choices`; follow the one picked, else stop.

    The URL keeps `run_id` until the user picks a run, so a mistyped link can still be corrected.
    """
    st.warning(as_text(message or missing_run_message(run_id)), icon=":material/link_off:")
    if not choices:
        st.info("No other run can be opened here yet. Train one first: it takes seconds on the digits.")
        st.page_link("app_pages/train.py", label="Go to the Train page", icon=":material/monitoring:")
        st.stop()
    by_id = {run.id: run for run in choices}
    chosen = st.selectbox(
        "Open another run",
        list(by_id),
        index=None,
        key=f"{key}_instead",
        placeholder="Choose a run",
        format_func=lambda choice: label(by_id[choice]),
    )
    if chosen is None:
        st.stop()
    state.follow_run(chosen)
    st.rerun()


def short_label(run: RunRecord) -> str:
    """A run in a picker of every run: its name, status, epochs and id."""
    return f"{run.name} ({run.status}, {run.last_epoch} epochs) · {run.id}"
