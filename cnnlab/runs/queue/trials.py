"""Starting and extending a sweep on Optuna: each trial asked of the study becomes an ordinary run.

`start` checks the search space (every listed value, both ends of every range, and the models at
the low and high corners, against the settings' rules, the layer catalogue and the data), records
the sweep, makes its study and queues its first `Search.parallel` trials through the submitter it is
given (the server's access-checked scheduler applies the class's budgets and fair queue to each).
`ask` is ask-and-tell's "ask": the study's sampler picks the next settings, the run is planned,
checked and queued as a `RunRequest` tagged with the sweep, and the trial remembers its run's id.
`cnnlab.runs.queue.sweep_watcher` reports each epoch, prunes, tells results and asks for the rest.
`extend` gives a sweep more trials (the CLI's `sweep --resume NAME --trials +N`, a Runs page button):
the trials already told stay, and the sampler goes on from them. It is checked against the class budget
as a new sweep is (its largest trial, and the student's queue), since its trials are queued by the
server's watcher, which knows no budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cnnlab.errors import BudgetError, CnnLabError, SweepError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import studies, sweep_plan
from cnnlab.runs.queue.studies import Search
from cnnlab.runs.queue.sweep_plan import Axis, Value, grid_size
from cnnlab.runs.queue.sweeps import Submitter, SweepCut, SweepRecord, Sweeps
from cnnlab.specs import ModelSpec, TrainingSettings
from cnnlab.store.records import RunRecord

if TYPE_CHECKING:
    import optuna

RUN_ID = "run_id"  # the user attribute of a trial that names its run


def check_space(
    spec: ModelSpec,
    training: TrainingSettings,
    axes: Sequence[Axis],
    search: Search,
    *,
    num_classes: int | None = None,
    dataset_input_shape: Sequence[int] | None = None,
) -> None:
    """SweepError for a search space that cannot be swept, naming the setting and the value.

    Each listed value and each end of each range is checked alone, then the models with every range at
    its low end and at its high end (the first listed value of each axis) against the data.
    """
    everything = [*axes, *(item.bounds() for item in search.ranges)]
    if not everything:
        raise SweepError(
            "A sweep needs at least one setting with values or a range, e.g. learning_rate 1e-4..1e-2 log."
        )
    settings = [item.setting for item in everything]
    if len(set(settings)) != len(settings):
        raise SweepError(f"Each setting can be swept once; got {settings}.")
    for item in everything:
        sweep_plan.check_axis(spec, training, item)
    for end in (0, -1):
        values = {item.setting: item.values[0 if item in axes else end] for item in everything}
        sweep_plan.planned_run(
            spec,
            training,
            everything,
            values,
            num_classes=num_classes,
            dataset_input_shape=dataset_input_shape,
        )


def largest(template: RunRequest, axes: Sequence[Axis], search: Search) -> RunRequest:
    """The sweep's largest trial: every range at its high end and each listed number at its largest
    (the run a class budget is checked against before the first trial is queued)."""
    values: dict[str, Value] = {item.setting: item.bounds().values[-1] for item in search.ranges}
    for item in axes:
        numbers = [
            value for value in item.values if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        values[item.setting] = max(numbers) if numbers else item.values[0]
    everything = [*axes, *(item.bounds() for item in search.ranges)]
    spec, training = sweep_plan.apply(template.spec, template.training_settings, everything, values)
    return dataclasses.replace(template, spec=spec, training_settings=training)


def _all_axes(sweep: SweepRecord) -> list[Axis]:
    """The sweep's listed axes and its ranges as axes (their ends), in the order a run applies them."""
    return (
        [*sweep.axes, *(item.bounds() for item in sweep.search.ranges)] if sweep.search else list(sweep.axes)
    )


def _epochs(sweep: SweepRecord, template: RunRequest) -> int:
    """The most epochs one trial trains: the largest swept value of epochs, else the template's."""
    for item in _all_axes(sweep):
        if item.setting == "epochs":
            return int(max(float(str(value)) for value in item.values))
    return template.training_settings.epochs


def load(sweep: SweepRecord, home_of: Sweeps, template: RunRequest, *, create: bool = False) -> optuna.Study:
    """The study of the sweep on Optuna, with its sampler and pruner."""
    if sweep.search is None:
        raise SweepError(f"Sweep {sweep.id} is a plain grid or sample; it has no Optuna study.")
    return studies.load(
        home_of.store.home, sweep.id, sweep.search, sweep.axes, _epochs(sweep, template), create=create
    )


def ask(study: optuna.Study, sweep: SweepRecord, template: RunRequest, submitter: Submitter) -> RunRecord:
    """Ask the study for the next trial, queue it as a run of the sweep through `submitter`, and return it.

    A trial whose run is refused (a budget, the queue limit) is told failed, and the refusal raised.
    """
    import optuna

    assert sweep.search is not None
    trial = study.ask(studies.distributions(sweep.axes, sweep.search.ranges))
    values: dict[str, Value] = dict(trial.params)
    try:
        planned = sweep_plan.planned_run(template.spec, template.training_settings, _all_axes(sweep), values)
        run = submitter.submit(
            dataclasses.replace(
                template,
                spec=planned.spec,
                training_settings=planned.training,
                name=f"{sweep.name} #{trial.number + 1}: {planned.label()}",
                sweep=sweep.id,
            )
        )
    except CnnLabError:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    trial.set_user_attr(RUN_ID, run.id)
    return run


def template_of(run: RunRecord) -> RunRequest:
    """The request a sweep's next trial starts from: an earlier trial's data, model, training, owner
    and exercise (every swept setting is set again by the trial's own values)."""
    return RunRequest(
        spec=run.model_spec(),
        data_settings=run.data(),
        training_settings=run.training(),
        owner=run.owner,
        exercise=run.exercise,
        exercise_locked=run.exercise_control_names("locked"),
        exercise_hidden=run.exercise_control_names("hidden"),
    )


def start(
    template: RunRequest,
    axes: Sequence[Axis],
    search: Search,
    submitter: Submitter,
    book: Sweeps,
    *,
    name: str,
    num_classes: int | None = None,
    dataset_input_shape: Sequence[int] | None = None,
    check_budget: Callable[[RunRequest], None] | None = None,
) -> tuple[SweepRecord, list[RunRecord]]:
    """Check the space, record the sweep, make its study and queue its first trials (see the module).

    `check_budget` (the access rule's) refuses a sweep whose largest trial is over the class budget:
    the trials after the first are queued by the server's watcher, which knows no budget.

    When the submitter refuses a trial after the first, the sweep goes on with those queued (as many at
    once from then on); when it refuses the first, `SweepCut` says why and the sweep is closed.
    """
    check_space(
        template.spec,
        template.training_settings,
        axes,
        search,
        num_classes=num_classes,
        dataset_input_shape=dataset_input_shape,
    )
    if check_budget is not None:
        check_budget(largest(template, axes, search))
    sweep = book.create_search(axes, search, name, template.owner)
    queued: list[RunRecord] = []
    first = min(search.parallel, studies.trial_budget(search, axes))
    # The scheduler's watch (called by each submit) waits for the first trials to know their runs.
    with studies.turn(book.store.home, wait=True):
        study = load(sweep, book, template, create=True)
        for _ in range(first):
            try:
                queued.append(ask(study, sweep, template, submitter))
            except CnnLabError as error:
                if not queued:
                    book.set_search(sweep.id, dataclasses.replace(search, stopped=True), closed=True)
                    raise SweepCut(sweep, queued, search.trials, "its first trial", error) from None
                # The budget allows fewer at once: the sweep keeps to that many.
                sweep = book.set_search(
                    sweep.id, dataclasses.replace(search, parallel=len(queued)), closed=False
                )
                break
    return sweep, queued


def extend(
    book: Sweeps,
    sweep_id: str,
    more_trials: int,
    *,
    check_budget: Callable[[RunRequest], None] | None = None,
) -> SweepRecord:
    """Give a sweep on Optuna `more_trials` more trials; the sweep's watcher queues them as slots free.

    The trials already told stay in the study: none is tried again, and TPE learns from them all.
    `check_budget` (the acting user's access rule) refuses the extension as it would refuse the same
    sweep started now: BudgetError naming the limit, with what to do.
    """
    sweep = book.get(sweep_id)
    if sweep.search is None:
        raise SweepError(
            f"Sweep {sweep.id} ({sweep.name}) is a plain grid or sample, not a search on Optuna; "
            "start a new sweep with a sampler (tpe, random or grid) to extend it later."
        )
    extended = sweep.search.extended(more_trials)
    runs = book.runs(sweep.id)
    tried = len(runs)
    if not tried:
        raise SweepError(
            f"Sweep {sweep.id} ({sweep.name}) never queued a trial, so it has none to go on from."
        )
    if sweep.search.sampler == "grid" and tried >= grid_size(sweep.axes):
        raise SweepError(
            f"Sweep {sweep.id} ({sweep.name}) has tried all {tried} combinations of its grid; start a new sweep "
            "with more values, or with TPE or random over ranges."
        )
    if check_budget is not None:
        try:
            check_budget(largest(template_of(runs[0].run), sweep.axes, extended))
        except BudgetError as error:
            raise BudgetError(
                f"Sweep {sweep.id} ({sweep.name}) cannot try {more_trials} more settings: {error} "
                "A sweep given more trials is held to the class's limits as a new sweep is."
            ) from None
    return book.set_search(sweep.id, extended, closed=False)


def find(book: Sweeps, name_or_id: str, owner: str | None = None) -> SweepRecord:
    """The sweep with this id (or unique prefix) or, failing that, the newest sweep of this name."""
    try:
        return book.get(name_or_id)
    except SweepError:
        named = [item for item in book.list_sweeps(owner=owner) if item.name == name_or_id.strip()]
        if not named:
            raise SweepError(
                f"No sweep is named or numbered {name_or_id!r}; `python -m cnnlab sweeps` lists them."
            ) from None
        return named[0]
