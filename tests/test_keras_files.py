"""Reading the Keras standard sets' files: tiny files in the formats keras.datasets downloads."""

from __future__ import annotations

import pickle
from pathlib import Path

import data_files
import numpy as np
import pytest

from cnnlab.data import datasets
from cnnlab.errors import DatasetError
from cnnlab.specs import DataSettings


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KERAS_HOME and temporary folder, and no network at all."""
    return data_files.isolate(tmp_path, monkeypatch)


def test_mnist_loads_from_the_keras_cache(isolated: Path) -> None:
    data_files.write_mnist(isolated)
    assert datasets.info("mnist").available and datasets.info("mnist").unavailable_reason is None
    data = datasets.load(DataSettings(dataset="mnist", validation_fraction=0.2, test_fraction=0.2))
    assert data.image_shape == (28, 28, 1) and data.class_names == tuple("0123456789")
    assert data.summary["total"].tolist() == [4] * 10  # The official train and test parts are pooled.
    assert data.info.digit_like
    resized = datasets.load(DataSettings(dataset="mnist", image_size=32, color_mode="rgb"))
    assert resized.image_shape == (32, 32, 3) and resized.x_train.dtype == np.float32


def test_fashion_mnist_loads_from_idx_files(isolated: Path) -> None:
    data_files.write_fashion(isolated)
    data = datasets.load(DataSettings(dataset="fashion_mnist"))
    assert data.image_shape == (28, 28, 1) and data.class_names[0] == "T-shirt/top"
    assert data.summary["total"].sum() == 30
    assert np.allclose(data.x_train, 7 / 255)


def test_cifar10_loads_from_the_archive_and_from_the_extracted_folder(isolated: Path) -> None:
    data_files.write_tar(isolated / "datasets" / "cifar-10-python.tar.gz", data_files.cifar10_members())
    data = datasets.load(DataSettings(dataset="cifar10"))
    assert data.image_shape == (32, 32, 3) and data.class_names[0] == "airplane"
    assert data.summary["total"].sum() == 30 and np.allclose(data.x_train, 200 / 255)
    (isolated / "datasets" / "cifar-10-python.tar.gz").unlink()
    extracted = isolated / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    extracted.mkdir(parents=True)
    for name, content in data_files.cifar10_members().items():
        (extracted / name.split("/")[-1]).write_bytes(content)
    grey = datasets.load(DataSettings(dataset="cifar10", color_mode="grayscale", image_size=16))
    assert grey.image_shape == (16, 16, 1) and grey.summary["total"].sum() == 30


def test_cifar100_fine_and_coarse_labels(isolated: Path) -> None:
    labels = {"fine_labels": 100, "coarse_labels": 20}
    data_files.write_tar(
        isolated / "datasets" / "cifar-100-python.tar.gz",
        {
            "cifar-100-python/train": data_files.cifar_batch(300, labels),
            "cifar-100-python/test": data_files.cifar_batch(100, labels),
        },
    )
    fine = datasets.load(DataSettings(dataset="cifar100"))
    assert fine.num_classes == 100 and fine.class_names[:2] == ("apple", "aquarium_fish")
    coarse = datasets.load(DataSettings(dataset="cifar100", options={"label_mode": "coarse"}))
    assert coarse.num_classes == 20 and coarse.class_names[0] == "aquatic_mammals"
    with pytest.raises(DatasetError, match=r"label_mode must be 'fine' or 'coarse'; got 'medium'"):
        datasets.load(DataSettings(dataset="cifar100", options={"label_mode": "medium"}))
    with pytest.raises(DatasetError, match=r"Unknown option\(s\) \['label_mode'\] for cifar10"):
        datasets.load(DataSettings(dataset="cifar10", options={"label_mode": "fine"}))


def test_damaged_and_malicious_files_are_refused(isolated: Path) -> None:
    mnist = isolated / "datasets" / "mnist.npz"
    mnist.parent.mkdir(parents=True)
    mnist.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(
        DatasetError, match=r"file .*mnist\.npz is damaged or not the expected file.*Delete it"
    ):
        datasets.load(DataSettings(dataset="mnist"))

    marker = isolated / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (open, (str(marker), "w"))

    members = data_files.cifar10_members()
    members["cifar-10-batches-py/data_batch_1"] = pickle.dumps({b"data": Exploit()}, protocol=2)
    data_files.write_tar(isolated / "datasets" / "cifar-10-python.tar.gz", members)
    with pytest.raises(DatasetError, match=r"refusing to load io\.open"):
        datasets.load(DataSettings(dataset="cifar10"))
    assert not marker.exists()
