"""The standard sets of the Keras tutorials: MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100.

The files live where `keras.datasets` keeps them, under `$KERAS_HOME/datasets` (default
`~/.keras/datasets`), and are read here with numpy alone so TensorFlow stays out of the import
path. A missing file is downloaded once (with progress) when the network allows; otherwise
`DatasetUnavailable` names the exact file and the folder to place it in.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import DatasetError, DatasetUnavailable

Progress = Callable[[float, str], None]
_KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_BASE_URL = "https://www.cs.toronto.edu/~kriz/"
# Tests replace this to simulate the network; nothing else should.
_open_url = urllib.request.urlopen


@dataclass(frozen=True)
class Download:
    """One file to fetch: its URL, its place under `$KERAS_HOME/datasets`, and its SHA-256."""

    url: str
    relative_path: str
    sha256: str | None = None


@dataclass(frozen=True)
class StandardSet:
    """A Keras standard set: what it is, where its files live and how big the download is."""

    name: str
    title: str
    description: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    size: int
    source: str
    licence: str
    digit_like: bool
    downloads: tuple[Download, ...]
    download_megabytes: int
    # Other complete copies that are read when present (folders extracted by keras itself).
    extracted_folders: tuple[str, ...] = ()


CIFAR100_FINE = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)
CIFAR100_COARSE = (
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
)
_FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)

SETS: dict[str, StandardSet] = {
    "mnist": StandardSet(
        "mnist",
        "MNIST handwritten digits",
        "70,000 greyscale 28x28 handwritten digits 0-9: the 'hello world' of CNNs.",
        (28, 28, 1),
        tuple(str(digit) for digit in range(10)),
        70_000,
        "Yann LeCun, Corinna Cortes and Christopher Burges, via keras.datasets.mnist",
        "CC BY-SA 3.0",
        True,
        (
            Download(
                _KERAS_BASE_URL + "mnist.npz",
                "mnist.npz",
                "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
            ),
        ),
        11,
    ),
    "fashion_mnist": StandardSet(
        "fashion_mnist",
        "Fashion-MNIST clothing",
        "70,000 greyscale 28x28 images of 10 kinds of clothing: a harder drop-in for MNIST.",
        (28, 28, 1),
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        70_000,
        "Zalando Research, via keras.datasets.fashion_mnist",
        "MIT",
        True,
        tuple(Download(_KERAS_BASE_URL + name, f"fashion-mnist/{name}") for name in _FASHION_FILES),
        30,
    ),
    "cifar10": StandardSet(
        "cifar10",
        "CIFAR-10 small photos",
        "60,000 colour 32x32 photos of 10 classes (planes, cars, birds, cats...).",
        (32, 32, 3),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        60_000,
        "Alex Krizhevsky, Vinod Nair and Geoffrey Hinton, via keras.datasets.cifar10",
        "No formal licence; the authors ask that you cite Krizhevsky (2009)",
        False,
        (
            Download(
                _CIFAR_BASE_URL + "cifar-10-python.tar.gz",
                "cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            ),
        ),
        163,
        ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
    ),
    "cifar100": StandardSet(
        "cifar100",
        "CIFAR-100 small photos",
        "60,000 colour 32x32 photos of 100 classes (option label_mode='coarse' gives 20 superclasses).",
        (32, 32, 3),
        CIFAR100_FINE,
        60_000,
        "Alex Krizhevsky, Vinod Nair and Geoffrey Hinton, via keras.datasets.cifar100",
        "No formal licence; the authors ask that you cite Krizhevsky (2009)",
        False,
        (
            Download(
                _CIFAR_BASE_URL + "cifar-100-python.tar.gz",
                "cifar-100-python.tar.gz",
                "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
            ),
        ),
        161,
        ("cifar-100-python-target/cifar-100-python", "cifar-100-python"),
    ),
}
# The archive names keras 3 itself downloads to, read like ours when present.
_KERAS_ARCHIVE_NAMES = {
    "cifar10": "cifar-10-batches-py-target_archive",
    "cifar100": "cifar-100-python-target_archive",
}


def keras_home() -> Path:
    """The Keras cache folder: `$KERAS_HOME`, or `~/.keras` when it is not set."""
    configured = os.environ.get("KERAS_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".keras"


def datasets_folder() -> Path:
    """The folder holding the dataset files: `$KERAS_HOME/datasets`."""
    return keras_home() / "datasets"


def _present(standard: StandardSet) -> Path | None:
    """The first complete local copy of a set (a file, or an extracted folder), or None."""
    folder = datasets_folder()
    if all((folder / download.relative_path).is_file() for download in standard.downloads):
        return folder / standard.downloads[0].relative_path
    for relative in standard.extracted_folders:
        if (folder / relative).is_dir():
            return folder / relative
    keras_archive = _KERAS_ARCHIVE_NAMES.get(standard.name)
    if keras_archive and (folder / keras_archive).is_file():
        return folder / keras_archive
    return None


def availability(name: str) -> tuple[bool, str | None]:
    """Whether a set can be read now without the network, and if not, why (no download)."""
    standard = SETS[name]
    if _present(standard) is not None:
        return True, None
    return False, _missing_message(standard, reason="not downloaded yet", online_hint=True)


def _missing_message(standard: StandardSet, reason: str, online_hint: bool = False) -> str:
    """Say which file is missing, where to place it, and where to get it."""
    folder = datasets_folder()
    missing = [download for download in standard.downloads if not (folder / download.relative_path).is_file()]
    missing = missing or list(standard.downloads)
    target_folder = (folder / missing[0].relative_path).parent
    files = ", ".join(str(folder / download.relative_path) for download in missing)
    urls = ", ".join(download.url for download in missing)
    text = (
        f"{standard.title} is not available ({reason}): missing {files}. "
        f"Download {urls} ({standard.download_megabytes} MB) and place {'it' if len(missing) == 1 else 'them'} "
        f"in the folder {target_folder} "
        "(set the KERAS_HOME environment variable to use another folder)"
    )
    return text + (", or load it once while online to download it automatically." if online_hint else ".")


def _download(download: Download, progress: Progress | None, label: str) -> None:
    """Fetch one file into the cache, checking its SHA-256; the partial file never stays behind."""
    target = datasets_folder() / download.relative_path
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    hasher = hashlib.sha256()
    try:
        with _open_url(download.url, timeout=30) as response, open(partial, "wb") as writer:
            total = int(response.headers.get("Content-Length") or 0)
            received = 0
            while chunk := response.read(1 << 20):
                writer.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                if progress is not None:
                    fraction = received / total if total else 0.0
                    progress(min(fraction, 1.0), f"Downloading {label}: {received / 1e6:.1f} MB")
        if download.sha256 is not None and hasher.hexdigest() != download.sha256:
            raise DatasetError(
                f"the downloaded file's SHA-256 is {hasher.hexdigest()}, expected {download.sha256}"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def ensure_files(name: str, *, allow_download: bool = True, progress: Progress | None = None) -> Path:
    """The local copy of a set, downloading it first when missing and allowed."""
    standard = SETS[name]
    present = _present(standard)
    if present is not None:
        return present
    if not allow_download or os.environ.get("CNNLAB_OFFLINE", "").strip() not in ("", "0"):
        raise DatasetUnavailable(_missing_message(standard, "offline mode, downloads are switched off"))
    folder = datasets_folder()
    pending = [download for download in standard.downloads if not (folder / download.relative_path).is_file()]
    for number, download in enumerate(pending):

        def scaled(fraction: float, message: str, number: int = number) -> None:
            if progress is not None:
                progress((number + fraction) / len(pending), message)

        try:
            _download(download, scaled, standard.title)
        except (OSError, urllib.error.URLError, DatasetError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise DatasetUnavailable(
                _missing_message(standard, f"the download from {download.url} failed: {reason}")
            ) from None
    return folder / standard.downloads[0].relative_path


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
    labels = [_read_idx(folder / name, images=False) for name in _FASHION_FILES[0::2]]
    images = [_read_idx(folder / name, images=True) for name in _FASHION_FILES[1::2]]
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


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a standard set with defaults, or DatasetError naming the bad one."""
    allowed: dict[str, Any] = {"download": True}
    if name == "cifar100":
        allowed["label_mode"] = "fine"
    unknown = set(options) - set(allowed)
    if unknown:
        raise DatasetError(
            f"Unknown option(s) {sorted(unknown)} for {name}; the options are {sorted(allowed)}."
        )
    merged = {**allowed, **options}
    if name == "cifar100" and merged["label_mode"] not in ("fine", "coarse"):
        raise DatasetError(
            f"cifar100 option label_mode must be 'fine' or 'coarse'; got {merged['label_mode']!r}."
        )
    return merged


def class_names(name: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    """The class names of a set with these options (CIFAR-100 has fine and coarse labels)."""
    if name == "cifar100" and options.get("label_mode") == "coarse":
        return CIFAR100_COARSE
    return SETS[name].class_names


def load(
    name: str, options: Mapping[str, Any], progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """All images of a set, the official train and test parts pooled: (uint8 NHWC, int64 labels, classes)."""
    standard = SETS[name]
    settings = check_options(name, options)
    path = ensure_files(name, allow_download=bool(settings["download"]), progress=progress)
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
    names = class_names(name, settings)
    labels = labels.astype(np.int64)
    if len(images) != len(labels) or (len(labels) and not 0 <= labels.min() <= labels.max() < len(names)):
        raise _damaged(path, standard, "images and labels do not match")
    return images, labels, names
