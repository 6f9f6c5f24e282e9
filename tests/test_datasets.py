"""The registry and loader: what can be chosen, the built-in sets, splits, progress and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import data_files
import numpy as np
import pytest

from cnnlab.cli import main as cli
from cnnlab.data import datasets
from cnnlab.errors import DatasetError
from cnnlab.specs import DataSettings
from tests.app_pages import read_back

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KERAS_HOME and temporary folder, and no network at all."""
    return data_files.isolate(tmp_path, monkeypatch)


def test_registry_lists_every_set_with_its_metadata(isolated: Path) -> None:
    entries = {entry.name: entry for entry in datasets.registry()}
    assert list(entries) == ["digits", "shapes", "mnist", "fashion_mnist", "cifar10", "cifar100"]
    assert entries["digits"].available and entries["digits"].image_shape == (8, 8, 1)
    assert entries["digits"].size == 1797 and entries["digits"].digit_like
    assert entries["cifar100"].image_shape == (32, 32, 3) and len(entries["cifar100"].class_names) == 100
    for entry in entries.values():
        assert entry.title and entry.description and entry.source and entry.licence
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        assert not entries[name].available
        assert str(isolated / "datasets") in entries[name].unavailable_reason
    assert str(isolated / "datasets" / "mnist.npz") in entries["mnist"].unavailable_reason
    assert not (isolated / "datasets").exists()  # Listing never creates or downloads anything.


def test_digits_are_the_default_and_load_offline() -> None:
    data = datasets.load(DataSettings())
    assert data.info.name == "digits" and data.class_names == tuple("0123456789")
    assert data.image_shape == (8, 8, 1) and data.num_classes == 10
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 1797
    for array in (data.x_train, data.x_val, data.x_test):
        assert array.dtype == np.float32 and array.shape[1:] == (8, 8, 1)
        assert array.min() >= 0.0 and array.max() <= 1.0
    for labels in (data.y_train, data.y_val, data.y_test):
        assert labels.dtype == np.int64 and set(labels.tolist()) == set(range(10))
    assert list(data.summary.columns) == ["train", "validation", "test", "total"]
    assert list(data.summary.index) == list(data.class_names)
    assert data.summary["total"].sum() == 1797
    assert (data.summary["test"] / data.summary["total"]).between(0.12, 0.18).all()
    assert data.skipped is None


def test_splits_are_deterministic_per_seed() -> None:
    first = datasets.load(DataSettings(seed=3))
    again = datasets.load(DataSettings(seed=3))
    other = datasets.load(DataSettings(seed=4))
    assert np.array_equal(first.x_train, again.x_train) and np.array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_test, other.x_test)


def test_digits_upscale_to_16_or_28_and_convert_to_rgb() -> None:
    data = datasets.load(DataSettings(image_size=28, color_mode="rgb", subset=100))
    assert data.image_shape == (28, 28, 3) and data.x_train.shape[1:] == (28, 28, 3)
    assert data.info.image_shape == (28, 28, 3)
    assert np.array_equal(data.x_train[..., 0], data.x_train[..., 2])
    assert datasets.load(DataSettings(image_size=16, subset=50)).image_shape == (16, 16, 1)
    with pytest.raises(
        DatasetError, match=r"upscaled to 16 or 28 pixels; got image_size=12\. Choose 8, 16 or 28"
    ):
        datasets.load(DataSettings(image_size=12))
    with pytest.raises(DatasetError, match=r"The digits dataset takes no options; got \['upscale'\]"):
        datasets.load(DataSettings(options={"upscale": 28}))


def test_subset_is_stratified_and_exact() -> None:
    data = datasets.load(DataSettings(subset=200, seed=1))
    assert data.summary["total"].sum() == 200
    assert data.summary["total"].between(19, 21).all()
    with pytest.raises(DatasetError, match=r"subset=20 is too small for 10 classes.*at least 30"):
        datasets.load(DataSettings(subset=20))


def test_bad_image_sizes_and_unknown_names_are_explained(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"image_size must be from 8 to 256 pixels; got 4"):
        datasets.load(DataSettings(dataset="mnist", image_size=4))
    with pytest.raises(DatasetError, match=r"Unknown dataset 'mnsit'\. Choose one of digits, shapes, mnist"):
        datasets.load(DataSettings(dataset="mnsit"))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    with pytest.raises(DatasetError, match=r"is a file but not a zip archive"):
        datasets.info(str(text_file))


def test_progress_is_reported_from_zero_to_one() -> None:
    calls: list[tuple[float, str]] = []
    datasets.load(
        DataSettings(dataset="shapes", options={"count_per_class": 5}),
        progress=lambda *call: calls.append(call),
    )
    fractions = [fraction for fraction, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert all(isinstance(message, str) and message for _, message in calls)


def test_shapes_load_with_defaults() -> None:
    data = datasets.load(DataSettings(dataset="shapes"))
    assert data.class_names == ("circle", "square", "triangle", "star", "cross")
    assert data.image_shape == (32, 32, 1) and data.summary["total"].tolist() == [200] * 5
    assert data.info.digit_like and data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0


def test_shapes_are_deterministic_per_seed_and_respect_options() -> None:
    options = {
        "count_per_class": 6,
        "noise": 0.0,
        "rotation": 0,
        "scale": [0.6, 0.8],
        "classes": ["star", "ring"],
    }
    first = datasets.load(
        DataSettings(dataset="shapes", image_size=16, color_mode="rgb", seed=5, options=options)
    )
    again = datasets.load(
        DataSettings(dataset="shapes", image_size=16, color_mode="rgb", seed=5, options=options)
    )
    other = datasets.load(
        DataSettings(dataset="shapes", image_size=16, color_mode="rgb", seed=6, options=options)
    )
    assert first.class_names == ("star", "ring") and first.image_shape == (16, 16, 3)
    assert not first.info.digit_like
    assert np.array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    assert first.summary["total"].tolist() == [6, 6]


# The command line.


def test_cli_lists_datasets_with_availability(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_files.write_mnist(isolated)
    assert cli.main(["datasets"]) == 0
    output = capsys.readouterr().out
    lines = {line.split()[0]: line for line in output.splitlines() if line and not line.startswith(" ")}
    assert set(lines) == {"digits", "shapes", "mnist", "fashion_mnist", "cifar10", "cifar100"}
    assert " available " in lines["digits"] and " available " in lines["mnist"]
    assert "not available" in lines["cifar10"]
    assert str(isolated / "datasets" / "cifar-10-python.tar.gz") in output


def test_cli_dataset_info_prints_counts_and_skipped_files(
    own_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dataset-info", str(own_folder), "--image-size", "16"]) == 0
    output = capsys.readouterr().out
    assert "10 images of 16x16x3, 2 classes" in output
    assert "train  validation  test  total" in output
    assert "(all classes)" in output and "5 file(s) skipped:" in output and "notes.txt" in output
    assert cli.main(["dataset-info", "digits", "--subset", "50"]) == 0
    assert "50 images of 8x8x1" in capsys.readouterr().out


def test_cli_dataset_info_errors_exit_non_zero(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_files.offline(monkeypatch)
    assert cli.main(["dataset-info", "mnist"]) == 2
    assert str(isolated / "datasets" / "mnist.npz") in capsys.readouterr().err
    assert cli.main(["dataset-info", "digits", "--test-fraction", "0.95"]) == 2
    assert "test_fraction" in capsys.readouterr().err


def test_cli_dataset_info_on_a_traversal_zip_writes_nothing_outside(tmp_path: Path) -> None:
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    zip_path = data_files.evil_zip(work / "evil.zip")
    temporary = tmp_path / "process-temp"
    temporary.mkdir()
    environment = {
        **os.environ,
        "KERAS_HOME": str(tmp_path / "keras"),
        "TMPDIR": str(temporary),
        "PYTHONPATH": str(PROJECT),
        "CNNLAB_OFFLINE": "1",
    }
    before = sorted(path.as_posix() for path in tmp_path.rglob("*"))
    finished = subprocess.run(
        [sys.executable, "-m", "cnnlab", "dataset-info", str(zip_path)],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode != 0
    assert "points outside its folder: '../evil.txt'" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert sorted(path.as_posix() for path in tmp_path.rglob("*")) == before
    assert not (tmp_path.parent / "evil.txt").exists()


def test_importing_and_loading_the_default_never_starts_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from cnnlab.data import archives, datasets, decode, prepare\n"
        "data = datasets.load()\n"
        "assert data.num_classes == 10\n"
        "loaded = sorted(name for name in ('tensorflow', 'keras', 'torch', 'jax') if name in sys.modules)\n"
        "print('heavy:', loaded)\n"
    )
    environment = {**os.environ, "KERAS_HOME": str(tmp_path / "keras"), "PYTHONPATH": str(PROJECT)}
    finished = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert "heavy: []" in finished.stdout


def test_the_split_says_when_it_cannot_do_what_was_asked() -> None:
    small = datasets.load(DataSettings(subset=30))
    assert len(small.y_train) == 10  # One training image per class: the warning is about this.
    assert (
        len(small.notes) == 1
        and "split into 10 for training, 10 for validation and 10 for testing" in (small.notes[0])
    )
    larger = datasets.load(DataSettings(subset=5000))
    assert larger.info.size == 1797
    assert larger.notes == (
        "A subset of 5,000 images is more than Handwritten digits (8x8) has: all 1,797 are used.",
    )
    assert datasets.load(DataSettings(subset=1797)).notes == ()
    assert datasets.load(DataSettings()).notes == ()


def test_the_data_page_says_once_that_a_standard_set_is_missing(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app_pages import open_page

    data_files.offline(monkeypatch)
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    app = open_page("data").run()
    app.selectbox(key="dataset_name").set_value("mnist").run()
    assert [warning.value for warning in app.warning] == []
    assert len(app.error) == 1
    message = read_back(app.error[0].value)
    assert message.count("MNIST") == 1 and "is not available" in message and "Errno" not in message
    assert "cannot be reached, this machine seems to have no internet connection" in message
