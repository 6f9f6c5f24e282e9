"""The command line: its commands, arguments and exit codes through `cnnlab.cli.main.main([...])` in
this process (what `python -m cnnlab` runs), and one real `python -m cnnlab train` in a subprocess."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from cnnlab.cli.main import main
from cnnlab.model import presets, shapes
from cnnlab.store.run_store import Store


class Result(NamedTuple):
    """What a user sees of one command: its exit code and what it printed."""

    returncode: int | str | None
    stdout: str
    stderr: str


@pytest.fixture
def cnnlab(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`cnnlab(*arguments)`: run the command line in this process, as `python -m cnnlab` would."""

    def run(*arguments: str) -> Result:
        capsys.readouterr()
        try:
            code: int | str | None = main(list(arguments))
        except SystemExit as exit_info:  # argparse refuses the arguments.
            code = exit_info.code
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def test_presets_lists_every_preset(cnnlab: Callable[..., Result]) -> None:
    result = cnnlab("presets")
    assert result.returncode == 0
    for name in presets.PRESETS:
        assert name in result.stdout


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_summary_ends_with_the_total(cnnlab: Callable[..., Result], name: str) -> None:
    result = cnnlab("summary", name)
    assert result.returncode == 0, result.stderr
    total = shapes.analyse(presets.get(name).spec).total_parameters
    assert result.stdout.strip().splitlines()[-1] == f"Total params: {total:,}"


def test_summary_reads_a_json_file(cnnlab: Callable[..., Result], tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    spec = presets.get("cifar10").spec
    path.write_text(spec.to_json())
    result = cnnlab("summary", str(path))
    assert result.stdout.strip().endswith(f"Total params: {shapes.analyse(spec).total_parameters:,}")
    assert "(None, 4, 4, 64)" in result.stdout


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            {"input_shape": [8, 8, 1], "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 9}]},
            "would output",
        ),
        ({"input_shape": [8, 8, 1], "layers": [{"type": "Dense", "units": 3}]}, "Add Flatten"),
        ("{broken", "not valid JSON"),
    ],
)
def test_invalid_spec_exits_non_zero_without_traceback(
    cnnlab: Callable[..., Result], tmp_path: Path, content: object, words: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    result = cnnlab("summary", str(path))
    assert result.returncode != 0
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_spec_name(cnnlab: Callable[..., Result]) -> None:
    result = cnnlab("code", "no_such_model")
    assert result.returncode == 2 and "neither a preset nor a JSON file" in result.stderr


def test_code_prints_a_script(cnnlab: Callable[..., Result]) -> None:
    result = cnnlab("code", "mnist_minimal", "--dataset", "mnist")
    assert result.returncode == 0
    assert "keras.datasets.mnist.load_data()" in result.stdout
    assert "def build_model():" in result.stdout


def _recorded_runs(home: Path) -> tuple[str, str]:
    """Two runs in `home`: one completed with results, one waiting in the queue; (completed, queued)."""
    from made_runs import make_run

    from cnnlab.store.run_store import Store
    from cnnlab.store.statuses import Status

    store = Store(home)
    done = make_run(store, epochs=4, name="done")
    for status in (Status.STARTING, Status.RUNNING):
        store.set_status(done.id, status)
    # Its best validation accuracy (0.875) is at epoch 1, not at its last epoch (0.8).
    store.add_epoch_metrics(done.id, {"epoch": 1, "loss": 0.5, "val_accuracy": 0.875})
    store.add_epoch_metrics(done.id, {"epoch": 2, "loss": 0.4, "val_accuracy": 0.8})
    store.set_results(
        done.id,
        {"epochs": 2, "val_accuracy": 0.8, "best_epoch": 1, "best_val_accuracy": 0.875, "test_accuracy": 0.9},
    )
    store.set_status(done.id, Status.COMPLETED)
    waiting = make_run(store, name="waiting")
    return done.id, waiting.id


def test_runs_lists_status_epochs_and_accuracies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnlab.cli import main as cli

    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    done, waiting = _recorded_runs(tmp_path)
    assert cli.main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:7] == ["RUN", "STATUS", "EPOCHS", "BEST", "VAL", "ACC", "(EPOCH)"]
    assert lines[1].split()[:3] == [waiting, "queued", "0/10"] and lines[1].endswith("waiting")
    assert lines[2].split()[:6] == [done, "completed", "2/4", "0.8750", "(1)", "0.9000"]
    assert cli.main(["runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["best_validation_accuracy"], row["best_epoch"]) for row in listed] == [
        (waiting, None, None),
        (done, 0.875, 1),
    ]
    assert cli.main(["runs", "--status", "completed"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [done]


def test_runs_refuses_an_unknown_status(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli import main as cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["runs", "--status", "exploded"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'exploded'" in capsys.readouterr().err


def test_stop_cancels_a_queued_run_and_knows_an_ended_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnlab.cli import main as cli
    from cnnlab.store.run_store import Store

    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path))
    done, waiting = _recorded_runs(tmp_path)
    assert cli.main(["stop", waiting[:-1]]) == 0  # A unique prefix is enough.
    assert capsys.readouterr().out.strip() == f"Run {waiting} (waiting) stopped; status: stopped."
    assert Store(tmp_path).get_run(waiting).reason == "Stopped before it started."
    assert cli.main(["stop", done]) == 0
    assert "had already ended; status: completed." in capsys.readouterr().out
    assert cli.main(["stop", "zzzz"]) == 2
    assert "matches no run" in capsys.readouterr().err


@pytest.mark.slow
def test_train_runs_a_worker_and_ends_with_one_json_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "digits_default", "--epochs", "1", "--subset", "300"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CNNLAB_HOME": str(tmp_path), "CNNLAB_MAX_WORKERS": "1"},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["epochs"]) == ("completed", 1)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    from cnnlab.store.run_store import Store

    run = Store(tmp_path).get_run(summary["run_id"])
    assert run.training().epochs == 1 and run.data().subset == 300 and run.owner == "cli"


@pytest.mark.slow
def test_predict_and_evaluate_a_trained_run(
    cnnlab: Callable[..., Result],
    trained_home: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PIL import Image, ImageDraw

    home, run_id = trained_home
    drawing = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(drawing).line([(60, 15), (60, 105)], fill=0, width=10)
    drawing.save(tmp_path / "one.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    monkeypatch.setenv("CNNLAB_HOME", str(home))

    predicted = cnnlab("predict", run_id, str(tmp_path / "one.png"), "--top-k", "2", "--checkpoint", "latest")
    assert predicted.returncode == 0, predicted.stderr
    line = json.loads(predicted.stdout.strip())
    assert line["image"].endswith("one.png") and len(line["top_k"]) == 2
    assert line["class"] == line["top_k"][0]["class"] and isinstance(line["out_of_distribution"], bool)
    bad = cnnlab("predict", run_id, str(tmp_path / "broken.png"), str(tmp_path / "missing.png"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "broken.png" in bad.stderr and "missing.png: cannot be read" in bad.stderr
    unknown = cnnlab("predict", "zzzz", str(tmp_path / "one.png"))
    assert (
        unknown.returncode == 2 and "matches no run" in unknown.stderr and "Traceback" not in unknown.stderr
    )
    evaluated = cnnlab("evaluate", run_id)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "precision" in evaluated.stdout and "recall" in evaluated.stdout
    assert len([row for row in evaluated.stdout.splitlines() if row.strip()[:1].isdigit()]) >= 10
    missing = cnnlab("evaluate", run_id, "--checkpoint", "99")
    assert missing.returncode == 2 and "no 'epoch 99' checkpoint" in missing.stderr


@pytest.fixture
def trained_copy(trained_home: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared trained digits run in a home of this test's own (continue and fork change it)."""
    home, run_id = trained_home
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    monkeypatch.setenv("CNNLAB_HOME", str(copy))
    monkeypatch.setenv("CNNLAB_MAX_WORKERS", "1")
    return run_id


@pytest.mark.slow
def test_continue_and_fork_train_here_and_end_with_the_best_epoch(
    cnnlab: Callable[..., Result], trained_copy: str
) -> None:
    code, text, error = cnnlab("continue", trained_copy, "--epochs", "1")
    assert code == 0, error
    continued = json.loads(text.splitlines()[-1])
    assert (continued["run_id"], continued["status"], continued["epochs"]) == (trained_copy, "completed", 2)
    assert continued["best_epoch"] in (1, 2) and 0 <= continued["best_validation_accuracy"] <= 1
    assert "epoch 2/2: loss" in error and "val_accuracy" in error  # Not a terminal: one line per epoch.
    code, text, error = cnnlab(
        "fork", trained_copy, "--epoch", "1", "--epochs", "2", "--learning-rate", "0.01"
    )
    assert code == 0, error
    forked = json.loads(text.splitlines()[-1])
    fork = Store(Path(os.environ["CNNLAB_HOME"])).get_run(forked["run_id"])
    assert (fork.parent_id, fork.parent_epoch, fork.training().learning_rate) == (trained_copy, 1, 0.01)
    assert forked["status"] == "completed" and forked["epochs"] == 2


@pytest.mark.slow
def test_export_writes_models_and_the_zip(
    cnnlab: Callable[..., Result], trained_copy: str, tmp_path: Path
) -> None:
    code, text, _ = cnnlab("export", trained_copy, "--output", str(tmp_path / "model.keras"))
    assert code == 0 and (tmp_path / "model.keras").stat().st_size > 10_000
    code, text, _ = cnnlab(
        "export", trained_copy, "--format", "zip", "--output", str(tmp_path / "run.zip"), "--json"
    )
    assert code == 0 and json.loads(text)["format"] == "zip"  # Only the JSON: no converter output.
    names = {Path(name).name for name in zipfile.ZipFile(tmp_path / "run.zip").namelist()}
    assert {"model.keras", "train.py", "model.tflite", "run_card.json"} <= names
    code, text, _ = cnnlab("evaluate", trained_copy, "--json")
    evaluated = json.loads(text)
    assert evaluated["checkpoint"] == "best" and len(evaluated["per_class"]) == 10


@pytest.mark.slow
def test_tensorflow_stays_quiet_and_stdout_holds_only_json(trained_copy: str, tmp_path: Path) -> None:
    """In a fresh process, where TensorFlow starts: its absl and oneDNN lines are kept off stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "export", trained_copy, "--format", "tflite", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        # This checkout's cnnlab, whatever is installed (the process runs in another folder).
        env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
        | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bytes"] > 10_000
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr, result.stderr
