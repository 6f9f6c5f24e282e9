"""The draft setup (data, model, training) in session state, mirrored in the URL.

Pages read the draft with `draft()` and change it with `set_data`, `set_model`, `set_training`.
The URL carries the whole setup as `?setup=<token>` (see `cnnlab.share`) and the followed run as
`?run=<id>`, so a refresh, a second tab or a shared link opens the same thing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import streamlit as st

from cnnlab import share
from cnnlab.data import datasets
from cnnlab.errors import CnnLabError
from cnnlab.model import presets
from cnnlab.runs.store import default_home
from cnnlab.specs import DataSettings, LayerSpec, ModelSpec, TrainingSettings

SETUP_KEY = "cnnlab_setup"
LAYER_IDS_KEY = "cnnlab_layer_ids"
SETUP_PARAMETER = "setup"
RUN_PARAMETER = "run"


def default_setup() -> share.Setup:
    """Digits, the default digits CNN, and settings that train it well in seconds."""
    preset = presets.get(presets.DEFAULT_PRESET)
    return share.Setup(DataSettings(), preset.spec, TrainingSettings(**preset.training))


def draft() -> share.Setup:
    """The current setup: from the session, else from the URL, else the default."""
    if SETUP_KEY not in st.session_state:
        initial = default_setup()
        link = st.query_params.get(SETUP_PARAMETER)
        if link:
            try:
                initial = _checked_link_setup(share.decode(link), initial)
            except CnnLabError as error:
                st.warning(str(error))
        _store(initial)
    setup: share.Setup = st.session_state[SETUP_KEY]
    token = share.encode(setup)
    if st.query_params.get(SETUP_PARAMETER) != token:
        # Switching pages clears the URL's parameters; put the setup back.
        st.query_params[SETUP_PARAMETER] = token
    return setup


def uploads_folder() -> Path:
    """Where the Data page keeps uploaded zips; the only own-image data a link may name."""
    return default_home() / "uploads"


def _checked_link_setup(setup: share.Setup, default: share.Setup) -> share.Setup:
    """A setup from a link, with its dataset kept only if it is a named set or an upload here.

    A link could otherwise name any folder on the server and have its images shown.
    """
    dataset = setup.data.dataset
    if dataset in {info.name for info in datasets.registry()}:
        return setup
    path = Path(dataset).expanduser().resolve()
    if path.is_relative_to(uploads_folder().resolve()):
        return setup
    st.warning(
        f"This link names the dataset {dataset!r}, which is not a built-in set or an upload on this server; "
        "the digits are used instead. Upload the images on the Data page."
    )
    return share.Setup(default.data, setup.model, setup.training)


def _store(setup: share.Setup) -> None:
    previous = st.session_state.get(SETUP_KEY)
    st.session_state[SETUP_KEY] = setup
    if previous is None or previous.model.layers != setup.model.layers:
        st.session_state[LAYER_IDS_KEY] = [uuid.uuid4().hex[:8] for _ in setup.model.layers]
    st.query_params[SETUP_PARAMETER] = share.encode(setup)


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
    """The run id in the URL, if any."""
    return st.query_params.get(RUN_PARAMETER) or None


def follow_run(run_id: str | None) -> None:
    """Put `run_id` in the URL (or remove it)."""
    if run_id:
        st.query_params[RUN_PARAMETER] = run_id
    elif RUN_PARAMETER in st.query_params:
        del st.query_params[RUN_PARAMETER]


def replace_layers(layers: list[LayerSpec], ids: list[str]) -> None:
    """Set the draft model's layers together with their widget ids."""
    set_model(draft().model.replace_layers(layers), ids)
