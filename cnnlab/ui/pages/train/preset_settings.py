"""The Train page says which training settings came from a preset, so none of them comes from nowhere.

Loading a preset that carries training settings (the Three-conv MNIST CNN's batch size 64 and 5
epochs) changes the Train form from the Model page; this line names the preset and the settings it
set that are still in effect.
"""

from __future__ import annotations

import streamlit as st

from cnnlab.model import presets
from cnnlab.specs import TrainingSettings
from cnnlab.ui.session import state


def preset_settings_line(training: TrainingSettings) -> str | None:
    """ "From the preset ...: 5 epochs, batch size 64 ..." for the settings still as the last loaded preset set
    them, or None when no preset set any in this session or the learner has changed them all."""
    name = state.preset_training()
    if name is None or name not in presets.PRESETS:
        return None
    preset = presets.get(name)
    carried = presets.carried_settings(preset, training)
    if not carried:
        return None
    return f"From the preset **{preset.title}** (loaded on the Model page): {', '.join(carried)}."


def preset_settings_note(training: TrainingSettings) -> None:
    """Show `preset_settings_line` as a caption, when there is one."""
    line = preset_settings_line(training)
    if line is not None:
        st.caption(
            line, help="Change them here; loading another preset with training settings replaces them."
        )
