"""The Train page's search: "Try settings for me and stop the losing ones early", on Optuna, expert options folded.

A learner who types nothing gets a sensible space (learning rates 1e-4..1e-2 on a log scale, batch sizes
16, 32 and 64, dropout 0.1..0.5 when the model has Dropout; a setting the open exercise fixes is
left out), TPE, median pruning after a warm-up of 2 epochs, and 12 trials. The fields of the sweep
form take ranges (`1e-4..1e-2 log`, `16..64`) as well as lists; the expert options choose the
sampler, the pruner and its warm-up, the trials and a budget of epochs in all.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from cnnlab.errors import SweepError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import search_space, studies, sweep_plan, trials
from cnnlab.runs.queue.capacity import default_max_workers
from cnnlab.runs.queue.search_space import Range
from cnnlab.runs.queue.studies import Search
from cnnlab.runs.queue.sweep_plan import Axis
from cnnlab.runs.queue.sweeps import SweepRecord
from cnnlab.share import Setup
from cnnlab.store.records import RunRecord
from cnnlab.ui import server
from cnnlab.ui.session import controls, identity
from cnnlab.ui.widgets import sweep_view

DEFAULT_TRIALS = 12
DEFAULT_WARMUP = 2
# The search's choice as a learner reads it: the same words whatever the options (a radio whose
# labels change forgets its choice), the number of settings in the sentence below it.
LABEL = "Try settings for me and stop the losing ones early (recommended)"


def default_space(setup: Setup, fixed: Sequence[str] = ()) -> list[Axis | Range]:
    """What a search tries when no field is filled in, leaving out the settings in `fixed`."""
    space: list[Axis | Range] = [
        search_space.parse_range("learning_rate", "1e-4..1e-2 log"),
        sweep_plan.axis("batch_size", "16, 32, 64"),
    ]
    if any(layer.type in sweep_plan.DROPOUT_TYPES for layer in setup.model.layers):
        space.append(search_space.parse_range(sweep_plan.DROPOUT, "0.1..0.5"))
    return [item for item in space if item.setting not in fixed]


def search_settings(space: Sequence[Axis | Range]) -> Search:
    """The search the expert options describe; folded, their defaults (TPE, median pruning after 2
    epochs, 12 settings, no budget of epochs)."""
    ranges = tuple(item for item in space if isinstance(item, Range))
    if not st.toggle("Expert options", key="sweep_expert"):
        return Search(
            trials=DEFAULT_TRIALS, warmup=DEFAULT_WARMUP, parallel=default_max_workers(), ranges=ranges
        )
    left, middle, right = st.columns(3)
    sampler = left.selectbox(
        "Sampler",
        list(studies.SAMPLERS),
        key="sweep_sampler",
        format_func=lambda name: studies.SAMPLERS[name],
    )
    pruner = middle.selectbox(
        "Stop losing trials",
        list(studies.PRUNERS),
        key="sweep_pruner",
        format_func=lambda name: studies.PRUNERS[name],
    )
    warmup = right.number_input(
        "Warm-up (epochs before stopping one)", 1, 100, DEFAULT_WARMUP, key="sweep_warmup"
    )
    left, middle, right = st.columns(3)
    count = left.number_input("Settings to try", 1, 256, DEFAULT_TRIALS, key="sweep_trials")
    epochs = middle.number_input(
        "At most this many epochs in all (0: no limit)", 0, 100_000, 0, key="sweep_max_epochs"
    )
    seed = right.number_input("Seed", 0, 2**31 - 1, 0, key="sweep_search_seed")
    return Search(
        sampler=str(sampler),
        pruner=str(pruner),
        warmup=int(warmup),
        trials=int(count),
        max_epochs=int(epochs) or None,
        parallel=default_max_workers(),
        seed=int(seed),
        ranges=ranges,
    )


def summary(space: Sequence[Axis | Range], search: Search, epochs: int) -> str:
    """What the search will do, in one sentence."""
    axes = [item for item in space if isinstance(item, Axis)]
    budget = studies.trial_budget(search, axes)
    over = " x ".join(search_space.describe(item) for item in space)
    stopping = (
        "every trial trains to the end"
        if search.pruner == "none"
        else f"a trial {studies.PRUNERS[search.pruner]} after {search.warmup} epochs stops early"
    )
    return f"**{budget} settings** of {over} will be tried ({studies.SAMPLERS[search.sampler]}), {epochs} epoch(s) each at most; {stopping}."


def start(
    setup: Setup, space: Sequence[Axis | Range], search: Search, name: str
) -> tuple[SweepRecord, list[RunRecord]]:
    """Start the search as this session's user, through the server's access-checked scheduler."""
    access = server.scheduler()
    template = RunRequest(
        spec=setup.model,
        data_settings=setup.data,
        training_settings=setup.training,
        owner=identity.current_user().id,
        **controls.exercise_tags(),
    )
    return trials.start(
        template,
        [item for item in space if isinstance(item, Axis)],
        search,
        access,
        sweep_view.book(),
        name=name,
        check_budget=access.check_budget,
    )


def require(space: Sequence[Axis | Range]) -> None:
    """SweepError when there is nothing to search (every default setting fixed by the exercise)."""
    if not space:
        raise SweepError(
            "Nothing is left to search: fill in at least one field above with values (16, 32) or a range (16..64)."
        )
