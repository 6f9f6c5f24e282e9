"""Sweeps in the store: recorded as a group, read with their best accuracy, stopped as a whole, charted, and
run for real from the command line through the scheduler."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.cli import main as cli
from cnnlab.errors import SweepError
from cnnlab.figures import sweeps as sweep_figures
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import sweeps
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.runs.queue.sweep_plan import axis, layer_axis, plan
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests import fake_jobs

SPEC = presets.get("digits_default").spec
TINY_SWEEP = ["--learning-rate", "1e-3,1e-2", "--epochs", "1", "--subset", "150", "--name", "tiny", "--wait"]


class QueueInStore:
    """Queues runs in the store only (no worker starts): what `python -m cnnlab sweep` does without --wait."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, request: RunRequest) -> RunRecord:
        return self.store.create_run(request)


def queued_sweep(store: Store, name: str = "lr and dropout") -> tuple[sweeps.SweepRecord, list[RunRecord]]:
    planned = plan(
        SPEC, TrainingSettings(epochs=2), [axis("learning_rate", "1e-3,1e-2"), axis("dropout", "0.2,0.5")]
    )
    return sweeps.submit(
        planned,
        QueueInStore(store),
        sweeps.Sweeps(store),
        data_settings=DataSettings(),
        name=name,
        owner="ann",
    )


def test_a_sweep_is_recorded_as_a_named_group_of_tagged_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.create_run(
        RunRequest(
            spec=SPEC, data_settings=DataSettings(), training_settings=TrainingSettings(), name="alone"
        )
    )
    sweep, queued = queued_sweep(store)
    book = sweeps.Sweeps(Store(tmp_path))  # Read back through another connection.
    assert book.get(sweep.id[:-2]) == sweep and book.list_sweeps() == [sweep]
    assert book.list_sweeps(owner="ann") == [sweep] and book.list_sweeps(owner="bob") == []
    assert sweep.settings == ["learning_rate", "dropout"]
    assert sweep.describe() == "learning_rate in {0.001, 0.01} x dropout in {0.2, 0.5}"
    runs = book.runs(sweep.id)
    assert [item.run.id for item in runs] == [run.id for run in queued]
    assert {run.sweep for run in store.list_runs() if run.name != "alone"} == {sweep.id}
    assert [item.values(sweep) for item in runs] == [
        {"learning_rate": 0.001, "dropout": 0.2},
        {"learning_rate": 0.001, "dropout": 0.5},
        {"learning_rate": 0.01, "dropout": 0.2},
        {"learning_rate": 0.01, "dropout": 0.5},
    ]
    assert runs[0].run.name == "lr and dropout: learning_rate=0.001, dropout=0.2"
    with pytest.raises(SweepError, match="matches no sweep"):
        book.get("nope")


def test_the_best_accuracy_is_read_live_and_the_table_ranks_by_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sweep, queued = queued_sweep(store)
    for run, accuracies in zip(queued[:3], ([0.5, 0.7], [0.9, 0.6], [0.8]), strict=True):
        for epoch, accuracy in enumerate(accuracies, 1):
            store.add_epoch_metrics(
                run.id, {"epoch": epoch, "loss": 1.0, "accuracy": 0.5, "val_accuracy": accuracy}
            )
    store.set_results(queued[2].id, {"best_val_accuracy": 0.95})  # A finished run's own record wins.
    runs = sweeps.Sweeps(store).runs(sweep.id)
    assert [item.best_val_accuracy for item in runs] == [0.7, 0.9, 0.95, None]
    assert [item.run.last_epoch for item in runs] == [2, 2, 1, 0]
    best = sweeps.best(runs)
    assert best is not None and best.run.id == queued[2].id
    ranked = sweeps.table(sweep, runs, by_accuracy=True)
    assert list(ranked["id"]) == [queued[2].id, queued[1].id, queued[0].id, queued[3].id]
    assert list(ranked.columns) == [
        "id",
        "name",
        "learning_rate",
        "dropout",
        "status",
        "epoch",
        sweeps.ACCURACY_COLUMN,
        "best",
        sweeps.REASON_COLUMN,
    ]
    assert list(ranked["best"]) == [True, False, False, False]


def test_stop_all_stops_queued_runs_asks_live_ones_and_leaves_ended_ones(tmp_path: Path) -> None:
    store = Store(tmp_path)
    sweep, queued = queued_sweep(store)
    other = store.create_run(
        RunRequest(spec=SPEC, data_settings=DataSettings(), training_settings=TrainingSettings())
    )
    live, ended = queued[0].id, queued[1].id
    for run_id in (live, ended):
        store.set_status(run_id, Status.STARTING)
        store.set_status(run_id, Status.RUNNING)
    store.set_status(ended, Status.COMPLETED)
    asked = sweeps.stop(sweeps.Sweeps(store), sweep.id, Scheduler(store, warm=False))
    assert sorted(asked) == sorted([live, queued[2].id, queued[3].id])
    assert [store.get_run(run.id).status for run in queued[2:]] == [Status.STOPPED, Status.STOPPED]
    assert store.get_run(live).control == "stop" and store.get_run(live).status == Status.RUNNING
    assert store.get_run(ended).status == Status.COMPLETED
    assert store.get_run(other.id).status == Status.QUEUED  # Not in the sweep.


def test_the_chart_has_one_line_per_scored_run_and_an_axis_per_setting(tmp_path: Path) -> None:
    store = Store(tmp_path)
    planned = plan(
        SPEC,
        TrainingSettings(),
        [axis("learning_rate", "1e-3,1e-2"), axis("optimizer", "adam,sgd"), layer_axis("1.filters=4,8")],
        sample=5,
        seed=1,
    )
    sweep, queued = sweeps.submit(
        planned,
        QueueInStore(store),
        sweeps.Sweeps(store),
        data_settings=DataSettings(),
        name="s",
        owner="ann",
    )
    for position, run in enumerate(queued[:4]):
        store.add_epoch_metrics(run.id, {"epoch": 1, "val_accuracy": 0.5 + position / 10})
    runs = sweeps.Sweeps(store).runs(sweep.id)
    best = sweeps.best(runs)
    assert best is not None
    figure = sweep_figures.parallel_coordinates(sweeps.table(sweep, runs), sweep.settings, best.run.id)
    (trace,) = figure.data
    dimensions = trace.dimensions
    assert [dimension.label for dimension in dimensions] == [
        "learning_rate (log scale)",
        "optimizer",
        "layer 1.filters",
        sweep_figures.ACCURACY_COLUMN,
    ]
    assert all(len(dimension.values) == 4 for dimension in dimensions)  # The unscored fifth run has no line.
    assert list(dimensions[0].ticktext) == ["0.001", "0.01"] and list(dimensions[0].tickvals) == [-3.0, -2.0]
    assert list(dimensions[1].ticktext) == ["adam", "sgd"]
    values = sweeps.table(sweep, runs).head(4)
    assert list(dimensions[1].values) == [0.0 if name == "adam" else 1.0 for name in values["optimizer"]]
    assert list(dimensions[3].values) == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert list(trace.line.color) == [0.0, 0.0, 0.0, 1.0]  # The best run, and only it, in red, drawn last.
    first_best = sweep_figures.parallel_coordinates(sweeps.table(sweep, runs), sweep.settings, queued[0].id)
    assert list(first_best.data[0].dimensions[3].values) == pytest.approx([0.6, 0.7, 0.8, 0.5])
    assert list(first_best.data[0].line.color) == [0.0, 0.0, 0.0, 1.0]
    assert sweep_figures.ACCURACY_COLUMN == sweeps.ACCURACY_COLUMN
    empty = sweep_figures.parallel_coordinates(sweeps.table(sweep, runs).iloc[4:], sweep.settings)
    assert not empty.data and "No run of the sweep" in empty.layout.annotations[0].text


def test_cli_sweep_plans_prints_and_refuses_naming_the_value(
    cnnlab_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = [
        "sweep",
        "digits_default",
        "--learning-rate",
        "1e-3,3e-3",
        "--batch-size",
        "16,32",
        "--name",
        "grid",
    ]
    assert cli.main(arguments) == 0
    out = capsys.readouterr().out
    assert "learning_rate in {0.001, 0.003} x batch_size in {16, 32}; 4 runs queued." in out
    store = Store(cnnlab_home)
    (sweep,) = sweeps.Sweeps(store).list_sweeps()
    assert {run.sweep for run in store.list_runs()} == {sweep.id} and len(store.list_runs()) == 4
    assert all(run.status == Status.QUEUED and run.owner == "cli" for run in store.list_runs())
    assert cli.main(["sweep-stop", sweep.id]) == 0
    assert "Asked 4 runs of sweep" in capsys.readouterr().out
    assert cli.main(["sweep", "digits_default", "--dropout", "0.3,2"]) == 2
    assert "The value '2' for dropout is refused" in capsys.readouterr().err
    assert cli.main(["sweep-show", "zzz"]) == 2


def test_cli_sweeps_act_as_the_user_named_with_as(
    cnnlab_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = ["--as", "student:ada"]
    assert cli.main([*ada, "sweep", "digits_default", "--learning-rate", "1e-3,3e-3", "--name", "ada's"]) == 0
    store = Store(cnnlab_home)
    (sweep,) = sweeps.Sweeps(store).list_sweeps()
    assert sweep.owner == "student:ada" and {run.owner for run in store.list_runs()} == {"student:ada"}
    capsys.readouterr()

    assert cli.main(["--as", "student:bo", "sweep-stop", sweep.id]) == 2
    assert f"Sweep {sweep.id!r} is not one you can open" in capsys.readouterr().err
    assert all(run.status == Status.QUEUED for run in store.list_runs())
    assert cli.main(["--as", "student:bo", "sweeps"]) == 0
    assert sweep.id not in capsys.readouterr().out
    assert cli.main([*ada, "sweep-stop", sweep.id]) == 0
    assert all(run.status == Status.STOPPED for run in store.list_runs())


def test_cli_search_with_tpe_queues_its_first_trials_and_resume_adds_more(
    cnnlab_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["sweep", "digits_default", "--learning-rate", "1e-4..1e-2:log", "--batch-size", "16,32"]
    assert cli.main([*arguments, "--sampler", "tpe", "--trials", "4", "--parallel", "2", "--name", "lr"]) == 0
    out = capsys.readouterr().out
    assert "batch_size in {16, 32} x learning_rate in 0.0001..0.01 log; TPE" in out
    assert (
        "4 trials, pruning (below the median of earlier trials) from epoch 2; first 2 trial(s) queued." in out
    )
    store = Store(cnnlab_home)
    (sweep,) = sweeps.Sweeps(store).list_sweeps()
    runs = sweeps.Sweeps(store).runs(sweep.id)
    assert [item.run.status for item in runs] == [Status.QUEUED] * 2
    assert all(1e-4 <= item.run.training().learning_rate <= 1e-2 for item in runs)
    assert cli.main(["sweep", "--resume", "lr", "--trials", "+3"]) == 0
    assert "7 trials," in capsys.readouterr().out and sweeps.Sweeps(store).get(sweep.id).search.trials == 7
    assert cli.main(["sweep", "--resume", "lr", "--trials", "3"]) == 2
    assert "write +N with --resume" in capsys.readouterr().err
    assert cli.main(["sweep", "digits_default", "--layer", "1.filters=0..64"]) == 2
    assert "The value '0' for layer 1.filters is refused" in capsys.readouterr().err
    assert cli.main(["sweep", "digits_default", "--learning-rate", "1e-3..1e-2", "--random", "2"]) == 2
    assert "use --sampler random --trials N for random picks" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_search_with_tpe_and_median_pruning_prunes_a_losing_trial_and_goes_on(
    cnnlab_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real worker processes run a light trial whose validation accuracy is set by its learning rate
    # (tests/fake_jobs.py); the CLI's own scheduler and sweep watcher report its epochs and prune.
    monkeypatch.setenv("CNNLAB_WORKER_ENTRY", "tests.fake_jobs:sweep_trial_job")
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "2")
    arguments = ["sweep", "digits_default", "--learning-rate", "1e-4..1e-2:log", "--epochs", "5"]
    search = ["--sampler", "tpe", "--pruner", "median", "--warmup", "2", "--trials", "6", "--parallel", "2"]
    assert cli.main([*arguments, *search, "--name", "pruned", "--wait"]) == 0
    out = capsys.readouterr().out
    store = Store(cnnlab_home)
    (sweep,) = sweeps.Sweeps(store).list_sweeps()
    runs = sweeps.Sweeps(store).runs(sweep.id)
    assert len(runs) == 6 and all(item.run.is_ended for item in runs), [
        (r.run.name, r.run.status) for r in runs
    ]
    pruned = [item.run for item in runs if item.run.status == Status.PRUNED]
    assert pruned, [(item.run.name, item.run.status, item.best_val_accuracy) for item in runs]
    for run in pruned:
        assert run.reason is not None and re.match(r"Pruned at epoch [234]: below the median", run.reason)
        assert run.last_epoch < 5
        assert run.reason in out  # The table printed at the end says why.
    finished = [item.run for item in runs if item.run.status == Status.COMPLETED]
    # The oracle: a pruned trial's learning rate is farther from the best one than a finished trial's.
    assert max(fake_jobs.trial_quality(run.training().learning_rate) for run in pruned) < max(
        fake_jobs.trial_quality(run.training().learning_rate) for run in finished
    )


@pytest.mark.slow
def test_a_real_sweep_trains_through_the_scheduler_and_ranks_its_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "sweep", "digits_default", *TINY_SWEEP],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "CNNLAB_HOME": str(tmp_path),
            "CNNLAB_MAX_WORKERS": "2",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    store = Store(tmp_path)
    (sweep,) = sweeps.Sweeps(store).list_sweeps()
    runs = sweeps.Sweeps(store).runs(sweep.id)
    assert [item.run.status for item in runs] == [Status.COMPLETED, Status.COMPLETED]
    assert all(item.best_val_accuracy is not None and item.run.last_epoch == 1 for item in runs)
    assert [item.run.training().learning_rate for item in runs] == [0.001, 0.01]
    ranked = sorted(runs, key=lambda item: -(item.best_val_accuracy or 0.0))
    lines = result.stdout.strip().splitlines()
    header = next(index for index, line in enumerate(lines) if line.split()[:2] == ["id", "name"])
    assert [line.split()[0] for line in lines[header + 1 :]] == [item.run.id for item in ranked]
    assert "2/2 runs ended" in result.stderr


def test_a_run_over_the_class_budget_stops_the_sweep_saying_so(tmp_path: Path) -> None:
    from cnnlab.classroom.access import RunAccess
    from cnnlab.classroom.limits import Limits
    from cnnlab.classroom.users import Role, User

    store = Store(tmp_path)
    student = User("sam", "Sam", Role.STUDENT)
    access = RunAccess(store, student, Limits(max_epochs=5), Scheduler(store, warm=False))
    planned = plan(SPEC, TrainingSettings(), [axis("epochs", "50,1")])
    with pytest.raises(
        SweepError, match=r"^0 of 2 runs queued: run 1 \(epochs=50\) was refused\. .*50"
    ) as refused:
        sweeps.submit(
            planned,
            access,
            sweeps.Sweeps(store),
            data_settings=DataSettings(),
            name="big",
            owner="sam",
        )
    assert "has no runs" in str(refused.value)
    assert store.list_runs() == []


def test_a_sweep_cut_by_the_queue_limit_says_how_many_runs_were_queued_and_why(tmp_path: Path) -> None:
    from cnnlab.classroom.access import RunAccess
    from cnnlab.classroom.limits import Limits
    from cnnlab.classroom.users import Role, User

    store = Store(tmp_path)
    student = User("sam", "Sam", Role.STUDENT)
    access = RunAccess(store, student, Limits(max_queued_per_student=3))

    class QueuedOnly:
        """The student's real access rule, recording the runs queued for the server's scheduler to start."""

        def submit(self, request: RunRequest) -> RunRecord:
            return access.submit(request, start=False)

    planned = plan(SPEC, TrainingSettings(), [axis("learning_rate", "1e-4,3e-4,1e-3,3e-3,1e-2")])
    with pytest.raises(sweeps.SweepCut) as cut:
        sweeps.submit(
            planned, QueuedOnly(), sweeps.Sweeps(store), data_settings=DataSettings(), name="lr", owner="sam"
        )
    message = str(cut.value)
    assert message.startswith("3 of 5 runs queued: run 4 (learning_rate=0.003) was refused.")
    assert "this class allows 3 per student (max_queued_per_student" in message
    assert f"sweep {cut.value.sweep.id}" in message
    assert [run.id for run in cut.value.queued] == [run.id for run in reversed(store.list_runs())]
    assert len(store.sweeps.runs(cut.value.sweep.id)) == 3
