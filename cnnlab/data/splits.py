"""Stratified subsets and train/validation/test splits of a labelled dataset, by seed.

Both work on the labels alone and return indices, class by class, so every class keeps its
share of the images; the same labels and seed always give the same indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlab.errors import DatasetError

__all__ = ["part_counts", "shortfalls", "stratified_split", "stratified_subset"]


def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` across classes in proportion to `counts`, at least one each, summing exactly."""
    quotas = counts * (total / counts.sum())
    allocated = np.maximum(np.floor(quotas).astype(np.int64), 1)
    allocated = np.minimum(allocated, counts)
    order = np.argsort(-(quotas - np.floor(quotas)), kind="stable")
    index = 0
    while allocated.sum() < total and index < 10 * len(counts):
        class_index = order[index % len(counts)]
        if allocated[class_index] < counts[class_index]:
            allocated[class_index] += 1
        index += 1
    while allocated.sum() > total:
        class_index = int(np.argmax(allocated))
        allocated[class_index] -= 1
    result: np.ndarray = allocated
    return result


def stratified_subset(labels: np.ndarray, subset: int, num_classes: int, seed: int) -> np.ndarray:
    """Indices of at most `subset` items keeping the class proportions (at least one per class)."""
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < 1:
        raise DatasetError(f"subset must be a positive number of images or None; got {subset!r}.")
    if subset >= len(labels):
        return np.arange(len(labels))
    present = np.bincount(labels, minlength=num_classes)
    if subset < np.count_nonzero(present) * 3:
        raise DatasetError(
            f"subset={subset} is too small for {np.count_nonzero(present)} classes: each class needs at "
            f"least 3 images to be split. Use a subset of at least {np.count_nonzero(present) * 3}."
        )
    allocated = _largest_remainder(present.astype(np.int64), subset)
    rng = np.random.default_rng([seed, 1])
    chosen = [
        rng.permutation(np.flatnonzero(labels == index))[: allocated[index]] for index in range(num_classes)
    ]
    return np.sort(np.concatenate(chosen))


def part_counts(count: int, validation_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """How many of one class's `count` images go to train, validation and test.

    The shares are rounded; a class with 3 or more images gets at least one test image, and one
    validation image when 2 are left, whenever that fraction is above zero; at least one stays for training.
    """
    test_count = round(count * test_fraction)
    validation_count = round(count * validation_fraction)
    if test_fraction > 0 and test_count == 0 and count >= 3:
        test_count = 1
    if validation_fraction > 0 and validation_count == 0 and count - test_count >= 2:
        validation_count = 1
    while test_count + validation_count >= count and test_count + validation_count > 0:
        if validation_count >= test_count and validation_count > 0:
            validation_count -= 1
        else:
            test_count -= 1
    return count - validation_count - test_count, validation_count, test_count


def stratified_split(
    labels: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, validation and test, class by class, shuffled; the same seed gives the same split.

    Each class keeps at least one training image; it gets a validation and a test image whenever
    it has enough images and the fraction is above zero.
    """
    rng = np.random.default_rng([seed, 2])
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for class_index in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == class_index))
        _, validation_count, test_count = part_counts(len(members), validation_fraction, test_fraction)
        test.append(members[:test_count])
        validation.append(members[test_count : test_count + validation_count])
        train.append(members[test_count + validation_count :])
    train_indices, validation_indices, test_indices = (
        rng.permutation(np.concatenate(part)) for part in (train, validation, test)
    )
    return train_indices, validation_indices, test_indices


SHARE_TOLERANCE = 0.10  # A training share further than this below the one asked is worth a warning.


def _percent(value: float) -> str:
    return f"{value:.0%}"


def _fair_count(validation_fraction: float, test_fraction: float) -> int:
    """The fewest images of a class whose split comes within `SHARE_TOLERANCE` of the shares asked."""
    wanted = 1 - validation_fraction - test_fraction
    for count in range(3, 10_000):
        train, _, _ = part_counts(count, validation_fraction, test_fraction)
        if train >= 2 and train / count >= wanted - SHARE_TOLERANCE:
            return count
    return 10_000


def shortfalls(
    class_counts: Sequence[int], class_names: Sequence[str], validation_fraction: float, test_fraction: float
) -> list[str]:
    """Warnings, with the numbers, when a split cannot keep the shares asked or leaves a part empty.

    `class_counts` are the images of each class after any subset. A set too small for its classes
    moves images from training to validation and test (each class keeps one of each when it can),
    and a class with two images gets no test image.
    """
    parts = [part_counts(int(count), validation_fraction, test_fraction) for count in class_counts]
    total = sum(int(count) for count in class_counts)
    if not total:
        return []
    train, validation, test = (sum(part[index] for part in parts) for index in range(3))
    asked_train = 1 - validation_fraction - test_fraction
    notes = []
    fewest = min(part[0] for part in parts)
    if train / total < asked_train - SHARE_TOLERANCE:
        fair = _fair_count(validation_fraction, test_fraction)
        notes.append(
            f"The {total:,} images in {len(parts)} classes split into {train:,} for training, {validation:,} "
            f"for validation and {test:,} for testing ({_percent(train / total)} / "
            f"{_percent(validation / total)} / {_percent(test / total)}), not the {_percent(asked_train)} / "
            f"{_percent(validation_fraction)} / {_percent(test_fraction)} asked: every class keeps a "
            f"validation and a test image where it can, so the smallest class has only {fewest} training image(s). "
            f"Use at least {fair} images per class ({fair * len(parts):,} in all) for shares close to those asked."
        )
    for position, (part, fraction) in enumerate(
        (("validation", validation_fraction), ("test", test_fraction)), 1
    ):
        empty = [
            f"{name!r} ({count})"
            for name, count, counts in zip(class_names, class_counts, parts, strict=True)
            if fraction > 0 and counts[position] == 0
        ]
        if empty:
            whole = "The whole" if len(empty) == len(parts) else "Part of the"
            notes.append(
                f"{whole} {part} split is empty: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} too few "
                f"images to give one to {part}, so the {part} accuracy says nothing about "
                f"{'it' if len(empty) == 1 else 'them'}. Give every class at least 3 images."
            )
    return notes
