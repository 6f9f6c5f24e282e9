"""The exercise a student opened (`?exercise=`): its banner, and the controls it locks or hides.

`app.py` calls `apply()` once per run, before the page: it reads an exercise link, makes its setup
the draft, keeps the locked and hidden controls at the exercise's values, shows the banner and hides
the hidden controls' widgets. The forms ask `locked(name)` for their widgets' `disabled=`; the
Train page tags runs with `exercise_tags()`. See `cnnlab.classroom.exercises` for the exercise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import streamlit as st

from cnnlab import share
from cnnlab.classroom import exercises, uploads
from cnnlab.classroom.exercises import Exercise
from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import default_home
from cnnlab.ui.session import identity, setup_entry, state

EXERCISE_KEY = "cnnlab_exercise"
TOKEN_KEY = "cnnlab_exercise_token"
LEAVE_KEY = "cnnlab_exercise_leave"
HIDDEN_LAYERS_NOTE = "The exercise hides the model's layers: train it and see how it does."
# Each control's widgets (their keys) on the Data, Model and Train pages.
WIDGET_KEYS: dict[str, tuple[str, ...]] = {
    "dataset": (
        "dataset_name",
        "dataset_upload",
        "shape_classes",
        "shape_count",
        "shape_noise",
        "shape_rotation",
        "shape_scale",
    ),
    "image_size": ("image_size", "image_size_number", "color_mode"),
    "subset_and_split": ("subset", "validation", "test", "data_seed"),
    "augmentation": (
        "augment_flip",
        "augment_rotation",
        "augment_zoom",
        "augment_translation",
        "augment_shear",
        "augment_contrast",
    ),
    "model_layers": (),  # The Model page swaps its whole editor for a read-only note.
    "optimizer": ("optimizer", "momentum", "nesterov", "weight_decay"),
    "learning_rate": (
        "learning_rate",
        "schedule",
        "step_epochs",
        "decay_rate",
        "plateau_factor",
        "plateau_patience",
    ),
    "batch_size": ("batch_size",),
    "epochs": ("epochs",),
    "regularisation": ("l2",),
    "early_stopping": ("early_stopping", "monitor", "patience", "restore_best"),
    "training_seed": ("seed",),
}


@st.cache_resource(show_spinner=False)
def _key_at(home: str) -> bytes:
    return exercises.signing_key(Path(home))


def signing_key() -> bytes:
    """This server's key for exercise links (made once in CNNLAB_HOME)."""
    return _key_at(str(default_home()))


def current() -> Exercise | None:
    """The exercise this session is working on, if any."""
    exercise: Exercise | None = st.session_state.get(EXERCISE_KEY)
    return exercise


def exercise_tags() -> dict[str, Any]:
    """The `RunRequest` fields that tag a run started now with the session's exercise and what it fixes."""
    exercise = current()
    if exercise is None:
        return {"exercise": None}
    return {"exercise": exercise.name, "exercise_locked": exercise.locked, "exercise_hidden": exercise.hidden}


def locked(name: str) -> bool:
    """True when the session's exercise fixes control `name` (locked or hidden): its widgets are disabled."""
    if name not in exercises.CONTROLS:
        raise KeyError(f"{name!r} is not a control; the controls are {', '.join(exercises.CONTROLS)}.")
    exercise = current()
    return exercise is not None and name in exercise.fixed


def hidden(name: str) -> bool:
    """True when the session's exercise hides control `name`."""
    exercise = current()
    return exercise is not None and name in exercise.hidden


def hides_anything() -> bool:
    """True when the session's exercise hides some control (then its code, which writes out all, is not shown)."""
    exercise = current()
    return exercise is not None and bool(exercise.hidden)


def hidden_from_viewer(run: RunRecord) -> frozenset[str]:
    """The controls `run`'s exercise hid, when the viewer is a student (teachers and the local user see all)."""
    if identity.current_user().sees_everything:
        return frozenset()
    return run.exercise_control_names("hidden")


def hidden_fields_from_viewer(run: RunRecord) -> frozenset[tuple[str, str]]:
    """The (section, field) pairs of `run` its exercise hides from the viewer; ("model", "") is every layer."""
    return exercises.fields_of(hidden_from_viewer(run))


def layers_hidden_from_viewer(run: RunRecord) -> bool:
    """True when `run`'s exercise hides its model's layers from the viewer: no layer names, kernels,
    feature maps, layer health or model file of it are shown."""
    return "model_layers" in hidden_from_viewer(run)


def say_layers_hidden() -> None:
    """The note shown where a hidden model's layers would be."""
    st.info(HIDDEN_LAYERS_NOTE, icon=":material/visibility_off:")


def link(exercise: Exercise) -> str:
    """The query string that opens `exercise`: `?exercise=<signed token>` (an upload named by its file only)."""
    linked = dataclasses.replace(exercise, setup=uploads.setup_for_link(default_home(), exercise.setup))
    return f"?{exercises.PARAMETER}={exercises.encode(linked, signing_key())}"


def _start(exercise: Exercise, token: str) -> None:
    """Make `exercise` the session's, with its setup as the draft (or, after a refresh, the draft's)."""
    refreshed = state.SETUP_KEY not in st.session_state and bool(st.query_params.get(state.SETUP_PARAMETER))
    # A refresh keeps the student's own changes (the setup in the address); a new link starts afresh.
    setup = state.draft() if refreshed else setup_entry.admit(exercise.setup).setup
    for keys in WIDGET_KEYS.values():
        for key in keys:
            st.session_state.pop(key, None)  # The widgets start again from the new draft.
    st.session_state[EXERCISE_KEY] = exercise
    st.session_state[TOKEN_KEY] = token
    _replace_draft(setup)


def _replace_draft(setup: share.Setup) -> None:
    state.set_data(setup.data)
    state.set_model(setup.model)
    state.set_training(setup.training)


def _leave() -> None:
    st.session_state.pop(EXERCISE_KEY, None)
    st.session_state.pop(TOKEN_KEY, None)
    if exercises.PARAMETER in st.query_params:
        del st.query_params[exercises.PARAMETER]


def _hidden_css(exercise: Exercise) -> str:
    """CSS hiding the hidden controls' widgets (Streamlit marks a keyed widget with `st-key-<key>`)."""
    selectors = [f".st-key-{key}" for name in sorted(exercise.hidden) for key in WIDGET_KEYS[name]]
    return f"<style>{', '.join(selectors)} {{display: none;}}</style>" if selectors else ""


def _banner(exercise: Exercise) -> None:
    parts = []
    if exercise.locked:
        labels = [exercises.CONTROLS[name].label for name in exercises.CONTROLS if name in exercise.locked]
        parts.append(f"locked: {', '.join(labels)}")
    if exercise.hidden:
        labels = [exercises.CONTROLS[name].label for name in exercises.CONTROLS if name in exercise.hidden]
        parts.append(f"hidden: {', '.join(labels)}")
    fixed = f" Your teacher set some controls ({'; '.join(parts)})." if parts else ""
    banner, leave = st.columns([6, 1], vertical_alignment="center")
    banner.info(
        f"Exercise: **{as_text(exercise.name)}**.{fixed} Your runs are tagged with the exercise.",
        icon=":material/assignment:",
    )
    leave.button("Leave the exercise", key=LEAVE_KEY, on_click=_leave, type="tertiary")


def apply() -> None:
    """Enter an exercise link, keep its controls fixed, and show its banner (once per run, before the page)."""
    token = st.query_params.get(exercises.PARAMETER)
    if token and token != st.session_state.get(TOKEN_KEY):
        try:
            opened = exercises.decode(token, signing_key())
            setup = uploads.setup_from_link(default_home(), identity.current_user(), opened.setup)
            _start(dataclasses.replace(opened, setup=setup), token)
        except CnnLabError as error:
            st.error(as_text_lines(error), icon=":material/link_off:")
    exercise = current()
    if exercise is None:
        return
    if st.query_params.get(exercises.PARAMETER) != st.session_state[TOKEN_KEY]:
        # Switching pages clears the URL's parameters; put the exercise back so a refresh keeps it.
        st.query_params[exercises.PARAMETER] = st.session_state[TOKEN_KEY]
    draft = state.draft()
    enforced = exercises.enforce(exercise, draft)
    if enforced != draft:
        _replace_draft(enforced)
    _banner(exercise)
    css = _hidden_css(exercise)
    if css:
        st.markdown(css, unsafe_allow_html=True)
