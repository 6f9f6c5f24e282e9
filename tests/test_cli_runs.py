"""The command line over recorded runs, in this process: `history`, `compare`, `delete`, `export`,
`continue`, `fork`, `--json` on every command that reports, the choices in the help, and the progress
lines (`cnnlab.cli.follow`) read from recorded metrics.

Runs are recorded straight into a store (`made_runs`): none of these needs a model. `continue`,
`fork` and the model exports are in tests/test_cli.py, beside the other tests of the one real run
trained for the file (`trained_home`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from made_runs import make_run, reached

from cnnlab.cli import follow
from cnnlab.cli.main import main
from cnnlab.specs import TrainingSettings
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cnnlab(capsys: pytest.CaptureFixture[str]) -> Run:
    """`cnnlab(*arguments)`: (exit code, stdout, stderr) of the command line run in this process."""

    def run(*arguments: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(arguments))
        except SystemExit as exit_info:  # argparse refuses the arguments.
            code = int(exit_info.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def recorded(store: Store, epochs: list[tuple[float, float]], name: str = "recorded") -> RunRecord:
    """A completed run with these (accuracy, val_accuracy) epochs and the results a worker writes."""
    run = make_run(store, epochs=len(epochs) + 2, name=name)
    reached(store, run.id, Status.RUNNING)
    for number, (accuracy, validation) in enumerate(epochs, 1):
        store.add_epoch_metrics(
            run.id,
            {
                "epoch": number,
                "loss": 1.0 / number,
                "accuracy": accuracy,
                "val_loss": 1.1 / number,
                "val_accuracy": validation,
            },
        )
    best = max(range(len(epochs)), key=lambda index: (epochs[index][1], -index))
    store.set_results(
        run.id,
        {
            "epochs": len(epochs),
            "val_accuracy": epochs[-1][1],
            "best_epoch": best + 1,
            "best_val_accuracy": epochs[best][1],
        },
    )
    return store.set_status(run.id, Status.COMPLETED)


def test_history_prints_every_epoch_and_the_best(cnnlab: Run, cnnlab_home: Path) -> None:
    run = recorded(Store(cnnlab_home), [(0.5, 0.6), (0.7, 0.9), (0.8, 0.85)])
    code, text, _ = cnnlab("history", run.id)
    assert code == 0
    assert [line.split()[0] for line in text.splitlines()[1:4]] == ["1", "2", "3"]
    assert text.splitlines()[-1] == "Best validation accuracy: 0.9000 at epoch 2"
    code, text, _ = cnnlab("history", run.id[:-1], "--json")
    rows = json.loads(text)
    assert [(row["epoch"], row["val_accuracy"]) for row in rows] == [(1, 0.6), (2, 0.9), (3, 0.85)]


def test_compare_shows_where_runs_differ(cnnlab: Run, cnnlab_home: Path) -> None:
    store = Store(cnnlab_home)
    first = recorded(store, [(0.5, 0.6)], name="first")
    second = make_run(store, training=TrainingSettings(learning_rate=0.01, epochs=3), name="second")
    code, text, _ = cnnlab("compare", first.id, second.id)
    assert code == 0 and "training.learning_rate" in text and "training.batch_size" not in text
    code, text, _ = cnnlab("compare", first.id, second.id, "--all", "--json")
    described = json.loads(text)
    assert [(item["id"], item["training.learning_rate"]) for item in described] == [
        (first.id, 0.001),
        (second.id, 0.01),
    ]
    assert (described[0]["best_validation_accuracy"], described[0]["best_epoch"]) == (0.6, 1)


def test_delete_removes_ended_and_queued_runs_but_not_a_live_one(cnnlab: Run, cnnlab_home: Path) -> None:
    store = Store(cnnlab_home)
    ended, queued = recorded(store, [(0.5, 0.6)]), make_run(store, name="queued")
    live = reached(store, make_run(store, name="live").id, Status.RUNNING)
    code, text, _ = cnnlab("delete", ended.id, queued.id, "--json")
    assert code == 0 and [item["id"] for item in json.loads(text)["deleted"]] == [ended.id, queued.id]
    assert [run.id for run in store.list_runs()] == [live.id]
    assert not store.run_folder(ended.id).exists()
    code, _, error = cnnlab("delete", live.id)
    assert code == 2 and "is running; stop it before deleting it" in error and "Traceback" not in error


def test_export_writes_the_script_and_says_when_there_is_no_model(
    cnnlab: Run, cnnlab_home: Path, tmp_path: Path
) -> None:
    run = make_run(Store(cnnlab_home), name="not trained")
    target = tmp_path / "mine.py"
    code, text, _ = cnnlab("export", run.id, "--format", "script", "--output", str(target), "--json")
    assert code == 0 and json.loads(text) == {
        "run_id": run.id,
        "format": "script",
        "path": str(target),
        "bytes": target.stat().st_size,
    }
    assert "def build_model():" in target.read_text()
    code, _, error = cnnlab("export", run.id, "--output", str(tmp_path / "model.keras"))
    assert code == 2 and "has no saved model yet" in error


@pytest.mark.parametrize(
    ("arguments", "check"),
    [
        (["presets"], lambda found: "digits_default" in [item["name"] for item in found]),
        (["summary", "digits_default"], lambda found: found["total_parameters"] > 0),
        (["datasets"], lambda found: found[0]["name"] == "digits" and found[0]["available"]),
        (["dataset-info", "digits", "--subset", "60"], lambda found: len(found["counts"]) == 10),
        (["sweeps"], lambda found: found == []),
        (["people"], lambda found: isinstance(found, list)),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else "",
)
def test_reporting_commands_print_one_json_document(
    cnnlab: Run, cnnlab_home: Path, arguments: list[str], check: Callable[[object], bool]
) -> None:
    code, text, _ = cnnlab(*arguments, "--json")
    assert code == 0 and check(json.loads(text))


def test_help_lists_the_choices_and_lr_find_offers_only_what_it_uses(cnnlab: Run) -> None:
    code, text, _ = cnnlab("train", "--help")
    assert code == 0 and "--json" in text and "--verbose" in text
    for listed in (
        "{adam,adamw,sgd,rmsprop}",
        "{constant,step,exponential,cosine,plateau}",
        "{grayscale,rgb}",
    ):
        assert listed in text
    for ignored in ("--epochs", "--learning-rate", "--schedule", "--early-stopping-patience"):
        code, _, error = cnnlab("lr-find", "digits_default", ignored, "3")
        assert code == 2 and "unrecognized arguments" in error
    code, _, error = cnnlab("train", "digits_default", "--optimizer", "adagrad")
    assert code == 2 and "invalid choice: 'adagrad'" in error


def test_progress_lines_show_validation_the_best_epoch_and_the_time_left(cnnlab_home: Path) -> None:
    store = Store(cnnlab_home)
    run = recorded(store, [(0.5, 0.6), (0.7, 0.9), (0.8, 0.85)])
    epochs = store.epoch_metrics(run.id)
    epochs["epoch_seconds"] = [9.0, 2.0, 2.0]  # The first epoch holds the compiled step.
    line = follow.epoch_line(store, run, epochs.iloc[2], follow.seconds_left(run, epochs, pd.DataFrame()))
    assert line.startswith(f"epoch 3/{run.training().epochs}: loss 0.3333 accuracy 0.8000, val_loss 0.3667")
    assert "val_accuracy 0.8500; best val_accuracy 0.9000 (epoch 2); about 0:04 left" in line
    batches = pd.DataFrame(
        {"epoch": [4, 4], "batch": [10, 20], "loss": [0.2, 0.1], "accuracy": [0.9, 0.95], "time": [0.0, 1.0]}
    )
    store.set_dataset_summary(run.id, [{"class": "0", "train": 320}])  # 10 batches of 32 an epoch.
    live = follow.live_line(store, store.get_run(run.id), epochs, batches)
    assert (
        "epoch 4/5 [########################] 100%" in live
        and "val_accuracy 0.8500" in live
        and "best val_accuracy 0.9000 (epoch 2)" in live
    )


def test_sweep_wait_reports_the_best_run_so_far_with_its_settings(
    cnnlab_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnlab.cli import sweep as cli_sweep
    from cnnlab.model import presets
    from cnnlab.runs.queue import sweep_plan, sweeps

    store = Store(cnnlab_home)
    book = sweeps.Sweeps(store)
    plan = sweep_plan.plan(
        presets.get("digits_default").spec,
        TrainingSettings(epochs=3),
        [sweep_plan.axis("learning_rate", "1e-3,1e-2")],
    )
    sweep = book.create(plan, "rates", "local")
    for planned, validation in zip(plan.runs, (0.7, 0.9), strict=True):
        run = make_run(store, training=planned.training, sweep=sweep.id)
        reached(store, run.id, Status.RUNNING)
        store.add_epoch_metrics(run.id, {"epoch": 1, "loss": 0.5, "val_accuracy": validation})
        store.set_status(run.id, Status.COMPLETED)
    best = book.runs(sweep.id)[1].run
    cli_sweep._follow(book, sweep.id, runner=None)  # type: ignore[arg-type]  # Every run has ended: no waiting.
    assert capsys.readouterr().err.strip() == (
        f"2/2 runs ended, 0 training; best val_accuracy so far 0.9000 (run {best.id}, learning_rate=0.01)"
    )
