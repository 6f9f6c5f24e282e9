"""Train: set the hyperparameters, start a run in a background worker, and watch it learn live."""

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.model import shapes
from cnnlab.run_request import RunRequest
from cnnlab.ui import server
from cnnlab.ui.pages.train.learning_rate_finder import finder_panel
from cnnlab.ui.pages.train.live_run import live_view
from cnnlab.ui.pages.train.preset_settings import preset_settings_note
from cnnlab.ui.pages.train.sweep_form import sweep_form
from cnnlab.ui.pages.train.training_form import training_form
from cnnlab.ui.session import controls, state
from cnnlab.ui.widgets.dataset_context import dataset_context, show_dataset_line

st.title("Train")
setup = state.draft()
state.show_entry_notes()
context = dataset_context(setup.data)
show_dataset_line(context)
st.caption(f"Model: **{setup.model.name}**, {len(setup.model.layers)} layers (change on the Model page).")

with st.container(border=True):
    preset_settings_note(setup.training)
    state.set_training(training_form(setup.training))
    augmentation = state.draft().training.augmentation
    if augmentation.active and not controls.hidden("augmentation"):
        st.caption(f"Augmentation (set on the Data page): {augmentation.to_dict()}")
    analysis = shapes.analyse(
        setup.model,
        num_classes=context.num_classes,
        dataset_input_shape=context.image_shape,
        budget=shapes.Budget(),
    )
    for problem in analysis.errors:
        st.error(problem.message, icon=":material/block:")
    ready = analysis.ok and context.image_shape is not None
    if st.button("Start training", type="primary", key="start_training", disabled=not ready):
        try:
            run = server.submit(RunRequest.from_setup(state.draft(), **controls.exercise_tags()))
        except CnnLabError as error:  # Over the class budget.
            st.error(str(error), icon=":material/block:")
        else:
            state.follow_run(run.id)
            st.rerun()
    if not ready:
        st.caption("Fix the problems above (on the Model or Data page) to start training.")
    with st.expander("Not sure which learning rate? Find one", icon=":material/search:"):
        finder_panel(state.draft(), ready)
    sweep_form(state.draft(), context.num_classes, context.image_shape, ready)

run_id = state.followed_run()
if run_id is None:
    st.info("Start a run to watch its curves, filters, feature maps and confusion matrix live.")
    st.stop()
live_view(run_id)
