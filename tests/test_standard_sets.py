"""The catalogue of Keras standard sets: classes, downloads and options, checked without any file."""

from __future__ import annotations

import pytest

from cnnlab.data import standard_sets
from cnnlab.errors import DatasetError


def test_every_set_describes_itself_and_its_downloads() -> None:
    assert list(standard_sets.SETS) == ["mnist", "fashion_mnist", "cifar10", "cifar100"]
    for name, standard in standard_sets.SETS.items():
        assert standard.name == name and standard.title and standard.source and standard.licence
        assert standard.size > 0 and standard.download_megabytes > 0 and standard.downloads
        assert all(download.url.startswith("https://") for download in standard.downloads)
        assert len(set(standard.class_names)) == len(standard.class_names)
    assert standard_sets.SETS["mnist"].image_shape == (28, 28, 1) and standard_sets.SETS["mnist"].digit_like
    assert standard_sets.SETS["cifar10"].image_shape == (32, 32, 3)
    assert not standard_sets.SETS["cifar10"].digit_like
    fashion = standard_sets.SETS["fashion_mnist"].downloads
    assert [download.relative_path for download in fashion] == [
        f"fashion-mnist/{name}" for name in standard_sets.FASHION_FILES
    ]


def test_cifar100_has_100_fine_and_20_coarse_classes() -> None:
    assert len(standard_sets.CIFAR100_FINE) == len(set(standard_sets.CIFAR100_FINE)) == 100
    assert len(standard_sets.CIFAR100_COARSE) == len(set(standard_sets.CIFAR100_COARSE)) == 20
    assert standard_sets.class_names("cifar100", {"label_mode": "fine"}) == standard_sets.CIFAR100_FINE
    assert standard_sets.class_names("cifar100", {"label_mode": "coarse"}) == standard_sets.CIFAR100_COARSE
    assert standard_sets.class_names("mnist", {}) == tuple("0123456789")


def test_options_get_their_defaults() -> None:
    assert standard_sets.check_options("mnist", {}) == {"download": True}
    assert standard_sets.check_options("cifar100", {"download": False}) == {
        "download": False,
        "label_mode": "fine",
    }


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("cifar10", {"label_mode": "fine"}, r"Unknown option\(s\) \['label_mode'\] for cifar10"),
        (
            "mnist",
            {"colour": 1},
            r"Unknown option\(s\) \['colour'\] for mnist; the options are \['download'\]",
        ),
        ("cifar100", {"label_mode": "medium"}, r"label_mode must be 'fine' or 'coarse'; got 'medium'"),
    ],
)
def test_bad_options_are_explained(name: str, options: dict, expected: str) -> None:
    with pytest.raises(DatasetError, match=expected):
        standard_sets.check_options(name, options)
