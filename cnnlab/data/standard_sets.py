"""The standard sets of the Keras tutorials: MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100.

This module is the catalogue only: what each set is, its classes, the files `keras.datasets`
downloads for it and the options it takes. `keras_cache` finds, checks and downloads those
files under `$KERAS_HOME/datasets`; `keras_files` reads them with numpy alone, so TensorFlow
stays out of the import path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnnlab.errors import DatasetError

_KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_BASE_URL = "https://www.cs.toronto.edu/~kriz/"


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
FASHION_FILES = (
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
        tuple(Download(_KERAS_BASE_URL + name, f"fashion-mnist/{name}") for name in FASHION_FILES),
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
KERAS_ARCHIVE_NAMES = {
    "cifar10": "cifar-10-batches-py-target_archive",
    "cifar100": "cifar-100-python-target_archive",
}


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
