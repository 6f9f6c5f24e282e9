"""Stratified subsets and splits: every index used once, class shares kept, the same seed the same split."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.data import splits
from cnnlab.errors import DatasetError


def labels_of(counts: list[int]) -> np.ndarray:
    """Labels with `counts[index]` items of class `index`, in class order."""
    return np.repeat(np.arange(len(counts)), counts)


def test_stratified_split_keeps_small_classes_in_training() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    train, validation, test = splits.stratified_split(labels, 0.2, 0.2, seed=0)
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(len(labels)))
    assert set(labels[train].tolist()) == {0, 1, 2}
    # A class of 2 keeps one to train on and one to validate with; a class of 3 has one in each split.
    assert set(labels[validation].tolist()) == {0, 1, 2} and set(labels[test].tolist()) == {1, 2}
    assert np.bincount(labels[train]).tolist() == [1, 1, 6]


def test_stratified_split_matches_the_fractions_class_by_class() -> None:
    labels = labels_of([100, 40, 60])
    train, validation, test = splits.stratified_split(labels, 0.15, 0.25, seed=7)
    assert np.bincount(labels[test]).tolist() == [25, 10, 15]
    assert np.bincount(labels[validation]).tolist() == [15, 6, 9]
    assert np.bincount(labels[train]).tolist() == [60, 24, 36]
    assert len(set(train) | set(validation) | set(test)) == len(labels)


def test_stratified_split_is_deterministic_per_seed() -> None:
    labels = labels_of([30, 30, 30])
    first = splits.stratified_split(labels, 0.2, 0.2, seed=3)
    again = splits.stratified_split(labels, 0.2, 0.2, seed=3)
    other = splits.stratified_split(labels, 0.2, 0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_a_zero_fraction_gives_an_empty_split() -> None:
    labels = labels_of([10, 10])
    train, validation, test = splits.stratified_split(labels, 0.2, 0.0, seed=0)
    assert len(test) == 0 and np.bincount(labels[validation]).tolist() == [2, 2]
    assert len(train) == 16


def test_stratified_subset_keeps_proportions_and_the_exact_size() -> None:
    labels = labels_of([500, 300, 200])
    chosen = splits.stratified_subset(labels, 100, num_classes=3, seed=1)
    assert len(chosen) == 100 and len(set(chosen.tolist())) == 100
    assert np.bincount(labels[chosen]).tolist() == [50, 30, 20]
    assert np.array_equal(chosen, np.sort(chosen))
    assert np.array_equal(chosen, splits.stratified_subset(labels, 100, num_classes=3, seed=1))
    assert not np.array_equal(chosen, splits.stratified_subset(labels, 100, num_classes=3, seed=2))


def test_a_subset_at_least_the_whole_set_keeps_everything() -> None:
    labels = labels_of([4, 5])
    assert splits.stratified_subset(labels, 50, num_classes=2, seed=0).tolist() == list(range(9))


@pytest.mark.parametrize(
    ("subset", "expected"),
    [
        (0, r"subset must be a positive number of images or None; got 0"),
        (True, r"subset must be a positive number of images or None; got True"),
        (2.5, r"subset must be a positive number of images or None; got 2\.5"),
        (5, r"subset=5 is too small for 3 classes.*at least 9"),
    ],
)
def test_bad_subsets_are_explained(subset: object, expected: str) -> None:
    with pytest.raises(DatasetError, match=expected):
        splits.stratified_subset(labels_of([10, 10, 10]), subset, num_classes=3, seed=0)  # type: ignore[arg-type]


def test_part_counts_are_what_the_split_gives_class_by_class() -> None:
    for count in range(2, 40):
        labels = np.zeros(count, dtype=np.int64)
        train, validation, test = splits.stratified_split(labels, 0.15, 0.15, seed=0)
        assert splits.part_counts(count, 0.15, 0.15) == (len(train), len(validation), len(test))


def test_a_small_set_warns_that_it_cannot_keep_the_shares_with_the_numbers() -> None:
    notes = splits.shortfalls([3] * 10, [str(digit) for digit in range(10)], 0.15, 0.15)
    assert len(notes) == 1
    assert notes[0].startswith(
        "The 30 images in 10 classes split into 10 for training, 10 for validation and 10 for testing "
        "(33% / 33% / 33%), not the 70% / 15% / 15% asked"
    )
    assert "the smallest class has only 1 training image(s)" in notes[0]
    fair = int(notes[0].split("Use at least ")[1].split()[0])
    # The advice is right: that many per class keeps the training share within 10 points.
    train, _, _ = splits.part_counts(fair, 0.15, 0.15)
    assert train / fair >= 0.6 and splits.shortfalls([fair] * 10, list("abcdefghij"), 0.15, 0.15) == []


def test_a_class_of_two_images_is_named_when_its_test_split_is_empty() -> None:
    notes = splits.shortfalls([2, 40, 40], ["cats", "dogs", "owls"], 0.15, 0.15)
    assert notes == [
        "Part of the test split is empty: 'cats' (2) has too few images to give one to test, so the test "
        "accuracy says nothing about it. Give every class at least 3 images."
    ]
    whole = splits.shortfalls([2, 2], ["cats", "dogs"], 0.15, 0.15)
    assert whole[-1].startswith("The whole test split is empty: 'cats' (2), 'dogs' (2) have too few images")
    assert splits.shortfalls([50, 50], ["cats", "dogs"], 0.15, 0.15) == []
