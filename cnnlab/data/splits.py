"""Stratified subsets and train/validation/test splits of a labelled dataset, by seed.

Both work on the labels alone and return indices, class by class, so every class keeps its
share of the images; the same labels and seed always give the same indices.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import DatasetError

__all__ = ["stratified_split", "stratified_subset"]


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
        count = len(members)
        test_count = round(count * test_fraction)
        validation_count = round(count * validation_fraction)
        if test_fraction > 0 and test_count == 0 and count >= 3:
            test_count = 1
        if validation_fraction > 0 and validation_count == 0 and count - test_count >= 2:
            validation_count = 1
        while test_count + validation_count >= count:
            if validation_count >= test_count and validation_count > 0:
                validation_count -= 1
            else:
                test_count -= 1
        test.append(members[:test_count])
        validation.append(members[test_count : test_count + validation_count])
        train.append(members[test_count + validation_count :])
    train_indices, validation_indices, test_indices = (
        rng.permutation(np.concatenate(part)) for part in (train, validation, test)
    )
    return train_indices, validation_indices, test_indices
