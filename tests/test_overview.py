"""The teacher's console's data: the class overview and an exercise's leaderboard, from a real store."""

from __future__ import annotations

import pytest
from made_runs import make_run

from cnnlab.classroom import overview
from cnnlab.errors import SpecError
from cnnlab.model import presets, shapes
from cnnlab.specs import ModelSpec
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

SMALL = presets.get("mnist_minimal").spec  # 34,826 parameters
LARGE = presets.get(presets.DEFAULT_PRESET).spec  # 151,306


def add_run(
    store: Store,
    owner: str,
    name: str,
    status: Status,
    *,
    spec: ModelSpec = SMALL,
    epochs: int = 5,
    validation: list[float | None] | None = None,
    exercise: str | None = None,
    test_accuracy: float | None = None,
) -> str:
    run = make_run(store, spec=spec, epochs=epochs, name=name, owner=owner, status=status, exercise=exercise)
    for epoch, accuracy in enumerate(validation or [], start=1):
        store.add_epoch_metrics(
            run.id, {"epoch": epoch, "loss": 1.0, "accuracy": 0.5, "val_accuracy": accuracy}
        )
    if test_accuracy is not None:
        store.set_results(run.id, {"test_accuracy": test_accuracy, "val_accuracy": 0.5})
    return run.id


@pytest.fixture
def classroom(home_store: Store) -> dict[str, str]:
    """Runs of three students in every state; returns their ids by a short name."""
    return {
        "ada_done": add_run(home_store, "student:ada", "ada 1", Status.COMPLETED, validation=[0.5, 0.8]),
        "bo_running": add_run(home_store, "student:bo", "bo 1", Status.RUNNING, validation=[0.4, 0.6, 0.7]),
        "cy_queued": add_run(home_store, "student:cy", "cy 1", Status.QUEUED),
        "ada_paused": add_run(home_store, "student:ada", "ada 2", Status.PAUSED, validation=[0.9]),
    }


def test_the_overview_has_a_row_per_run_with_its_latest_epoch(
    home_store: Store, classroom: dict[str, str]
) -> None:
    runs = home_store.list_runs()
    events = {classroom["bo_running"]: "epoch 3 done"}
    table = overview.class_overview(runs, events).set_index("id")
    bo = table.loc[classroom["bo_running"]]
    assert (bo["owner"], bo["run"], bo["status"], bo["epoch"], bo["of epochs"]) == (
        "bo",
        "bo 1",
        "running",
        3,
        5,
    )
    assert bo["validation accuracy"] == pytest.approx(0.7)  # The last epoch's, not the best.
    assert bo["last event"] == "epoch 3 done"
    assert table.loc[classroom["ada_done"], "validation accuracy"] == pytest.approx(0.8)
    queued = table.loc[classroom["cy_queued"]]
    assert queued["epoch"] == 0 and queued["validation accuracy"] != queued["validation accuracy"]  # NaN
    assert queued["last event"] == ""


def test_live_runs_come_first_then_the_newest(home_store: Store, classroom: dict[str, str]) -> None:
    table = overview.class_overview(home_store.list_runs(), {})
    assert list(table["id"]) == [
        classroom["bo_running"],
        classroom["ada_paused"],
        classroom["cy_queued"],
        classroom["ada_done"],
    ]


def test_the_overview_sorts_by_accuracy_and_owner(home_store: Store, classroom: dict[str, str]) -> None:
    runs = home_store.list_runs()
    by_accuracy = overview.class_overview(runs, {}, sort_by="validation accuracy")
    assert list(by_accuracy["id"]) == [
        classroom["ada_paused"],
        classroom["ada_done"],
        classroom["bo_running"],
        classroom["cy_queued"],  # No accuracy yet: last.
    ]
    by_owner = overview.class_overview(runs, {}, names={"student:bo": "Bo Zhang"}, sort_by="owner")
    assert list(by_owner["owner"]) == ["ada", "ada", "Bo Zhang", "cy"]
    with pytest.raises(SpecError, match="sorted by"):
        overview.class_overview(runs, {}, sort_by="shoe size")


def test_an_empty_class_has_an_empty_table_with_the_columns() -> None:
    table = overview.class_overview([], {})
    assert table.empty and tuple(table.columns) == overview.OVERVIEW_COLUMNS


def test_the_leaderboard_ranks_an_exercises_finished_runs(home_store: Store) -> None:
    best = add_run(home_store, "student:ada", "a", Status.COMPLETED, exercise="week 3", test_accuracy=0.97)
    lean = add_run(
        home_store, "student:bo", "b", Status.COMPLETED, exercise="week 3", test_accuracy=0.95, spec=SMALL
    )
    heavy = add_run(
        home_store, "student:cy", "c", Status.COMPLETED, exercise="week 3", test_accuracy=0.95, spec=LARGE
    )
    add_run(home_store, "student:di", "d", Status.RUNNING, exercise="week 3")  # No test accuracy yet.
    add_run(home_store, "student:ed", "e", Status.COMPLETED, exercise="week 2", test_accuracy=0.99)
    add_run(home_store, "student:fi", "f", Status.COMPLETED, test_accuracy=0.99)  # No exercise.
    runs = home_store.list_runs()
    board = overview.leaderboard(runs, "week 3")
    assert list(board["id"]) == [best, lean, heavy]  # Equal accuracy: fewer parameters first.
    assert list(board["rank"]) == [1, 2, 3]
    assert list(board["owner"]) == ["ada", "bo", "cy"]
    assert list(board["parameters"]) == [shapes.analyse(SMALL).total_parameters] * 2 + [
        shapes.analyse(LARGE).total_parameters
    ]
    assert shapes.analyse(SMALL).total_parameters < shapes.analyse(LARGE).total_parameters
    assert overview.exercise_names(runs) == ["week 2", "week 3"]
    assert overview.leaderboard(runs, "week 9").empty


def test_equal_results_share_a_rank(home_store: Store) -> None:
    for owner in ("student:a", "student:b"):
        add_run(home_store, owner, owner, Status.COMPLETED, exercise="tie", test_accuracy=0.9)
    add_run(home_store, "student:c", "c", Status.COMPLETED, exercise="tie", test_accuracy=0.8)
    assert list(overview.leaderboard(home_store.list_runs(), "tie")["rank"]) == [1, 1, 3]


def test_the_leaderboard_shows_each_students_best_run_only(home_store: Store) -> None:
    ada_best = add_run(
        home_store, "student:ada", "a2", Status.COMPLETED, exercise="week 3", test_accuracy=0.96
    )
    add_run(home_store, "student:ada", "a1", Status.COMPLETED, exercise="week 3", test_accuracy=0.90)
    add_run(home_store, "student:ada", "a3", Status.STOPPED, exercise="week 3", test_accuracy=0.93)
    bo = add_run(home_store, "student:bo", "b1", Status.COMPLETED, exercise="week 3", test_accuracy=0.94)
    board = overview.leaderboard(home_store.list_runs(), "week 3")
    assert list(board["id"]) == [ada_best, bo]
    assert list(board["rank"]) == [1, 2]
    assert tuple(board.columns) == overview.LEADERBOARD_COLUMNS
    assert "best run" in overview.LEADERBOARD_RULE and "leaves the exercise" in overview.LEADERBOARD_RULE
