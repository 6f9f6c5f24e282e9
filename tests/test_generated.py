"""The generated shapes: balanced classes, determinism by seed, drawn shapes and option errors."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.data import generated
from cnnlab.errors import DatasetError

QUIET = {"count_per_class": 4, "noise": 0.0}


def test_every_class_gets_the_same_count_in_class_order() -> None:
    images, labels, classes = generated.generate(
        {"count_per_class": 3, "classes": ["ring", "hexagon", "diamond"]}, image_size=16
    )
    assert classes == ("ring", "hexagon", "diamond")
    assert labels.dtype == np.int64 and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert images.shape == (9, 16, 16, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_the_defaults_are_five_classes_of_200_grey_images() -> None:
    images, labels, classes = generated.generate({"count_per_class": 2})
    assert classes == generated.DEFAULT_CLASSES
    assert images.shape == (10, generated.DEFAULT_IMAGE_SIZE, generated.DEFAULT_IMAGE_SIZE, 1)
    assert np.bincount(labels).tolist() == [2] * 5
    assert generated.check_options({})["count_per_class"] == 200


def test_the_same_seed_gives_the_same_pixels() -> None:
    first = generated.generate({"count_per_class": 3}, image_size=16, colour=True, seed=5)
    again = generated.generate({"count_per_class": 3}, image_size=16, colour=True, seed=5)
    other = generated.generate({"count_per_class": 3}, image_size=16, colour=True, seed=6)
    assert first[0].shape == (15, 16, 16, 3)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_shapes_differ_by_class_and_have_sharp_edges() -> None:
    images, labels, _ = generated.generate(QUIET, seed=0)
    means = [images[labels == index].mean(axis=0) for index in range(5)]
    assert all(not np.allclose(means[0], other) for other in means[1:])
    assert np.abs(np.diff(images, axis=1)).max() > 0.4  # Sharp edges between shape and background.


def test_a_fixed_scale_draws_circles_of_that_diameter() -> None:
    options = {"count_per_class": 4, "noise": 0.0, "rotation": 0, "scale": 0.6, "classes": ["circle", "ring"]}
    images, labels, _ = generated.generate(options, image_size=32, seed=1)
    radius = 0.6 * 32 / 2
    for image in images[labels == 0]:
        ink = image[:, :, 0] > (image.min() + image.max()) / 2
        assert abs(ink.sum() - np.pi * radius**2) < 0.1 * np.pi * radius**2
    for image in images[labels == 1]:
        ink = image[:, :, 0] > (image.min() + image.max()) / 2
        assert ink.sum() < 0.8 * np.pi * radius**2  # A ring leaves its middle empty.


def test_noise_changes_the_background() -> None:
    options = {"count_per_class": 3, "classes": ["circle", "ring"]}
    quiet, _, _ = generated.generate({**options, "noise": 0.0}, seed=2)
    noisy, _, _ = generated.generate({**options, "noise": 0.3}, seed=2)
    # A round shape never reaches the corners, so without noise all four corners are the background.
    corners = quiet[:, [0, 0, -1, -1], [0, -1, 0, -1], 0]
    assert np.all(corners == corners[:, :1])
    noisy_corners = noisy[:, [0, 0, -1, -1], [0, -1, 0, -1], 0]
    assert not np.all(noisy_corners == noisy_corners[:, :1])


def test_progress_goes_class_by_class_to_one() -> None:
    calls: list[tuple[float, str]] = []
    generated.generate({"count_per_class": 2}, progress=lambda *call: calls.append(call))
    assert [fraction for fraction, _ in calls] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert calls[0][1] == "Drew 2 circles"


@pytest.mark.parametrize(
    ("options", "image_size", "expected"),
    [
        ({"colour": True}, 32, r"Unknown option\(s\) \['colour'\] for the shapes dataset"),
        ({"count_per_class": 1}, 32, r"count_per_class must be an integer from 2 to 5000; got 1"),
        ({"count_per_class": True}, 32, r"count_per_class must be an integer from 2 to 5000; got True"),
        ({"noise": 2}, 32, r"noise must be a number from 0 to 0\.5; got 2"),
        ({"rotation": -5}, 32, r"rotation must be a number of degrees from 0 to 180; got -5"),
        ({"scale": [0.9, 0.5]}, 32, r"scale must be a number or a pair .*got \[0\.9, 0\.5\]"),
        ({"classes": "circle"}, 32, r"classes must be a list of shape names; got 'circle'"),
        (
            {"classes": ["circle", "blob"]},
            32,
            r"at least 2 different shapes from circle, square.*got \['circle', 'blob'\]",
        ),
        ({"classes": ["circle"]}, 32, r"at least 2 different shapes"),
        ({"classes": ["circle", "circle"]}, 32, r"at least 2 different shapes"),
        ({}, 70, r"drawn at 16 to 64 pixels; got image_size=70\. Choose a size in that range"),
        ({}, 8, r"drawn at 16 to 64 pixels; got image_size=8"),
    ],
)
def test_bad_options_are_explained(options: dict, image_size: int, expected: str) -> None:
    with pytest.raises(DatasetError, match=expected):
        generated.generate(options, image_size=image_size)
