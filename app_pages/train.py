"""Train: set the hyperparameters, start a run in a background worker, and watch it learn live."""

import streamlit as st

from cnnlab.ui.pages.train import settings_panel
from cnnlab.ui.pages.train.live_run import live_view
from cnnlab.ui.session import state
from cnnlab.ui.widgets.dataset_context import dataset_context

st.title("Train")
setup = state.draft()
state.show_entry_notes()
context = dataset_context(setup.data)
run_id = state.followed_run()
# While a run is followed, the settings fold into one line so its live view is on screen.
if run_id is not None and not settings_panel.is_open():
    settings_panel.collapsed_settings(setup, context)
else:
    settings_panel.settings_form(context, collapsible=run_id is not None)

if run_id is None:
    st.info("Start a run to watch its curves, filters, feature maps and confusion matrix live.")
    st.stop()
live_view(run_id)
