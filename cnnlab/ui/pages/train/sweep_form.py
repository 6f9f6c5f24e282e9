"""The Train page's sweep form: a search that stops the losing settings early, or a grid of listed values.

The search (preselected, `cnnlab.ui.pages.train.search_form`) tries 12 settings picked by Optuna's TPE
and stops a trial below the median of earlier ones; a learner needs to type nothing. The grid lists
values per setting and plans every combination (or a random sample). Each field takes comma-separated
values, or for a search a range (`1e-4..1e-2 log`); a setting left empty keeps the value set in the
training form above. The plan is checked on every change, so a refused value or a grid over the limit
shows its message before anything is queued. Starting queues the runs through the server's scheduler,
tagged as one sweep, and links to its view on the Runs page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from cnnlab.classroom import exercises
from cnnlab.errors import CnnLabError, SweepError
from cnnlab.model import catalogue
from cnnlab.plain_text import as_text, as_text_lines
from cnnlab.runs.queue import search_space, sweep_plan, sweeps, trials
from cnnlab.share import Setup
from cnnlab.specs import OPTIMIZERS
from cnnlab.store.records import RunRecord
from cnnlab.ui import server
from cnnlab.ui.pages.train import search_form
from cnnlab.ui.session import controls, identity
from cnnlab.ui.widgets import sweep_view

STARTED_KEY = "cnnlab_started_sweep"
RUNS_PAGE = "app_pages/runs.py"
_FIELDS = {"learning_rate": ("Learning rates", "1e-3, 3e-3, 1e-2"), "batch_size": ("Batch sizes", "32, 64")}
_FIELDS["epochs"] = ("Epochs", "5, 10")
SEARCH, GRID = "search", "grid"


def _axes(setup: Setup) -> list[sweep_plan.Axis | search_space.Range]:
    """The lists and ranges the form's fields describe (SweepError for a value that cannot be read)."""
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
    axes = [search_space.values(setting, text) for setting, text in texts.items() if text.strip()]
    if optimizers:
        axes.append(sweep_plan.axis("optimizer", list(optimizers)))
    if other is not None and other_values.strip():
        axes.append(search_space.values(other, other_values))
    if position is not None and parameter is not None and layer_values.strip():
        axes.append(search_space.values(f"{sweep_plan.LAYER_PREFIX}{position}.{parameter}", layer_values))
    return axes


def _fixed(setup: Setup) -> list[str]:
    """The settings the open exercise fixes, which a default search leaves out."""
    exercise = controls.current()
    if exercise is None:
        return []
    return [
        setting
        for setting in [*sweep_plan.TRAINING_SETTINGS, sweep_plan.DROPOUT]
        if exercises.fixing_control(
            exercise, *(("training", setting) if setting in sweep_plan.TRAINING_SETTINGS else ("model", ""))
        )
        is not None
    ]


def _refuse_locked(axes: Sequence[sweep_plan.Axis | search_space.Range]) -> None:
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
                f"{item.setting}; got {search_space.describe(item)}. Sweep over a setting it leaves open."
            )


def sweep_form(setup: Setup, num_classes: int | None, image_shape: Sequence[int] | None, ready: bool) -> None:
    """The sweep section of the Train page (inside an expander), for the draft `setup`."""
    with st.expander("Sweep: train several settings at once", icon=":material/tune:"):
        mode = st.radio(
            "How to sweep",
            [SEARCH, GRID],
            key="sweep_mode",
            format_func=lambda choice: (
                search_form.LABEL if choice == SEARCH else "Every combination of the values I list"
            ),
        )
        if mode == SEARCH:
            st.caption(
                "CNN Lab picks each setting to try from what the earlier ones scored, and stops a setting that "
                "falls behind the others early, so the next one starts sooner. Leave the fields empty for a "
                "sensible choice, or give values (16, 32) or ranges (1e-4..1e-2 log, 16..64)."
            )
        else:
            st.caption(
                "List values separated by commas: every combination becomes a run, and the settings above fill "
                f"in the rest. At most {sweep_plan.MAX_RUNS} runs; a random sample tries fewer of a large grid."
            )
        start = None
        try:
            typed = _axes(setup)
            _refuse_locked(typed)
            start = (
                _searched(setup, typed, num_classes, image_shape)
                if mode == SEARCH
                else _planned(setup, typed, num_classes, image_shape)
            )
        except CnnLabError as error:
            st.error(as_text_lines(error), icon=":material/block:")
        name = st.text_input("Sweep name", "sweep", key="sweep_name")
        clicked = st.button(
            "Start sweep",
            key="start_sweep",
            disabled=start is None or not ready,
            icon=":material/play_arrow:",
        )
        if clicked and start is not None:
            try:
                sweep, queued = start(name)
            except sweeps.SweepCut as cut:
                st.warning(as_text_lines(cut), icon=":material/content_cut:")
                if cut.queued:
                    st.session_state[STARTED_KEY] = (cut.sweep.id, cut.sweep.name, len(cut.queued))
            except CnnLabError as error:
                st.error(as_text_lines(error))
            else:
                st.session_state[STARTED_KEY] = (sweep.id, sweep.name, len(queued))
                if sweep.search is not None:
                    st.session_state[STARTED_KEY] += (sweep.search.trials,)
        started = st.session_state.get(STARTED_KEY)
        if started:
            sweep_id, sweep_name, count, *searched = started
            st.success(
                f"Sweep “{as_text(sweep_name)}” started: its first {count} trial(s) are queued; the others "
                f"follow as they end, {searched[0]} in all."
                if searched
                else f"Sweep “{as_text(sweep_name)}” queued {count} runs."
            )
            st.page_link(
                RUNS_PAGE,
                label="Follow the sweep on the Runs page",
                icon=":material/table_chart:",
                query_params={sweep_view.SWEEP_PARAMETER: sweep_id},
            )


Start = Callable[[str], tuple[sweeps.SweepRecord, list[RunRecord]]]


def _searched(
    setup: Setup,
    typed: list[sweep_plan.Axis | search_space.Range],
    num_classes: int | None,
    image_shape: Sequence[int] | None,
) -> Start:
    """The search's options and what it will try; the function that starts it (SweepError if it cannot)."""
    space = typed or search_form.default_space(setup, _fixed(setup))
    search_form.require(space)
    search = search_form.search_settings(space)
    axes = [item for item in space if isinstance(item, sweep_plan.Axis)]
    trials.check_space(
        setup.model, setup.training, axes, search, num_classes=num_classes, dataset_input_shape=image_shape
    )
    st.caption(search_form.summary(space, search, setup.training.epochs))
    return lambda name: search_form.start(setup, space, search, name)


def _planned(
    setup: Setup,
    typed: list[sweep_plan.Axis | search_space.Range],
    num_classes: int | None,
    image_shape: Sequence[int] | None,
) -> Start | None:
    """The grid's sample options and how many runs it plans; the function that queues them (None: nothing typed)."""
    axes = search_space.listed_only(typed)
    left, middle, right = st.columns(3)
    sampled = left.toggle("Random sample", key="sweep_random")
    sample = int(
        middle.number_input("Runs", 1, sweep_plan.MAX_RUNS, 8, key="sweep_sample", disabled=not sampled)
    )
    seed = int(right.number_input("Sample seed", 0, 2**31 - 1, 0, key="sweep_seed", disabled=not sampled))
    if not axes:
        return None
    plan = sweep_plan.plan(
        setup.model,
        setup.training,
        axes,
        sample=sample if sampled else None,
        seed=seed,
        num_classes=num_classes,
        dataset_input_shape=image_shape,
    )
    sizes = " x ".join(str(len(item.values)) for item in plan.axes)
    sampled_text = f", a random sample of the {plan.grid_size} combinations" if plan.sample else f" ({sizes})"
    st.caption(f"**{len(plan.runs)} runs** will be planned{sampled_text}.")
    return lambda name: sweeps.submit(
        plan,
        server.scheduler(),
        sweep_view.book(),
        data_settings=setup.data,
        name=name,
        owner=identity.current_user().id,
        **controls.exercise_tags(),
    )
