"""The Train page's settings: the form that starts a run, or, while a run is followed, one line.

The form is the training settings (`cnnlab.ui.pages.train.training_form`), the model's problems, the
Start button, the learning-rate finder and the sweep planner. While the learner watches a run it
would push the run's status, controls and curves below the fold of a projector's 1280x720, so it
collapses to one line naming the data, the model and the main training settings; "Edit settings"
opens the whole form above the run, "Hide settings" closes it, and starting a run closes it again.
"""

from __future__ import annotations

import streamlit as st

from cnnlab import share
from cnnlab.errors import CnnLabError
from cnnlab.model import shapes
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.run_request import RunRequest
from cnnlab.specs import TrainingSettings
from cnnlab.ui import server
from cnnlab.ui.pages.train.learning_rate_finder import finder_panel
from cnnlab.ui.pages.train.preset_settings import preset_settings_note
from cnnlab.ui.pages.train.sweep_form import sweep_form
from cnnlab.ui.pages.train.training_form import training_form
from cnnlab.ui.session import controls, state
from cnnlab.ui.widgets.dataset_context import DatasetContext, show_dataset_line

OPEN_KEY = "cnnlab_train_settings_open"  # session state: True while the form is open above a followed run
COMPACT_TOP_CSS = '[data-testid="stMainBlockContainer"] {padding-top: 4rem;}'  # Streamlit's is 6rem
OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}


def summary_line(setup: share.Setup, context: DatasetContext) -> str:
    """The draft setup in one line: data, model, optimizer, learning rate, batch size, epochs (and the
    schedule and early stopping when they are on)."""
    training: TrainingSettings = setup.training
    parts = [
        context.title,
        setup.model.name,
        OPTIMIZER_NAMES.get(training.optimizer, training.optimizer),
        f"learning rate {training.learning_rate:g}",
        f"batch size {training.batch_size}",
        f"{training.epochs} epochs",
    ]
    if training.schedule != "constant":
        parts.append(f"{training.schedule} schedule")
    if training.early_stopping:
        parts.append("early stopping")
    return " · ".join(parts)


def is_open() -> bool:
    """True when the learner has opened the settings form above the followed run."""
    return bool(st.session_state.get(OPEN_KEY, False))


def set_open(open_: bool) -> None:
    """Open (True) or collapse (False) the settings form; a button's callback, or after a start."""
    st.session_state[OPEN_KEY] = open_


def collapsed_settings(setup: share.Setup, context: DatasetContext) -> None:
    """The one-line summary with its "Edit settings" button (the form itself is not drawn)."""
    # The page's top margin is made smaller too: the run's curves then start above a projector's fold.
    st.html(f"<style>{COMPACT_TOP_CSS}</style>")
    row = st.container(
        border=True, horizontal=True, vertical_alignment="center", key="settings_summary", wrap=False
    )
    with row:
        # Shown as text: the model's name may be the learner's own words from an imported JSON.
        st.text(summary_line(setup, context), width="stretch")
        st.button(
            "Edit settings",
            key="edit_settings",
            icon=":material/edit:",
            on_click=set_open,
            args=(True,),
            help="Open the settings form: change them for the next run, find a learning rate, plan a sweep.",
        )
    preset_settings_note(setup.training)  # Folded or not, a preset's settings never come from nowhere.


def settings_form(context: DatasetContext, collapsible: bool) -> None:
    """The whole form: data and model lines, training settings, problems, Start, finder and sweep.

    `collapsible`: a run is followed, so the form offers "Hide settings" and closes once a run starts.
    """
    setup = state.draft()
    show_dataset_line(context)
    st.caption(
        f"Model: **{as_text(setup.model.name)}**, {len(setup.model.layers)} layers (change on the Model page)."
    )
    with st.container(border=True):
        if collapsible:
            st.button(
                "Hide settings",
                key="hide_settings",
                icon=":material/expand_less:",
                on_click=set_open,
                args=(False,),
                help="Fold the settings back into one line, so the run's live view is on screen.",
            )
        preset_settings_note(setup.training)
        state.set_training(training_form(setup.training))
        augmentation = state.draft().training.augmentation
        if augmentation.active and not controls.hidden("augmentation"):
            st.caption(f"Augmentation (set on the Data page): {augmentation.in_words()}.")
        analysis = shapes.analyse(
            setup.model,
            num_classes=context.num_classes,
            dataset_input_shape=context.image_shape,
            budget=shapes.Budget(),
        )
        for problem in analysis.errors:
            st.error(as_text_lines(problem.message), icon=":material/block:")
        ready = analysis.ok and context.image_shape is not None
        if st.button("Start training", type="primary", key="start_training", disabled=not ready):
            try:
                run = server.submit(RunRequest.from_setup(state.draft(), **controls.exercise_tags()))
            except CnnLabError as error:  # Over the class budget.
                st.error(as_text_lines(error), icon=":material/block:")
            else:
                set_open(False)  # The new run's live view, with the settings folded away.
                state.follow_run(run.id)
                st.rerun()
        if not ready:
            st.caption("Fix the problems above (on the Model or Data page) to start training.")
        with st.expander("Not sure which learning rate? Find one", icon=":material/search:"):
            finder_panel(state.draft(), ready)
        sweep_form(state.draft(), context.num_classes, context.image_shape, ready)
