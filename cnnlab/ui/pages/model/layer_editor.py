"""The Model page's layer editor: one form per layer, generated from the catalogue.

Every widget reads its range, default and help text from `cnnlab.model.catalogue`, and its key from the
layer's stable id, so widgets follow their layer when layers are moved.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import streamlit as st

from cnnlab.model import catalogue, parameters, presets, shapes
from cnnlab.model.parameters import Parameter
from cnnlab.plain_text import as_text_lines
from cnnlab.specs import LayerSpec, ModelSpec
from cnnlab.ui.pages.model import layer_placement
from cnnlab.ui.session import state
from cnnlab.ui.session.setup_entry import INPUT_CHANNELS_RANGE, INPUT_SIZE_RANGE

NONE_LABEL = "none"
OPEN_LAYER_KEY = layer_placement.OPEN_LAYER_KEY
INPUT_ROW = "input"

T = TypeVar("T")


def _choice_label(value: Any) -> str:
    return NONE_LABEL if value is None else str(value)


def _size_widget(parameter: Parameter, value: Any, key: str) -> Any:
    """One number for a square window, or two for a rectangular one; 0 means 'as Keras defaults'."""
    optional = parameter.default is None and not parameter.required and parameter.suggested is None
    current = value if value is not None else parameter.initial
    pair = parameters.as_pair(current) if current is not None else (0, 0)
    # An out-of-range import is shown as it is; the validation message explains it.
    within = current is None or parameters.check_value(parameter, current) is None
    lowest = (0 if optional else int(parameter.minimum or 1)) if within else None
    highest = int(parameter.maximum or 99) if within else None
    if pair[0] == pair[1]:
        size = st.number_input(
            parameter.name,
            min_value=lowest,
            max_value=highest,
            value=pair[0],
            step=1,
            key=key,
            help=parameter.help + (" 0 = same as the pool size." if optional else ""),
        )
        if optional and size == 0:
            return None
        return value if value is not None and parameters.as_pair(value) == (size, size) else int(size)
    left, right = st.columns(2)
    height = left.number_input(
        f"{parameter.name} height", min_value=lowest, max_value=highest, value=pair[0], step=1, key=f"{key}_h"
    )
    width = right.number_input(
        f"{parameter.name} width", min_value=lowest, max_value=highest, value=pair[1], step=1, key=f"{key}_w"
    )
    return [int(height), int(width)]


def _regularizer_widget(parameter: Parameter, value: Any, key: str) -> Any:
    value = value or {}
    left, right = st.columns(2)
    l1 = left.number_input(
        f"{parameter.name} L1",
        min_value=0.0,
        max_value=1.0,
        value=float(value.get("l1", 0.0)),
        format="%.5f",
        step=0.0001,
        key=f"{key}_l1",
        help=parameter.help,
    )
    l2 = right.number_input(
        f"{parameter.name} L2",
        min_value=0.0,
        max_value=1.0,
        value=float(value.get("l2", 0.0)),
        format="%.5f",
        step=0.0001,
        key=f"{key}_l2",
        help=parameter.help,
    )
    if not l1 and not l2:
        return None
    return {name: amount for name, amount in (("l1", l1), ("l2", l2)) if amount}


def parameter_widget(parameter: Parameter, value: Any, key: str) -> Any:
    """Draw the widget for one parameter and return the value it holds."""
    if parameter.kind == "bool":
        return st.checkbox(
            parameter.name,
            bool(value if value is not None else parameter.default),
            key=key,
            help=parameter.help,
        )
    if parameter.kind == "choice":
        options = list(parameter.choices)
        current = value if value in options else parameter.default
        if parameter.name == "activation" and value is None:
            current = "linear"
        return st.selectbox(
            parameter.name,
            options,
            options.index(current) if current in options else 0,
            key=key,
            format_func=_choice_label,
            help=parameter.help,
        )
    if parameter.kind == "size":
        return _size_widget(parameter, value, key)
    if parameter.kind == "regularizer":
        return _regularizer_widget(parameter, value, key)
    if parameter.kind == "int":
        whole = int(value if value is not None else parameter.initial or 0)
        lowest, highest = _whole_bounds(parameter, whole)
        number = st.number_input(
            parameter.name,
            min_value=lowest,
            max_value=highest,
            value=whole,
            step=1,
            key=key,
            help=parameter.help,
        )
        return int(number)
    current = value if value is not None else parameter.initial
    if current is None:
        lowest_fraction, highest_fraction = _fraction_bounds(parameter, 0.0)
        fraction = st.number_input(
            parameter.name,
            min_value=lowest_fraction,
            max_value=highest_fraction,
            value=0.0,
            step=0.05,
            key=key,
            help=parameter.help + " 0 = none.",
        )
        return float(fraction) or None
    lowest_fraction, highest_fraction = _fraction_bounds(parameter, float(current))
    return float(
        st.number_input(
            parameter.name,
            min_value=lowest_fraction,
            max_value=highest_fraction,
            value=float(current),
            step=0.05,
            format="%g",
            key=key,
            help=parameter.help,
        )
    )


def _whole_bounds(parameter: Parameter, current: int) -> tuple[int | None, int | None]:
    """The catalogue's range of a whole-number parameter as widget limits; see `_fraction_bounds`."""
    if parameters.check_value(parameter, current) is not None:
        return None, None
    lowest = None if parameter.minimum is None else int(parameter.minimum)
    highest = None
    if parameter.maximum is not None:
        highest = int(parameter.maximum - 1 if parameter.exclusive_maximum else parameter.maximum)
    return lowest, highest


def _fraction_bounds(parameter: Parameter, current: float) -> tuple[float | None, float | None]:
    """The catalogue's range as widget limits, unless the current value already lies outside it.

    A value from imported JSON may be out of range; the widget then shows it as it is, and the
    validation message above says what is wrong, instead of the widget changing it silently.
    """
    if parameters.check_value(parameter, current) is not None:
        return None, None
    lowest = None if parameter.minimum is None else float(parameter.minimum)
    highest = None
    if parameter.maximum is not None:
        highest = float(parameter.maximum - 0.01 if parameter.exclusive_maximum else parameter.maximum)
    return lowest, highest


def layer_form(layer: LayerSpec, layer_id: str) -> LayerSpec:
    """The editable parameters of one layer; returns the layer as the widgets now describe it."""
    entry = catalogue.layer_type(layer.type)
    st.caption(entry.summary)
    params: dict[str, Any] = {}
    for parameter in entry.parameters:
        value = parameter_widget(parameter, layer.get(parameter.name), f"layer_{layer_id}_{parameter.name}")
        given = parameter.name in layer.params
        if value is None or (not given and value == parameter.default and not parameter.required):
            continue
        params[parameter.name] = value
    if layer.get("name"):
        params["name"] = layer.get("name")
    return LayerSpec(layer.type, params)


def _move(items: list[T], position: int, offset: int) -> list[T]:
    target = position + offset
    if not 0 <= target < len(items):
        return items
    items = list(items)
    items[position], items[target] = items[target], items[position]
    return items


def input_row(model: ModelSpec, problem: str | None, data_shape: tuple[int, int, int] | None) -> None:
    """The model's input (height, width, channels) as the table's first row; editing it keeps the layers."""
    shape = tuple(model.input_shape)
    marker = "⚠️ " if problem else ""
    with st.expander(
        f"{marker}0. Input  →  {' × '.join(map(str, shape))}",
        expanded=bool(marker) or st.session_state.get(OPEN_LAYER_KEY) == INPUT_ROW,
    ):
        if problem:
            st.error(as_text_lines(problem))
        st.caption(
            "The images the model takes: height and width in pixels, and channels (1 grey, 3 colour). "
            "Changing them keeps the layers."
        )
        # The keys name the shape, so the widgets show a shape set elsewhere (a preset, an import).
        version = "x".join(map(str, shape))
        columns = st.columns(3)
        sizes = [
            int(
                column.number_input(
                    label,
                    min_value=limits[0],
                    max_value=limits[1],
                    value=size,
                    step=1,
                    key=f"input_{label}_{version}",
                )
            )
            for column, label, size, limits in zip(
                columns,
                ("height", "width", "channels"),
                shape,
                (INPUT_SIZE_RANGE, INPUT_SIZE_RANGE, INPUT_CHANNELS_RANGE),
                strict=True,
            )
        ]
        edited = (sizes[0], sizes[1], sizes[2])
        if data_shape is not None and tuple(data_shape) != shape:
            wanted = " × ".join(map(str, data_shape))
            if st.button(f"Use the data's {wanted}", key="input_use_data", type="primary"):
                edited = data_shape
    if edited != shape:
        st.session_state[OPEN_LAYER_KEY] = INPUT_ROW
        state.set_model(dataclasses.replace(model, input_shape=edited), state.layer_ids())
        st.rerun()


def layer_editor(analysis: shapes.Analysis, data_shape: tuple[int, int, int] | None = None) -> None:
    """The input row, then every layer as an expander with its form and move, duplicate and remove
    buttons; then 'add'. `data_shape` is the dataset's image shape, offered for the input."""
    model = state.draft().model
    layers, ids = list(model.layers), state.layer_ids()
    problems = {problem.layer: problem.message for problem in analysis.problems}
    input_row(model, problems.get(0), data_shape)
    rows = {row.index: row for row in analysis.rows}
    for position, (layer, layer_id) in enumerate(zip(layers, ids, strict=True)):
        row = rows.get(position + 1)
        shape = " × ".join(str(size) for size in row.output_shape) if row else "?"
        marker = "⚠️ " if position + 1 in problems else ""
        with st.expander(
            f"{marker}{position + 1}. {catalogue.describe(layer)}  →  {shape}",
            expanded=bool(marker) or st.session_state.get(OPEN_LAYER_KEY) == layer_id,
        ):
            if marker:
                st.error(as_text_lines(problems[position + 1]))
            edited = layer_form(layer, layer_id)
            buttons = st.columns(4)
            action = None
            # Icons with tooltips: four words do not fit a layer's row on a 1280-pixel screen.
            for column, (name, icon, label, disabled) in zip(
                buttons,
                (
                    ("up", ":material/arrow_upward:", "Move up", position == 0),
                    ("down", ":material/arrow_downward:", "Move down", position == len(layers) - 1),
                    ("duplicate", ":material/content_copy:", "Duplicate", False),
                    ("remove", ":material/delete:", "Remove", len(layers) == 1),
                ),
                strict=True,
            ):
                if column.button(
                    "", icon=icon, help=label, key=f"{name}_{layer_id}", disabled=disabled, width="stretch"
                ):
                    action = name
        if edited != layer:
            # Keep this layer's form open across the rerun, although its title changes.
            st.session_state[OPEN_LAYER_KEY] = layer_id
            layers[position] = edited
            state.replace_layers(layers, ids)
            st.rerun()
        if action:
            _apply(action, position, layers, ids)
    layer_placement.undo_remove_offer(layers, ids)
    _add_layer(layers, ids)


def _add_layer(layers: list[LayerSpec], ids: list[str]) -> None:
    """The layer type, where it goes (said, and chosen: before or after the open layer, or any place),
    and the button that adds it."""
    add_left, add_right = st.columns([2, 1], vertical_alignment="bottom")
    new_type = add_left.selectbox(
        "Add a layer",
        list(catalogue.LAYER_TYPES),
        key="add_layer_type",
        format_func=lambda name: f"{name} ({catalogue.layer_type(name).category})",
    )
    places = layer_placement.insertion_choices(layers, new_type, layer_placement.open_position(ids))
    place = st.selectbox("Where it goes", list(places), key="add_layer_where")
    insert_at = places[place]
    st.caption(
        f"The new {new_type} becomes layer {insert_at + 1}, {layer_placement.neighbours(layers, insert_at)}."
    )
    if add_right.button("Add layer", key="add_layer", type="primary"):
        layers.insert(insert_at, presets.new_layer(new_type))
        new_id = state.new_layer_id()
        ids.insert(insert_at, new_id)
        st.session_state[OPEN_LAYER_KEY] = new_id  # Its form opens, ready to be set.
        state.replace_layers(layers, ids)
        st.rerun()


def _apply(action: str, position: int, layers: list[LayerSpec], ids: list[str]) -> None:
    if action in ("up", "down"):
        offset = -1 if action == "up" else 1
        layers, ids = _move(layers, position, offset), _move(ids, position, offset)
    elif action == "duplicate":
        layers.insert(position + 1, layers[position])
        ids.insert(position + 1, state.new_layer_id())
    elif action == "remove":
        layer_placement.record_removal(position, layers, ids)
    state.replace_layers(layers, ids)
    st.rerun()
