"""The Model page's import box: paste a model's JSON, import it, and read the result right there.

What an import left out or changed (an unknown layer type, a bad parameter) is said under the
Import button, where the learner is looking, not at the top of a long page, and scrolled into sight
if the button sat low on the screen; a success says how many layers came in and the model's name.
The message stays while the model is as the import left it.
"""

from __future__ import annotations

import streamlit as st

from cnnlab.errors import CnnLabError
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.specs import ModelSpec
from cnnlab.ui.session import state
from cnnlab.ui.widgets import into_view

RESULT_KEY = "cnnlab_import_result"  # session state: (the imported model, what was left out or changed)
COUNT_KEY = "cnnlab_import_count"  # session state: how many imports this session made (names each result)


def import_box(locked: bool) -> None:
    """The text area, the Import button, and the last import's result under it."""
    pasted = st.text_area("Import a model (paste its JSON)", key="import_json", height=120, disabled=locked)
    if st.button("Import", key="import_button", disabled=locked) and pasted.strip():
        try:
            notes = state.import_model(pasted)
        except CnnLabError as error:
            st.session_state.pop(RESULT_KEY, None)
            st.error(as_text_lines(error), icon=":material/block:")
        else:
            st.session_state[RESULT_KEY] = (state.draft().model, notes)
            st.session_state[COUNT_KEY] = st.session_state.get(COUNT_KEY, 0) + 1
            st.rerun()  # The shapes, the code and the JSON above show the imported model.
    _result()


def result_message(model: ModelSpec, notes: list[str]) -> str:
    """What the import did, in a sentence, with the notes of what was left out or changed."""
    # The name is the JSON's own text: written in a code span, so it is shown as text.
    name = model.name.replace("`", "'")
    said = f"Imported `{name}`: {len(model.layers)} layers."
    if not notes:
        return said
    # The notes quote the pasted JSON (layer types, parameters): shown as text.
    listed = "\n".join(f"- {as_text(note)}" for note in notes)
    return f"{said} Some of it could not be used as given; the rest is kept.\n\n{listed}"


def _result() -> None:
    """The last import's result, while the draft model is still the one it imported."""
    result: tuple[ModelSpec, list[str]] | None = st.session_state.get(RESULT_KEY)
    if result is None:
        return
    model, notes = result
    if state.draft().model != model:  # Edited, or replaced since: the message no longer applies.
        st.session_state.pop(RESULT_KEY, None)
        return
    show = st.warning if notes else st.success
    show(result_message(model, notes), icon=":material/warning:" if notes else ":material/check_circle:")
    # The click's rerun keeps the page where it was: a result under a button low on the screen is
    # scrolled into sight, once.
    into_view.bring_into_view("import_result_in_view", f"import {st.session_state.get(COUNT_KEY, 0)}")
