"""Datasets: registry, built-in sets, Keras standard sets from a temporary KERAS_HOME, own images."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab import cli
from cnnlab.data import datasets, folders, standard_sets
from cnnlab.errors import ArchiveError, DatasetError, DatasetUnavailable
from cnnlab.specs import DataSettings

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KERAS_HOME and temporary folder inside tmp_path, and no network at all."""
    keras_home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv("CNNLAB_OFFLINE", raising=False)
    temporary = tmp_path / "system-temp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))

    def no_network(url: str, timeout: float = 0) -> None:
        raise AssertionError(f"a test tried to reach the network: {url}")

    monkeypatch.setattr(standard_sets, "_open_url", no_network)
    return keras_home


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every download fail the way it does without internet."""

    def unreachable(url: str, timeout: float = 0) -> None:
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(standard_sets, "_open_url", unreachable)


# Built-in sets.


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
    with pytest.raises(DatasetError, match=r"subset must be a positive number of images or None; got 0"):
        datasets.load(DataSettings(subset=0))


def test_stratified_split_keeps_small_classes_in_training() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    train, validation, test = datasets.stratified_split(labels, 0.2, 0.2, seed=0)
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(len(labels)))
    assert set(labels[train].tolist()) == {0, 1, 2}
    # A class of 2 keeps one to train on and one to validate with; a class of 3 has one in each split.
    assert set(labels[validation].tolist()) == {0, 1, 2} and set(labels[test].tolist()) == {1, 2}
    assert np.bincount(labels[train]).tolist() == [1, 1, 6]


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


# Generated shapes.


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


def test_shapes_differ_by_class_and_have_edges() -> None:
    data = datasets.load(DataSettings(dataset="shapes", options={"count_per_class": 4, "noise": 0.0}))
    images_by_class = [data.x_train[data.y_train == index].mean(axis=0) for index in range(5)]
    assert all(not np.allclose(images_by_class[0], other) for other in images_by_class[1:])
    assert np.abs(np.diff(data.x_train, axis=1)).max() > 0.4  # Sharp edges between shape and background.


@pytest.mark.parametrize(
    ("options", "image_size", "expected"),
    [
        ({"colour": True}, None, r"Unknown option\(s\) \['colour'\] for the shapes dataset"),
        ({"count_per_class": 1}, None, r"count_per_class must be an integer from 2 to 5000; got 1"),
        ({"noise": 2}, None, r"noise must be a number from 0 to 0\.5; got 2"),
        ({"rotation": -5}, None, r"rotation must be a number of degrees from 0 to 180; got -5"),
        ({"scale": [0.9, 0.5]}, None, r"scale must be a number or a pair .*got \(0\.9, 0\.5\)"),
        (
            {"classes": ["circle", "blob"]},
            None,
            r"at least 2 different shapes from circle, square.*got \['circle', 'blob'\]",
        ),
        ({"classes": ["circle"]}, None, r"at least 2 different shapes"),
        ({}, 70, r"drawn at 16 to 64 pixels; got image_size=70"),
    ],
)
def test_bad_shapes_options_are_explained(options: dict, image_size: int | None, expected: str) -> None:
    with pytest.raises(DatasetError, match=expected):
        datasets.load(DataSettings(dataset="shapes", image_size=image_size, options=options))


# Keras standard sets, from tiny files in the format keras.datasets downloads.


def write_mnist(keras_home: Path, train: int = 30, test: int = 10) -> Path:
    rng = np.random.default_rng(0)
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        y_train=(np.arange(train) % 10).astype(np.uint8),
        x_test=rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        y_test=(np.arange(test) % 10).astype(np.uint8),
    )
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    if array.ndim == 1:
        return struct.pack(">II", 2049, len(array)) + array.tobytes()
    return struct.pack(">IIII", 2051, *array.shape) + array.tobytes()


def write_fashion(keras_home: Path) -> None:
    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for prefix, count in (("train", 20), ("t10k", 10)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        pixels = np.full((count, 28, 28), 7, dtype=np.uint8)
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(pixels)))


def cifar_batch(count: int, label_keys: dict[str, int]) -> bytes:
    """A pickled CIFAR batch (protocol 2, like the originals) with `count` images."""
    batch = {b"data": np.full((count, 3072), 200, dtype=np.uint8), b"batch_label": b"test batch"}
    for key, classes in label_keys.items():
        batch[key.encode()] = [index % classes for index in range(count)]
    return pickle.dumps(batch, protocol=2)


def write_tar(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(content)
            archive.addfile(entry, io.BytesIO(content))


def cifar10_members() -> dict[str, bytes]:
    members = {
        f"cifar-10-batches-py/data_batch_{number}": cifar_batch(4, {"labels": 10}) for number in range(1, 6)
    }
    members["cifar-10-batches-py/test_batch"] = cifar_batch(10, {"labels": 10})
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": []}, protocol=2)
    return members


def test_a_missing_file_names_the_file_and_folder_offline(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline(monkeypatch)
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
    assert "Name or service not known" in message
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


def test_mnist_loads_from_the_keras_cache(isolated: Path) -> None:
    write_mnist(isolated)
    assert datasets.info("mnist").available and datasets.info("mnist").unavailable_reason is None
    data = datasets.load(DataSettings(dataset="mnist", validation_fraction=0.2, test_fraction=0.2))
    assert data.image_shape == (28, 28, 1) and data.class_names == tuple("0123456789")
    assert data.summary["total"].tolist() == [4] * 10  # The official train and test parts are pooled.
    assert data.info.digit_like
    resized = datasets.load(DataSettings(dataset="mnist", image_size=32, color_mode="rgb"))
    assert resized.image_shape == (32, 32, 3) and resized.x_train.dtype == np.float32


def test_fashion_mnist_loads_from_idx_files(isolated: Path) -> None:
    write_fashion(isolated)
    data = datasets.load(DataSettings(dataset="fashion_mnist"))
    assert data.image_shape == (28, 28, 1) and data.class_names[0] == "T-shirt/top"
    assert data.summary["total"].sum() == 30
    assert np.allclose(data.x_train, 7 / 255)


def test_cifar10_loads_from_the_archive_and_from_the_extracted_folder(isolated: Path) -> None:
    write_tar(isolated / "datasets" / "cifar-10-python.tar.gz", cifar10_members())
    data = datasets.load(DataSettings(dataset="cifar10"))
    assert data.image_shape == (32, 32, 3) and data.class_names[0] == "airplane"
    assert data.summary["total"].sum() == 30 and np.allclose(data.x_train, 200 / 255)
    (isolated / "datasets" / "cifar-10-python.tar.gz").unlink()
    extracted = isolated / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    extracted.mkdir(parents=True)
    for name, content in cifar10_members().items():
        (extracted / name.split("/")[-1]).write_bytes(content)
    grey = datasets.load(DataSettings(dataset="cifar10", color_mode="grayscale", image_size=16))
    assert grey.image_shape == (16, 16, 1) and grey.summary["total"].sum() == 30


def test_cifar100_fine_and_coarse_labels(isolated: Path) -> None:
    labels = {"fine_labels": 100, "coarse_labels": 20}
    write_tar(
        isolated / "datasets" / "cifar-100-python.tar.gz",
        {
            "cifar-100-python/train": cifar_batch(300, labels),
            "cifar-100-python/test": cifar_batch(100, labels),
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

    members = cifar10_members()
    members["cifar-10-batches-py/data_batch_1"] = pickle.dumps({b"data": Exploit()}, protocol=2)
    write_tar(isolated / "datasets" / "cifar-10-python.tar.gz", members)
    with pytest.raises(DatasetError, match=r"refusing to load io\.open"):
        datasets.load(DataSettings(dataset="cifar10"))
    assert not marker.exists()


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable body with a Content-Length header."""

    def __init__(self, content: bytes) -> None:
        super().__init__(content)
        self.headers = {"Content-Length": str(len(content))}


def test_a_download_is_cached_with_progress_and_checked(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = write_mnist(tmp := isolated.parent / "source").read_bytes()
    del tmp
    requested: list[str] = []

    def serve(url: str, timeout: float = 0) -> FakeResponse:
        requested.append(url)
        return FakeResponse(content)

    monkeypatch.setattr(standard_sets, "_open_url", serve)
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


# The user's own images.


def save(path: Path, image: Image.Image, image_format: str, **options: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=image_format, **options)


def make_own_folder(root: Path) -> Path:
    """Two classes in mixed formats, sizes and modes, plus a corrupt file, a text file and clutter."""
    cats, dogs = root / "cats", root / "dogs"
    save(cats / "a.png", Image.new("RGB", (30, 20), (250, 10, 10)), "PNG")
    save(cats / "b.jpg", Image.new("L", (50, 50), 120), "JPEG")
    palette = Image.new("P", (12, 12), 0)
    palette.putpalette([0, 200, 0] * 256)
    save(cats / "c.gif", palette, "GIF")
    save(cats / "d.bmp", Image.new("RGB", (8, 40), (0, 0, 255)), "BMP")
    save(cats / "e.webp", Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "WEBP")
    save(cats / "nested" / "f.png", Image.fromarray(np.full((9, 9), 40000, dtype=np.uint16)), "PNG")
    (cats / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    (cats / "notes.txt").write_text("these are my cats")
    save(dogs / "g.jpg", Image.new("CMYK", (20, 20), (0, 255, 255, 0)), "JPEG")
    save(dogs / "h.png", Image.new("LA", (16, 16), (90, 255)), "PNG")
    save(dogs / "i.webp", Image.new("RGB", (100, 30), (30, 30, 30)), "WEBP")
    save(dogs / "j.bmp", Image.new("1", (10, 10), 1), "BMP")
    (dogs / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    (root / "readme.md").write_text("one folder per class")
    (root / ".DS_Store").write_bytes(b"\x00\x00")
    return root


def zip_folder(
    folder: Path, zip_path: Path, wrapper: str = "pets", extra: dict[str, bytes] | None = None
) -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{wrapper}/{path.relative_to(folder).as_posix()}")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return zip_path


def check_own_data(data: datasets.SplitData) -> None:
    assert data.class_names == ("cats", "dogs")
    assert data.image_shape == (16, 16, 3) and data.x_train.dtype == np.float32
    assert data.summary["total"].tolist() == [6, 4]
    assert data.info.size == 10 and not data.info.digit_like
    report = data.skipped
    assert report is not None and report.count == 5
    assert report.by_reason == {
        folders.CORRUPT: 1,
        folders.NOT_AN_IMAGE: 1,
        folders.OUTSIDE_CLASS_FOLDER: 1,
        folders.UNSUPPORTED_FORMAT: 1,
        folders.TOO_LARGE: 1,
    }
    skipped_names = {Path(item.path).name: item for item in report.examples}
    assert set(skipped_names) == {"corrupt.png", "notes.txt", "readme.md", "drawing.svg", "huge.png"}
    assert "The PNG data is corrupt or truncated" in skipped_names["corrupt.png"].detail
    text = report.to_text()
    assert text.startswith("5 file(s) skipped:") and "corrupt.png" in text


@pytest.fixture
def own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = make_own_folder(tmp_path / "pets")
    # A file over the per-file byte cap (lowered for the test).
    monkeypatch.setattr(folders, "MAXIMUM_FILE_BYTES", 5_000)
    save(folder / "dogs" / "huge.png", Image.effect_noise((64, 64), 80).convert("RGB"), "PNG")
    return folder


def test_own_folder_with_mixed_formats_sizes_and_modes(own_folder: Path) -> None:
    data = datasets.load(DataSettings(dataset=str(own_folder), image_size=16, color_mode="rgb"))
    check_own_data(data)
    everything = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert everything.min() >= 0.0 and everything.max() <= 1.0
    grey = datasets.load(DataSettings(dataset=str(own_folder), image_size=20, color_mode="grayscale"))
    assert grey.image_shape == (20, 20, 1)
    native = datasets.load(DataSettings(dataset=str(own_folder)))
    assert native.image_shape == (64, 64, 3)


def test_own_zip_with_a_wrapper_folder_and_mac_clutter(own_folder: Path, tmp_path: Path) -> None:
    zip_path = zip_folder(own_folder, tmp_path / "pets.zip", extra={"__MACOSX/pets/cats/._a.png": b"junk"})
    data = datasets.load(DataSettings(dataset=str(zip_path), image_size=16, color_mode="rgb"))
    check_own_data(data)
    assert data.info.name == "pets.zip"
    assert list((tmp_path / "system-temp").iterdir()) == []  # The extraction folder was removed.


def test_info_describes_own_images_without_decoding(own_folder: Path, tmp_path: Path) -> None:
    described = datasets.info(str(own_folder))
    assert described.class_names == ("cats", "dogs") and described.size == 12  # Image files by name.
    assert described.image_shape == (64, 64, 3) and described.available
    zipped = datasets.info(str(zip_folder(own_folder, tmp_path / "pets.zip")))
    assert zipped.class_names == ("cats", "dogs") and zipped.size == 12


def test_own_images_need_two_classes_of_two_images(tmp_path: Path) -> None:
    single = tmp_path / "single"
    save(single / "cats" / "a.png", Image.new("RGB", (4, 4)), "PNG")
    save(single / "cats" / "b.png", Image.new("RGB", (4, 4)), "PNG")
    with pytest.raises(DatasetError, match=r"needs at least 2 class folders with images; found 1 \('cats'\)"):
        datasets.load(DataSettings(dataset=str(single)))
    flat = tmp_path / "flat"
    save(flat / "a.png", Image.new("RGB", (4, 4)), "PNG")
    with pytest.raises(
        DatasetError, match=r"found 0 \(none\)\. Put the images of each class in its own subfolder"
    ):
        datasets.load(DataSettings(dataset=str(flat)))
    small = tmp_path / "small"
    for name in ("a", "b"):
        save(small / "cats" / f"{name}.png", Image.new("RGB", (4, 4)), "PNG")
    save(small / "dogs" / "a.png", Image.new("RGB", (4, 4)), "PNG")
    (small / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    with pytest.raises(DatasetError, match=r"at least 2 usable images; too few in 'dogs' \(1\)\. Add images"):
        datasets.load(DataSettings(dataset=str(small)))
    with pytest.raises(DatasetError, match=r"The own-images dataset takes no options"):
        datasets.load(DataSettings(dataset=str(small), options={"noise": 1}))


def test_own_images_file_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folders, "MAXIMUM_FILES", 3)
    folder = tmp_path / "many"
    for number in range(5):
        (folder / "cats").mkdir(parents=True, exist_ok=True)
        (folder / "cats" / f"{number}.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"holds 5 files; the limit is 3\. Use fewer images per class"):
        datasets.info(str(folder))


def test_symbolic_links_in_a_folder_are_not_followed(tmp_path: Path) -> None:
    folder = make_own_folder(tmp_path / "pets")
    outside = tmp_path / "outside.png"
    save(outside, Image.new("RGB", (4, 4)), "PNG")
    (folder / "dogs" / "link.png").symlink_to(outside)
    data = datasets.load(DataSettings(dataset=str(folder), image_size=8))
    assert data.skipped is not None and data.skipped.by_reason[folders.LINK] == 1
    assert data.summary["total"].tolist() == [6, 4]


def evil_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("cats/a.png", "cats/b.png", "dogs/a.png", "dogs/b.png"):
            buffer = io.BytesIO()
            Image.new("RGB", (4, 4)).save(buffer, format="PNG")
            archive.writestr(name, buffer.getvalue())
        archive.writestr("../evil.txt", b"escaped")
        archive.writestr("../../evil.txt", b"escaped")
    return path


def test_a_zip_with_a_traversal_entry_is_refused(tmp_path: Path) -> None:
    zip_path = evil_zip(tmp_path / "evil.zip")
    with pytest.raises(ArchiveError, match=r"entry that points outside its folder: '\.\./evil\.txt'"):
        datasets.load(DataSettings(dataset=str(zip_path)))
    with pytest.raises(ArchiveError, match="points outside its folder"):
        datasets.info(str(zip_path))
    assert not any(path.name == "evil.txt" for path in tmp_path.parent.rglob("evil.txt"))


# The command line.


def test_cli_lists_datasets_with_availability(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_mnist(isolated)
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
    offline(monkeypatch)
    assert cli.main(["dataset-info", "mnist"]) == 2
    assert str(isolated / "datasets" / "mnist.npz") in capsys.readouterr().err
    assert cli.main(["dataset-info", "digits", "--test-fraction", "0.95"]) == 2
    assert "Invalid data settings" in capsys.readouterr().err


def test_cli_dataset_info_on_a_traversal_zip_writes_nothing_outside(tmp_path: Path) -> None:
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    zip_path = evil_zip(work / "evil.zip")
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
        "from cnnlab import archives, datasets, images\n"
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
