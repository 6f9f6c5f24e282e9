"""The Train page's "Find a learning rate": the range test run in a worker, its curve, and one click to apply.

The test runs in a separate process (`cnnlab.runs.queue.learning_rate_range.find_learning_rate_in_worker`), never
in the Streamlit server, on a throw-away copy of the draft model. Its result is kept in the
session for the setup it was made for, so it survives reruns but not a change of model or data.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from cnnlab import share
from cnnlab.errors import CnnLabError
from cnnlab.figures import training as figures
from cnnlab.model import shapes
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.runs.queue import learning_rate_range as lr_finder
from cnnlab.setting_ranges import TRAINING_RANGES
from cnnlab.ui.session import state

RESULT_KEY = "cnnlab_learning_rate_finder"


def setup_key(setup: share.Setup) -> str:
    """What the finder's answer depends on: the model, the data and the batch size."""
    training = dataclasses.replace(setup.training, learning_rate=1e-3, epochs=1)
    return share.encode(share.Setup(setup.data, setup.model, training))


def _apply(suggestion: float) -> None:
    """Make `suggestion` the draft's learning rate and the form's value (a button callback)."""
    learning_rate = TRAINING_RANGES["learning_rate"].clamp(suggestion)
    state.set_training(dataclasses.replace(state.draft().training, learning_rate=learning_rate))
    st.session_state["learning_rate"] = learning_rate  # The form's field shows it on this rerun.


def finder_panel(setup: share.Setup, ready: bool) -> None:
    """The button, and once it has run, the curve, the suggestion (or why there is none) and a button
    that applies it."""
    batch_size = setup.training.batch_size
    if st.button(
        "Find a learning rate",
        key="find_learning_rate",
        disabled=not ready,
        help=f"Trains a throw-away copy of the model for {lr_finder.steps_for(batch_size)} batches while the "
        "learning rate grows from 1e-7 to 10, and suggests a learning rate where the smoothed loss falls: "
        "a tenth of where it reached its lowest level.",
    ):
        flops = shapes.analyse(setup.model).flops
        with st.spinner(lr_finder.wait_message(flops, batch_size)):
            try:
                found = lr_finder.find_learning_rate_in_worker(setup.model, setup.data, setup.training)
            except CnnLabError as error:
                st.error(as_text_lines(error))
                return
        st.session_state[RESULT_KEY] = (setup_key(setup), found)
    stored = st.session_state.get(RESULT_KEY)
    if stored is None or stored[0] != setup_key(setup):
        return
    result: lr_finder.FinderResult = stored[1]
    st.plotly_chart(figures.learning_rate_finder(result), key="learning_rate_finder_figure")
    if result.suggestion is None:
        st.caption(figures.LEARNING_RATE_FINDER_EXPLANATION)
        st.warning(f"No learning rate suggested: {as_text(result.reason)}.", icon=":material/trending_flat:")
        return
    st.caption(f"{figures.LEARNING_RATE_FINDER_EXPLANATION} {figures.LEARNING_RATE_FINDER_SUGGESTION_LINE}")
    current = setup.training.learning_rate
    if abs(current - result.suggestion) <= 1e-12 * max(current, 1.0):
        st.success(f"The learning rate is the suggested {result.suggestion:.3g}.")
        return
    st.button(
        f"Use the suggested learning rate {result.suggestion:.3g} (now {current:g})",
        key="apply_learning_rate",
        on_click=_apply,
        args=(result.suggestion,),
        type="primary",
    )
    st.caption(f"Why this one: {as_text(result.reason)}.")
