"""Reading the Keras standard sets' files with numpy alone: MNIST's .npz, Fashion-MNIST's IDX
files and the CIFAR pickles (through an unpickler that rebuilds numpy arrays and nothing else).

`load` returns every image of a set, the official train and test parts pooled, after
`keras_cache` has found or downloaded the files; a damaged file raises `DatasetError` saying
how to replace it.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data import keras_cache, standard_sets
from cnnlab.data.standard_sets import FASHION_FILES, SETS, StandardSet
from cnnlab.errors import DatasetError

__all__ = ["load"]


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and plain values only; anything else in a pickle is refused."""

    _allowed = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            # Python 3 writes bytes into protocol-2 pickles as `_codecs.encode(text, "latin1")`.
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _damaged(path: Path, standard: StandardSet, error: object) -> DatasetError:
    return DatasetError(
        f"The {standard.title} file {path} is damaged or not the expected file ({error}). "
        "Delete it so it is downloaded again, or replace it with the original download."
    )


def _read_mnist_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        images = np.concatenate([data["x_train"], data["x_test"]])
        labels = np.concatenate([data["y_train"], data["y_test"]])
    return images, labels


def _read_idx(path: Path, images: bool) -> np.ndarray:
    """Read a gzip'd IDX file (the MNIST-family format): labels (N,) or images (N, rows, columns)."""
    with gzip.open(path, "rb") as reader:
        content = reader.read()
    magic, count = struct.unpack(">II", content[:8])
    if images:
        rows, columns = struct.unpack(">II", content[8:16])
        if magic != 2051 or len(content) != 16 + count * rows * columns:
            raise ValueError(f"bad IDX image header in {path.name}")
        return np.frombuffer(content, np.uint8, offset=16).reshape(count, rows, columns)
    if magic != 2049 or len(content) != 8 + count:
        raise ValueError(f"bad IDX label header in {path.name}")
    return np.frombuffer(content, np.uint8, offset=8)


def _read_fashion(path: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = path.parent
    labels = [_read_idx(folder / name, images=False) for name in FASHION_FILES[0::2]]
    images = [_read_idx(folder / name, images=True) for name in FASHION_FILES[1::2]]
    if any(len(label) != len(image) for label, image in zip(labels, images, strict=True)):
        raise ValueError("the image and label files hold different numbers of items")
    return np.concatenate(images), np.concatenate(labels)


def _cifar_batches(path: Path, names: tuple[str, ...]) -> list[bytes]:
    """The raw batch files, from an extracted folder or straight out of the .tar.gz."""
    if path.is_dir():
        return [(path / name).read_bytes() for name in names]
    found: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            basename = member.name.rsplit("/", 1)[-1]
            if member.isfile() and basename in names and basename not in found:
                reader = archive.extractfile(member)
                if reader is not None:
                    found[basename] = reader.read()
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(f"the archive has no {', '.join(missing)}")
    return [found[name] for name in names]


def _read_cifar(path: Path, names: tuple[str, ...], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for content in _cifar_batches(path, names):
        batch = _RestrictedUnpickler(io.BytesIO(content), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        images.append(data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[label_key.encode()], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def load(
    name: str, options: Mapping[str, Any], progress: keras_cache.Progress | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """All images of a set, the official train and test parts pooled: (uint8 NHWC, int64 labels, classes)."""
    standard = SETS[name]
    settings = standard_sets.check_options(name, options)
    path = keras_cache.ensure_files(name, allow_download=bool(settings["download"]), progress=progress)
    try:
        if name == "mnist":
            images, labels = _read_mnist_npz(path)
        elif name == "fashion_mnist":
            images, labels = _read_fashion(path)
        elif name == "cifar10":
            batch_names = (*(f"data_batch_{number}" for number in range(1, 6)), "test_batch")
            images, labels = _read_cifar(path, batch_names, "labels")
        else:
            images, labels = _read_cifar(path, ("train", "test"), f"{settings['label_mode']}_labels")
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        pickle.UnpicklingError,
        tarfile.TarError,
        struct.error,
        zipfile.BadZipFile,
    ) as error:
        raise _damaged(path, standard, error) from None
    if images.ndim == 3:
        images = images[:, :, :, np.newaxis]
    names = standard_sets.class_names(name, settings)
    labels = labels.astype(np.int64)
    if len(images) != len(labels) or (len(labels) and not 0 <= labels.min() <= labels.max() < len(names)):
        raise _damaged(path, standard, "images and labels do not match")
    return images, labels, names
