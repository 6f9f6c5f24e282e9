"""Tiny dataset files for the data tests: a private Keras cache with no network, the files
`keras.datasets` downloads (MNIST's .npz, Fashion-MNIST's IDX, CIFAR's pickles in a .tar.gz),
and folders and zips of the user's own images in mixed formats."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import tempfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import keras_cache


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KERAS_HOME and temporary folder inside tmp_path, and no network at all."""
    keras_home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv("CNNLAB_OFFLINE", raising=False)
    temporary = tmp_path / "system-temp"
    temporary.mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))

    def no_network(url: str, timeout: float = 0) -> None:
        raise AssertionError(f"a test tried to reach the network: {url}")

    monkeypatch.setattr(keras_cache, "_open_url", no_network)
    return keras_home


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every download fail the way it does without internet."""

    def unreachable(url: str, timeout: float = 0) -> None:
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(keras_cache, "_open_url", unreachable)


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


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable body with a Content-Length header."""

    def __init__(self, content: bytes) -> None:
        super().__init__(content)
        self.headers = {"Content-Length": str(len(content))}


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


def evil_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("cats/a.png", "cats/b.png", "dogs/a.png", "dogs/b.png"):
            buffer = io.BytesIO()
            Image.new("RGB", (4, 4)).save(buffer, format="PNG")
            archive.writestr(name, buffer.getvalue())
        archive.writestr("../evil.txt", b"escaped")
        archive.writestr("../../evil.txt", b"escaped")
    return path
