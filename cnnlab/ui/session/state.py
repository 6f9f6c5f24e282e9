"""The draft setup (data, model, training) in session state, mirrored in the URL.

Pages read the draft with `draft()` and change it with `set_data`, `set_model`, `set_training`.
The URL carries the whole setup as `?setup=<token>` (see `cnnlab.share`) and the followed run as
`?run=<id>`, so a refresh, a second tab or a shared link opens the same thing. The followed run also
lives in the session (`followed_run`, `follow_run`): once started or opened, it stays followed on
every page until the learner picks another, though a page switch clears the URL.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import streamlit as st

from cnnlab import share
from cnnlab.classroom import uploads
from cnnlab.errors import CnnLabError, SpecError
from cnnlab.model import presets
from cnnlab.plain_text import as_text
from cnnlab.specs import DataSettings, LayerSpec, ModelSpec, TrainingSettings
from cnnlab.store import names
from cnnlab.store.run_store import default_home
from cnnlab.ui.session import setup_entry

SETUP_KEY = "cnnlab_setup"
NOTES_KEY = "cnnlab_setup_notes"
LAYER_IDS_KEY = "cnnlab_layer_ids"
PRESET_TRAINING_KEY = "cnnlab_preset_training"  # The preset whose training settings were loaded last.
SETUP_PARAMETER = "setup"
RUN_PARAMETER = "run"
IMPORTED_NAME = "imported_model"  # An imported model's name when its JSON gives none.
FOLLOWED_KEY = "cnnlab_followed_run"  # The run this session follows, kept while the URL loses `?run=`.


def default_setup() -> share.Setup:
    """Digits, the default digits CNN, and settings that train it well in seconds."""
    preset = presets.get(presets.DEFAULT_PRESET)
    return share.Setup(DataSettings(), preset.spec, TrainingSettings(**preset.training))


def draft() -> share.Setup:
    """The current setup: from the session, else from the URL, else the default."""
    if SETUP_KEY not in st.session_state:
        initial = default_setup()
        link = st.query_params.get(SETUP_PARAMETER)
        notes: tuple[str, ...] = ()
        if link:
            try:
                admitted = setup_entry.read_link(link, initial)
                initial, dataset_notes = _checked_link_setup(admitted.setup, initial)
                notes = admitted.notes + dataset_notes
            except CnnLabError as error:
                notes = (str(error),)
        st.session_state[NOTES_KEY] = list(notes)
        _store(initial)
    setup: share.Setup = st.session_state[SETUP_KEY]
    token = link_token(setup)
    if st.query_params.get(SETUP_PARAMETER) != token:
        # Switching pages clears the URL's parameters; put the setup back.
        st.query_params[SETUP_PARAMETER] = token
    return setup


def link_token(setup: share.Setup) -> str:
    """The `?setup=` token of `setup`: an upload in it is named by its file, never by a server folder."""
    return share.encode(uploads.setup_for_link(default_home(), setup))


def uploads_folder() -> Path:
    """Where the Data page keeps this user's uploaded zips (in a class, a folder of their own)."""
    from cnnlab.ui.session import identity

    return uploads.folder_of(default_home(), identity.current_user())


def _checked_link_setup(setup: share.Setup, default: share.Setup) -> tuple[share.Setup, tuple[str, ...]]:
    """A setup from a link, with its dataset kept only if it is a named set or an upload this user may use.

    A link could otherwise name any folder on the server, or another student's upload, and have its
    images shown. The note names the file only, never a server folder.
    """
    from cnnlab.ui.session import identity

    setup = uploads.setup_from_link(default_home(), identity.current_user(), setup)
    dataset = setup.data.dataset
    if uploads.may_use(default_home(), identity.current_user(), dataset):
        return setup, ()
    note = (
        f"This link names the dataset {names.dataset_name(setup.data)!r}, which is not one you can open here "
        "(not a built-in set, nor an upload of yours or of the class); the digits are used instead. Upload "
        "your images on the Data page."
    )
    return share.Setup(default.data, setup.model, setup.training), (note,)


def _store(setup: share.Setup) -> None:
    previous = st.session_state.get(SETUP_KEY)
    st.session_state[SETUP_KEY] = setup
    if previous is None or previous.model.layers != setup.model.layers:
        st.session_state[LAYER_IDS_KEY] = [uuid.uuid4().hex[:8] for _ in setup.model.layers]
    st.query_params[SETUP_PARAMETER] = link_token(setup)


def set_data(data: DataSettings) -> None:
    """Replace the draft's data settings."""
    setup = draft()
    if setup.data != data:
        _store(share.Setup(data, setup.model, setup.training))


def set_model(model: ModelSpec, layer_ids: list[str] | None = None) -> None:
    """Replace the draft's model; `layer_ids` keeps the identity of edited layers for their widgets."""
    setup = draft()
    if setup.model == model:
        return
    _store(share.Setup(setup.data, model, setup.training))
    if layer_ids is not None:
        st.session_state[LAYER_IDS_KEY] = layer_ids


def set_training(training: TrainingSettings) -> None:
    """Replace the draft's training settings."""
    setup = draft()
    if setup.training != training:
        _store(share.Setup(setup.data, setup.model, training))


def layer_ids() -> list[str]:
    """A stable id per draft layer, so each layer's widgets keep their keys when layers move."""
    draft()
    return list(st.session_state[LAYER_IDS_KEY])


def new_layer_id() -> str:
    """A fresh id for an added or duplicated layer."""
    return uuid.uuid4().hex[:8]


def followed_run() -> str | None:
    """The run this session follows: the one the URL names, else the one it followed last, else None.

    A link (`?run=ID`: shared, refreshed, or opened from a table) names the run to show, and that run
    becomes the followed one. Switching pages clears the URL's parameters; the run followed last is then
    put back, so Train, Evaluate, Predict and Learn keep showing it until the learner picks another.
    """
    linked = st.query_params.get(RUN_PARAMETER) or None
    if linked is not None:
        st.session_state[FOLLOWED_KEY] = linked
        return linked
    followed: str | None = st.session_state.get(FOLLOWED_KEY)
    if followed:
        st.query_params[RUN_PARAMETER] = followed  # Back in the URL, for a refresh or a shared link.
    return followed or None


def follow_run(run_id: str | None) -> None:
    """Follow run `run_id` from now on, in this session and in the URL (None: follow no run)."""
    if run_id:
        st.session_state[FOLLOWED_KEY] = run_id
        st.query_params[RUN_PARAMETER] = run_id
        return
    st.session_state.pop(FOLLOWED_KEY, None)
    if RUN_PARAMETER in st.query_params:
        del st.query_params[RUN_PARAMETER]


def replace_layers(layers: list[LayerSpec], ids: list[str]) -> None:
    """Set the draft model's layers together with their widget ids."""
    set_model(draft().model.replace_layers(layers), ids)


def show_entry_notes() -> None:
    """What was refused or changed when the setup entered (a link, an import), until dismissed."""
    notes = st.session_state.get(NOTES_KEY) or []
    if not notes:
        return
    with st.container(border=True):
        text = "\n".join(f"- {as_text(note)}" for note in notes)
        st.warning(f"Some of the setup could not be used as given; the rest is kept.\n\n{text}")
        if st.button("Dismiss", key="dismiss_setup_notes"):
            st.session_state[NOTES_KEY] = []
            st.rerun()


def import_model(text: str) -> list[str]:
    """Make the model in JSON `text` the draft's, keeping the layers that can be used; return what was
    left out or changed, for the page to say next to its import button.

    The model takes the JSON's "name", else `IMPORTED_NAME`: never the name of the model it replaces.
    SpecError when the text is not JSON or holds no usable layer; the draft is then unchanged.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        where = (
            f" at line {error.lineno}, column {error.colno}"
            if isinstance(error, json.JSONDecodeError)
            else ""
        )
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "nested too deeply"
        raise SpecError(f"The model spec is not valid JSON: {reason}{where}. Nothing was changed.") from None
    fallback = dataclasses.replace(draft().model, name=IMPORTED_NAME)
    model, notes = setup_entry.read_model(data, fallback, "The imported model")
    set_model(model)
    return notes


def load_preset(model: ModelSpec, training: TrainingSettings | None, preset_name: str | None = None) -> None:
    """Make a preset (already fitted to the data, or not) the draft's model, with its training settings.

    With `training`, `preset_name` is remembered as where the training settings came from
    (`preset_training`), for the Train page to say so.
    """
    admitted = setup_entry.admit(share.Setup(draft().data, model, training or draft().training))
    st.session_state[NOTES_KEY] = list(admitted.notes)
    set_model(admitted.setup.model)
    if training is not None:
        set_training(admitted.setup.training)
        st.session_state[PRESET_TRAINING_KEY] = preset_name


def preset_training() -> str | None:
    """The name of the preset whose training settings were loaded last in this session, if any."""
    name: str | None = st.session_state.get(PRESET_TRAINING_KEY)
    return name
