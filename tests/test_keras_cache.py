"""The Keras dataset cache: missing files named with their folder, offline mode, checked downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import data_files
import pytest

from cnnlab.data import datasets, keras_cache, standard_sets
from cnnlab.errors import DatasetUnavailable
from cnnlab.specs import DataSettings


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KERAS_HOME and temporary folder, and no network at all."""
    return data_files.isolate(tmp_path, monkeypatch)


def test_a_missing_file_names_the_file_and_folder_offline(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_files.offline(monkeypatch)
    with pytest.raises(DatasetUnavailable) as caught:
        datasets.load(DataSettings(dataset="mnist"))
    message = str(caught.value)
    assert f"missing {isolated / 'datasets' / 'mnist.npz'}" in message
    assert f"place it in the folder {isolated / 'datasets'}" in message
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz" in message
    assert (
        "download from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz failed"
        in message
    )
    assert (
        "storage.googleapis.com cannot be reached, this machine seems to have no internet connection"
        in message
    )
    assert "Errno" not in message and "Name or service not known" not in message
    assert not (isolated / "datasets" / "mnist.npz.part").exists()


@pytest.mark.parametrize(
    ("name", "expected_file"),
    [
        ("fashion_mnist", "fashion-mnist/train-labels-idx1-ubyte.gz"),
        ("cifar10", "cifar-10-python.tar.gz"),
        ("cifar100", "cifar-100-python.tar.gz"),
    ],
)
def test_offline_mode_and_no_download_option_name_the_file(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, name: str, expected_file: str
) -> None:
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailable, match="offline mode, downloads are switched off") as caught:
        datasets.load(DataSettings(dataset=name))
    assert str(isolated / "datasets" / expected_file) in str(caught.value)
    monkeypatch.delenv("CNNLAB_OFFLINE")
    with pytest.raises(DatasetUnavailable, match=expected_file.split("/")[-1]):
        datasets.load(DataSettings(dataset=name, options={"download": False}))


def test_a_download_is_cached_with_progress_and_checked(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = data_files.write_mnist(tmp := isolated.parent / "source").read_bytes()
    del tmp
    requested: list[str] = []

    def serve(url: str, timeout: float = 0) -> data_files.FakeResponse:
        requested.append(url)
        return data_files.FakeResponse(content)

    monkeypatch.setattr(keras_cache, "_open_url", serve)
    with pytest.raises(DatasetUnavailable, match=r"SHA-256 is [0-9a-f]{64}, expected 731c5ac6"):
        datasets.load(DataSettings(dataset="mnist"))
    assert not (isolated / "datasets" / "mnist.npz").exists()

    download = standard_sets.Download(
        standard_sets.SETS["mnist"].downloads[0].url, "mnist.npz", hashlib.sha256(content).hexdigest()
    )
    patched = standard_sets.SETS["mnist"].__class__(
        **{**standard_sets.SETS["mnist"].__dict__, "downloads": (download,)}
    )
    monkeypatch.setitem(standard_sets.SETS, "mnist", patched)
    messages: list[str] = []
    data = datasets.load(
        DataSettings(dataset="mnist"), progress=lambda fraction, message: messages.append(message)
    )
    assert data.summary["total"].sum() == 40
    assert any(message.startswith("Downloading MNIST") for message in messages)
    assert (isolated / "datasets" / "mnist.npz").read_bytes() == content
    assert requested == [download.url] * 2
    datasets.load(DataSettings(dataset="mnist"))  # Cached now: no third request.
    assert len(requested) == 2
