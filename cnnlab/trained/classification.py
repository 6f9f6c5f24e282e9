"""The scores of a classifier's probabilities against true labels, defined once for the worker and the server.

The worker's validation pass (`cnnlab.runs.worker.telemetry`) and the server's evaluation
(`cnnlab.trained.evaluation`) both turn probabilities into predicted classes, per-image
cross-entropy and a confusion matrix with these functions, so the validation figures recorded
during training and the figures the Evaluate page shows are computed the same way.

Numpy, not scikit-learn: a cold worker does not import scikit-learn, which would slow its start
(`cnnlab.runs.worker.main`), and the worker needs these three. The tests compare
each against scikit-learn (`confusion_matrix`, `log_loss`) and Keras (`sparse_categorical_crossentropy`).
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7  # Keras's default `keras.config.epsilon()`, which clips probabilities in its cross-entropy.


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """The predicted class of each row (a single sigmoid output means class 1 above 0.5)."""
    probabilities = np.asarray(probabilities)
    if probabilities.shape[-1] == 1:
        return (probabilities[:, 0] > 0.5).astype(np.int64)
    return np.asarray(probabilities.argmax(axis=-1), dtype=np.int64)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray, epsilon: float = EPSILON) -> np.ndarray:
    """Per-image cross-entropy of the true class, as Keras computes it from probabilities.

    Rows are renormalised to sum to one and probabilities clipped to [epsilon, 1 - epsilon]; a single
    sigmoid output is read as the probability of class 1 (binary cross-entropy).
    """
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.shape[-1] == 1:
        chance = np.clip(probabilities[:, 0].astype(np.float64), epsilon, 1 - epsilon)
        binary: np.ndarray = -(labels * np.log(chance) + (1 - labels) * np.log(1 - chance))
        return binary
    normalised = probabilities / probabilities.sum(axis=-1, keepdims=True)
    chance = np.clip(normalised[np.arange(len(labels)), labels].astype(np.float64), epsilon, 1 - epsilon)
    negative_logs: np.ndarray = -np.log(chance)
    return negative_logs


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: rows are true classes, columns predictions."""
    flat = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(predictions, dtype=np.int64)
    counts = np.bincount(flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int32)
