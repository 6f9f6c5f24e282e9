"""The Train page's sweep form: list values per setting, see how many runs that plans, start them all.

Each field takes comma-separated values; a setting left empty keeps the value set in the training
form above. The plan is checked on every change (`cnnlab.runs.queue.sweep_plan.plan`), so a refused
value or a grid over the limit shows its message before anything is queued. Starting queues the
runs through the server's scheduler, tagged as one sweep, and links to its view on the Runs page.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from cnnlab.classroom import exercises
from cnnlab.errors import CnnLabError, SweepError
from cnnlab.model import catalogue
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.runs.queue import sweep_plan, sweeps
from cnnlab.share import Setup
from cnnlab.specs import OPTIMIZERS
from cnnlab.ui import server
from cnnlab.ui.session import controls, identity
from cnnlab.ui.widgets import sweep_view

STARTED_KEY = "cnnlab_started_sweep"
RUNS_PAGE = "app_pages/runs.py"
_FIELDS = {"learning_rate": ("Learning rates", "1e-3, 3e-3, 1e-2"), "batch_size": ("Batch sizes", "32, 64")}
_FIELDS["epochs"] = ("Epochs", "5, 10")


def _axes(setup: Setup) -> list[sweep_plan.Axis]:
    """The axes the form's fields describe (SweepError for a value that cannot be read)."""
    columns = st.columns(len(_FIELDS) + 1)
    texts = {
        setting: column.text_input(label, key=f"sweep_{setting}", placeholder=example)
        for column, (setting, (label, example)) in zip(columns, _FIELDS.items(), strict=False)
    }
    optimizers = columns[-1].multiselect("Optimizers", OPTIMIZERS, key="sweep_optimizers")
    left, right = st.columns([1, 2])
    others = [setting for setting in sweep_plan.TRAINING_SETTINGS if setting not in (*_FIELDS, "optimizer")]
    other = left.selectbox("Another training setting", others, index=None, key="sweep_other_setting")
    other_values = right.text_input("Its values", key="sweep_other_values", disabled=other is None)
    layers = setup.model.layers
    if any(layer.type in sweep_plan.DROPOUT_TYPES for layer in layers):
        texts[sweep_plan.DROPOUT] = st.text_input(
            "Dropout rates (every Dropout layer)", key="sweep_dropout", placeholder="0.2, 0.5"
        )
    left, middle, right = st.columns([2, 1, 2])
    position = left.selectbox(
        "A layer's parameter",
        range(1, len(layers) + 1),
        index=None,
        key="sweep_layer",
        format_func=lambda number: f"{number}: {catalogue.describe(layers[number - 1])}",
    )
    names = (
        [item.name for item in catalogue.layer_type(layers[position - 1].type).parameters] if position else []
    )
    parameter = middle.selectbox(
        "Parameter", names, index=None, key="sweep_layer_parameter", disabled=not names
    )
    layer_values = right.text_input("Its values", key="sweep_layer_values", disabled=parameter is None)
    axes = [sweep_plan.axis(setting, text) for setting, text in texts.items() if text.strip()]
    if optimizers:
        axes.append(sweep_plan.axis("optimizer", list(optimizers)))
    if other is not None and other_values.strip():
        axes.append(sweep_plan.axis(other, other_values))
    if position is not None and parameter is not None and layer_values.strip():
        axes.append(sweep_plan.axis(f"{sweep_plan.LAYER_PREFIX}{position}.{parameter}", layer_values))
    return axes


def _refuse_locked(axes: Sequence[sweep_plan.Axis]) -> None:
    """SweepError for an axis over a setting the open exercise locks or hides."""
    exercise = controls.current()
    if exercise is None:
        return
    for item in axes:
        section, field = (
            ("model", "") if item.setting not in sweep_plan.TRAINING_SETTINGS else ("training", item.setting)
        )
        control = exercises.fixing_control(exercise, section, field)
        if control is not None:
            raise SweepError(
                f"The exercise {exercise.name!r} fixes {control.label.lower()}, so a sweep cannot vary "
                f"{item.setting}; got values {', '.join(map(str, item.values))}. Sweep over a setting it leaves open."
            )


def sweep_form(setup: Setup, num_classes: int | None, image_shape: Sequence[int] | None, ready: bool) -> None:
    """The sweep section of the Train page (inside an expander), for the draft `setup`."""
    with st.expander("Sweep: train several settings at once", icon=":material/tune:"):
        st.caption(
            "List values separated by commas: every combination becomes a run, and the settings above fill "
            f"in the rest. At most {sweep_plan.MAX_RUNS} runs; a random sample tries fewer of a large grid."
        )
        plan = None
        try:
            axes = _axes(setup)
            _refuse_locked(axes)
            left, middle, right = st.columns(3)
            sampled = left.toggle("Random sample", key="sweep_random")
            sample = int(
                middle.number_input(
                    "Runs", 1, sweep_plan.MAX_RUNS, 8, key="sweep_sample", disabled=not sampled
                )
            )
            seed = int(
                right.number_input("Sample seed", 0, 2**31 - 1, 0, key="sweep_seed", disabled=not sampled)
            )
            if axes:
                plan = sweep_plan.plan(
                    setup.model,
                    setup.training,
                    axes,
                    sample=sample if sampled else None,
                    seed=seed,
                    num_classes=num_classes,
                    dataset_input_shape=image_shape,
                )
        except CnnLabError as error:
            st.error(as_text_lines(error), icon=":material/block:")
        if plan is not None:
            sizes = " x ".join(str(len(item.values)) for item in plan.axes)
            sampled_text = (
                f", a random sample of the {plan.grid_size} combinations" if plan.sample else f" ({sizes})"
            )
            st.caption(f"**{len(plan.runs)} runs** will be planned{sampled_text}.")
        name = st.text_input("Sweep name", "sweep", key="sweep_name")
        clicked = st.button(
            "Start sweep", key="start_sweep", disabled=plan is None or not ready, icon=":material/play_arrow:"
        )
        if clicked and plan is not None:
            try:
                sweep, queued = sweeps.submit(
                    plan,
                    server.scheduler(),
                    sweep_view.book(),
                    data_settings=setup.data,
                    name=name,
                    owner=identity.current_user().id,
                    **controls.exercise_tags(),
                )
            except sweeps.SweepCut as cut:
                st.warning(as_text_lines(cut), icon=":material/content_cut:")
                if cut.queued:
                    st.session_state[STARTED_KEY] = (cut.sweep.id, cut.sweep.name, len(cut.queued))
            except CnnLabError as error:
                st.error(as_text_lines(error))
            else:
                st.session_state[STARTED_KEY] = (sweep.id, sweep.name, len(queued))
        started = st.session_state.get(STARTED_KEY)
        if started:
            sweep_id, sweep_name, count = started
            st.success(f"Sweep “{as_text(sweep_name)}” queued {count} runs.")
            st.page_link(
                RUNS_PAGE,
                label="Follow the sweep on the Runs page",
                icon=":material/table_chart:",
                query_params={sweep_view.SWEEP_PARAMETER: sweep_id},
            )
