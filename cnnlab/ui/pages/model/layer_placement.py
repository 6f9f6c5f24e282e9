"""Where the Model page's "Add layer" puts a new layer, and "Undo remove" for the last removed one.

The place is said ("The new Conv2D becomes layer 3, between 2. Conv2D 3x3 and the current 3.
MaxPooling2D 2x2") and chosen: where the layer type fits (the default: augmentation first, feature
layers before Flatten, the rest before the output), before or after the open layer (the one edited,
added or put back last), or before any layer or at the end. A removed layer can be put back at its
place while the other layers are as the removal left them.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from cnnlab.model import catalogue
from cnnlab.specs import LayerSpec
from cnnlab.ui.session import state

OPEN_LAYER_KEY = "cnnlab_open_layer"  # session state: the id of the layer whose form is open
REMOVED_KEY = "cnnlab_removed_layer"  # session state: the last removed layer, for "Undo remove"


@dataclasses.dataclass(frozen=True)
class RemovedLayer:
    """A removed layer, where it was, and the layer ids it left (the undo is offered while they stay)."""

    position: int
    layer: LayerSpec
    layer_id: str
    remaining_ids: tuple[str, ...]


def insertion_point(layers: list[LayerSpec], type_name: str) -> int:
    """Where a new layer goes: augmentation first, feature layers before Flatten, the rest before the output."""
    entry = catalogue.layer_type(type_name)
    if entry.category == "augmentation" or entry.backbone:
        return 0
    if entry.category in ("convolution", "pooling"):
        for position, layer in enumerate(layers):
            if layer.type in ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D"):
                return position
    return max(0, len(layers) - 1)


def open_position(ids: list[str]) -> int | None:
    """The position of the layer whose form is open (the one edited, added or moved last), if any."""
    open_id = st.session_state.get(OPEN_LAYER_KEY)
    return ids.index(open_id) if open_id in ids else None


def neighbours(layers: list[LayerSpec], position: int) -> str:
    """Where a layer inserted at `position` sits, in words: "between 2. Conv2D 3x3 and 3. Flatten"."""
    before = f"{position}. {catalogue.describe(layers[position - 1])}" if position > 0 else None
    after = f"{position + 1}. {catalogue.describe(layers[position])}" if position < len(layers) else None
    if before and after:
        return f"between {before} and the current {after}"
    if after:
        return f"at the start, before {after}"
    return f"at the end, after {before}" if before else "the only layer"


def insertion_choices(layers: list[LayerSpec], type_name: str, open_position: int | None) -> dict[str, int]:
    """Where a new layer of `type_name` may go, label to position: where it fits first, then before and
    after the open layer (when one is open), then before each layer and at the end."""
    fits = insertion_point(layers, type_name)
    choices = {f"Where it fits (as layer {fits + 1})": fits}
    if open_position is not None:
        described = f"{open_position + 1}. {catalogue.describe(layers[open_position])}"
        choices[f"Before the open layer ({described})"] = open_position
        choices[f"After the open layer ({described})"] = open_position + 1
    for position, layer in enumerate(layers):
        choices.setdefault(f"Before {position + 1}. {catalogue.describe(layer)}", position)
    if layers:
        choices[f"At the end, after {len(layers)}. {catalogue.describe(layers[-1])}"] = len(layers)
    return choices


def undo_remove_offer(layers: list[LayerSpec], ids: list[str]) -> None:
    """After a Remove: say which layer went, with a button that puts it back at its place.

    Offered while the layers are the ones the removal left (their parameters may have changed).
    """
    removed: RemovedLayer | None = st.session_state.get(REMOVED_KEY)
    if removed is None:
        return
    if removed.remaining_ids != tuple(ids):
        st.session_state.pop(REMOVED_KEY, None)
        return
    with st.container(horizontal=True, vertical_alignment="center", key="removed_layer"):
        st.caption(
            f"Removed layer {removed.position + 1}, {catalogue.describe(removed.layer)}.", width="stretch"
        )
        if st.button("Undo remove", key="undo_remove", icon=":material/undo:"):
            st.session_state.pop(REMOVED_KEY, None)
            layers.insert(removed.position, removed.layer)
            ids.insert(removed.position, removed.layer_id)
            st.session_state[OPEN_LAYER_KEY] = removed.layer_id
            state.replace_layers(layers, ids)
            st.rerun()


def record_removal(position: int, layers: list[LayerSpec], ids: list[str]) -> None:
    """Remove the layer at `position` from `layers` and `ids` (in place), remembering it for the undo."""
    removed_layer, removed_id = layers.pop(position), ids.pop(position)
    st.session_state[REMOVED_KEY] = RemovedLayer(position, removed_layer, removed_id, tuple(ids))
