"""Sweeps on Optuna without training: ranges checked, trials asked as runs, epochs reported from the
store's recorded rows, losing trials pruned with their reason, sweeps extended, importances computed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from cnnlab.classroom.access import RunAccess
from cnnlab.classroom.limits import Limits
from cnnlab.classroom.users import Role, User
from cnnlab.errors import BudgetError, SweepError
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import search_space, studies, sweep_plan, sweep_watcher, sweeps, trials
from cnnlab.runs.queue.search_space import Range
from cnnlab.runs.queue.studies import Search
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.made_runs import reached
from tests.waiting import wait_until

EPOCHS = 4


class Queued:
    """Queues each trial in the store, as the server's scheduler does, without starting it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, request: RunRequest) -> RunRecord:
        """Record the run queued."""
        return self.store.create_run(request)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def template() -> RunRequest:
    return RunRequest(
        spec=presets.get("digits_default").spec,
        data_settings=DataSettings(subset=120),
        training_settings=TrainingSettings(epochs=EPOCHS),
    )


def learning_rates() -> Range:
    return search_space.parse_range("learning_rate", "1e-4..1e-1 log")


def start(store: Store, search: Search, axes: list[sweep_plan.Axis] | None = None) -> sweeps.SweepRecord:
    listed = axes if axes is not None else [sweep_plan.axis("batch_size", "16,32")]
    sweep, queued = trials.start(
        template(), listed, search, Queued(store), sweeps.Sweeps(store), name="search"
    )
    assert len(queued) == min(search.parallel, search.trials)
    return sweep


def trained(store: Store, run_id: str, scores: list[float], status: Status = Status.COMPLETED) -> None:
    """The run as a worker leaves it: running, one epoch row per score, then `status` (unless running)."""
    reached(store, run_id, Status.RUNNING)
    for epoch, score in enumerate(scores, 1):
        store.add_epoch_metrics(run_id, {"epoch": epoch, "loss": 1 - score, "val_accuracy": score})
    if status != Status.RUNNING:
        store.set_status(run_id, status, reason=store.prune_reason(run_id))


def study_of(store: Store, sweep: sweeps.SweepRecord) -> optuna.Study:
    return optuna.load_study(study_name=sweep.id, storage=studies.storage(store.home))


def test_ranges_are_read_from_text_and_refused_with_what_to_write() -> None:
    found = search_space.values("learning-rate", " 1e-4..1e-2 log")
    assert found == Range("learning_rate", 1e-4, 1e-2, log=True, integer=False)
    assert search_space.values("layer 1.filters", "16..64") == Range("layer 1.filters", 16, 64, integer=True)
    assert search_space.values("batch_size", "16, 32") == sweep_plan.Axis("batch_size", (16, 32))
    with pytest.raises(
        SweepError, match=r"log range 0..0.01 log .* starts at 0; a log scale needs numbers above 0"
    ):
        search_space.values("learning_rate", "0..1e-2 log")
    with pytest.raises(SweepError, match=r"needs its low end below its high end"):
        search_space.values("dropout", "0.5..0.1")
    with pytest.raises(SweepError, match=r"batch_size takes whole numbers; got the range 16.5"):
        Range("batch_size", 16.5, 64, integer=True)
    with pytest.raises(SweepError, match=r"not LOW..HIGH with two numbers"):
        search_space.values("learning_rate", "small..large")
    with pytest.raises(SweepError, match=r"A grid tries listed values; learning_rate is a range"):
        Search(sampler="grid", ranges=(learning_rates(),))
    with pytest.raises(SweepError, match=r"Unknown pruner 'asha'; choose one of median, halving"):
        Search(pruner="asha")
    with pytest.raises(SweepError, match=r"warm-up .* at least 1; got 0"):
        Search(warmup=0)


def test_a_range_end_the_model_refuses_is_named_before_anything_is_queued(store: Store) -> None:
    search = Search(ranges=(Range("layer 1.filters", 0, 64, integer=True),))
    with pytest.raises(SweepError, match=r"The value '0' for layer 1.filters is refused"):
        trials.start(template(), [], search, Queued(store), sweeps.Sweeps(store), name="bad")
    assert sweeps.Sweeps(store).list_sweeps() == []


def test_trials_become_runs_of_the_sweep_with_values_inside_the_space(store: Store) -> None:
    sweep = start(store, Search(sampler="tpe", trials=6, parallel=2, ranges=(learning_rates(),)))
    runs = sweeps.Sweeps(store).runs(sweep.id)
    assert len(runs) == 2 and all(item.run.sweep == sweep.id for item in runs)
    for item in runs:
        values = item.values(sweep)
        assert 1e-4 <= float(str(values["learning_rate"])) <= 1e-1
        assert values["batch_size"] in (16, 32)
    assert sweep.describe().startswith("batch_size in {16, 32} x learning_rate in 0.0001..0.1 log; TPE")
    fixed = start(store, Search(trials=2, ranges=(learning_rates(),)), [sweep_plan.axis("epochs", "3")])
    assert fixed.describe().startswith("learning_rate in 0.0001..0.1 log (epochs=3); TPE")
    assert fixed.settings == ["learning_rate"]
    assert [trial.user_attrs[trials.RUN_ID] for trial in study_of(store, sweep).trials] == [
        item.run.id for item in runs
    ]


def test_a_trial_below_the_median_is_pruned_with_its_reason_and_its_slot_goes_to_the_next(
    store: Store,
) -> None:
    search = Search(
        sampler="random", pruner="median", warmup=2, trials=5, parallel=3, ranges=(learning_rates(),)
    )
    sweep = start(store, search)
    book = sweeps.Sweeps(store)
    first, second, losing = (item.run.id for item in book.runs(sweep.id))
    trained(store, first, [0.5, 0.7, 0.8, 0.85])
    trained(store, second, [0.6, 0.75, 0.8, 0.9])
    trained(store, losing, [0.1], Status.RUNNING)
    sweep_watcher.advance(book, book.get(sweep.id))
    assert store.get_run(losing).control is None  # Epoch 1 is inside the warm-up.

    store.add_epoch_metrics(losing, {"epoch": 2, "loss": 0.8, "val_accuracy": 0.2})
    sweep_watcher.advance(book, book.get(sweep.id))
    assert store.get_run(losing).control == "prune"
    reason = store.prune_reason(losing)
    assert reason == (
        "Pruned at epoch 2: below the median of earlier trials (72.5%), with a validation accuracy of 20.0%."
    )
    # The worker answers the request as it answers Stop, with the status of its own.
    store.set_status(losing, Status.PRUNED, reason=reason)
    sweep_watcher.advance(book, book.get(sweep.id))
    states = [trial.state for trial in study_of(store, sweep).trials]
    assert states[:3] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    ]
    assert study_of(store, sweep).best_value == pytest.approx(0.9)
    runs = book.runs(sweep.id)
    assert len(runs) == 5 and [item.run.status for item in runs[3:]] == [Status.QUEUED, Status.QUEUED]
    row = sweeps.table(book.get(sweep.id), runs).set_index("id").loc[losing]
    assert row["status"] == "pruned" and row[sweeps.REASON_COLUMN] == reason


def test_the_budget_closes_a_sweep_and_extending_it_adds_trials_without_repeating_one(store: Store) -> None:
    axes = [sweep_plan.axis("batch_size", "16,32"), sweep_plan.axis("learning_rate", "1e-3,1e-2")]
    sweep = start(store, Search(sampler="grid", pruner="none", trials=2, parallel=2), axes)
    book = sweeps.Sweeps(store)
    for number, item in enumerate(book.runs(sweep.id)):
        trained(store, item.run.id, [0.5 + number / 10] * EPOCHS)
    sweep_watcher.advance(book, book.get(sweep.id))
    assert book.get(sweep.id).closed and book.open_searches() == []

    trials.extend(book, trials.find(book, "search").id, 2)
    assert not book.get(sweep.id).closed
    sweep_watcher.advance(book, book.get(sweep.id))
    runs = book.runs(sweep.id)
    assert len(runs) == 4
    values = {tuple(item.values(book.get(sweep.id)).values()) for item in runs}
    assert values == {(16, 0.001), (16, 0.01), (32, 0.001), (32, 0.01)}  # The whole grid, each once.
    with pytest.raises(SweepError, match="at least 1 trial"):
        trials.extend(book, sweep.id, 0)
    with pytest.raises(SweepError, match="has tried all 4 combinations of its grid"):
        trials.extend(book, sweep.id, 1)


def test_a_student_extends_a_search_only_within_the_class_limits_a_new_sweep_obeys(store: Store) -> None:
    ada = User("student:ada", "Ada", Role.STUDENT)
    limits = Limits(max_queued_per_student=3, max_epochs=EPOCHS)
    access = RunAccess(store, ada, limits)
    book = sweeps.Sweeps(store)
    search = Search(sampler="random", pruner="none", trials=2, parallel=2, ranges=(learning_rates(),))
    owned = dataclasses.replace(template(), owner=ada.id)
    sweep, queued = trials.start(
        owned, [], search, Queued(store), book, name="ada's", check_budget=access.check_budget
    )
    assert len(queued) == 2
    # Within the limits (two of three queue places used): more trials are given.
    assert trials.extend(book, sweep.id, 4, check_budget=access.check_budget).search.trials == 6

    # A queue already full refuses more, as it would refuse a new sweep, saying the limit and what to do.
    store.create_run(dataclasses.replace(owned, name="ada's own run"))
    with pytest.raises(BudgetError) as refused:
        trials.extend(book, sweep.id, 4, check_budget=access.check_budget)
    message = str(refused.value)
    assert (
        f"Sweep {sweep.id} (ada's) cannot try 4 more settings: You already have 3 run(s) waiting" in message
    )
    assert "this class allows 3 per student (max_queued_per_student in classroom.toml)" in message
    assert "stop one of your queued runs on the Runs page" in message
    with pytest.raises(BudgetError, match="waiting in the queue"):
        access.check_budget(trials.largest(owned, [], search))  # The same refusal as a new sweep's.
    assert book.get(sweep.id).search.trials == 6  # Nothing was added.

    # Limits lowered since the sweep started: its trials are now over them, and so is extending it.
    for run in store.list_runs(status=Status.QUEUED):
        store.set_status(run.id, Status.STOPPED)
    tighter = RunAccess(store, ada, Limits(max_epochs=EPOCHS - 1))
    with pytest.raises(
        BudgetError,
        match=rf"The number of epochs is {EPOCHS}, above this class's limit of {EPOCHS - 1} \(max_epochs",
    ):
        trials.extend(book, sweep.id, 4, check_budget=tighter.check_budget)
    # A teacher is not limited; and no sweep grows past the settings one sweep may try.
    teacher = RunAccess(store, User("teacher:lee", "Lee", Role.TEACHER), Limits(max_epochs=1))
    assert trials.extend(book, sweep.id, 250, check_budget=teacher.check_budget).search.trials == 256
    with pytest.raises(SweepError, match=r"this one has 256, so 1 more would make 257\. Add at most 0"):
        trials.extend(book, sweep.id, 1, check_budget=teacher.check_budget)


def test_a_budget_of_epochs_stops_asking_for_trials(store: Store) -> None:
    sweep = start(
        store,
        Search(
            sampler="random", pruner="none", trials=10, parallel=1, max_epochs=9, ranges=(learning_rates(),)
        ),
    )
    book = sweeps.Sweeps(store)
    for _ in range(2):
        (active,) = [item.run.id for item in book.runs(sweep.id) if item.run.is_active]
        trained(store, active, [0.5] * EPOCHS)
        sweep_watcher.advance(book, book.get(sweep.id))
    assert len(book.runs(sweep.id)) == 2  # 4 + 4 epochs spent; a third trial would make 12 > 9.
    assert book.get(sweep.id).closed


def test_stopping_a_sweep_asks_for_no_more_trials(store: Store) -> None:
    sweep = start(store, Search(sampler="random", trials=8, parallel=2, ranges=(learning_rates(),)))
    book = sweeps.Sweeps(store)

    class Stopper:
        def stop(self, run_id: str) -> RunRecord:
            return store.set_status(run_id, Status.STOPPED, reason="Stopped before it started.")

    assert len(sweeps.stop(book, sweep.id, Stopper())) == 2
    sweep_watcher.advance(book, book.get(sweep.id))
    assert len(book.runs(sweep.id)) == 2 and book.get(sweep.id).closed
    assert {trial.state for trial in study_of(store, sweep).trials} == {optuna.trial.TrialState.FAIL}


def test_importances_of_a_finished_sweep_rank_the_setting_that_decided(store: Store) -> None:
    search = Search(sampler="random", pruner="none", trials=8, parallel=8, seed=3, ranges=(learning_rates(),))
    sweep = start(store, search)
    book = sweeps.Sweeps(store)
    for item in book.runs(sweep.id):
        rate = float(str(item.values(sweep)["learning_rate"]))
        trained(store, item.run.id, [0.1, 0.2, 0.3, 0.4 + rate * 5])  # Only the rate matters.
    sweep_watcher.advance(book, book.get(sweep.id))
    found = studies.importances(study_of(store, sweep))
    assert set(found) == {"learning_rate", "batch_size"}
    assert found["learning_rate"] > 0.8 and sum(found.values()) == pytest.approx(1.0)
    # The watcher computed them too, in a thread of their own, and kept them in the study for the page.
    wait_until(lambda: studies.stored_importances(study_of(store, sweep))[0] == 8, "the kept importances")
    assert studies.stored_importances(study_of(store, sweep))[1] == pytest.approx(found)


def test_the_importance_chart_waits_until_the_scores_differ(store: Store) -> None:
    from cnnlab.figures import sweeps as sweep_figures

    sweep = start(
        store, Search(sampler="random", pruner="none", trials=3, parallel=3, ranges=(learning_rates(),))
    )
    book = sweeps.Sweeps(store)
    for item in book.runs(sweep.id):
        trained(store, item.run.id, [0.5] * EPOCHS)  # Every setting scored the same.
    sweep_watcher.advance(book, book.get(sweep.id))
    study = study_of(store, sweep)
    assert studies.importances(study) == {}
    assert len(sweep_figures.history(study).data[0].x) == 3
    chart = sweep_figures.importances({"learning_rate": 0.8, "batch_size": 0.2}, 4)
    assert list(chart.data[0].y) == ["batch_size", "learning_rate"]  # The largest on top.
    assert chart.layout.title.text == "Which settings mattered (from 4 finished trials)"
