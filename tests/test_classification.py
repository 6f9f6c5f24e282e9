"""Classification scores shared by the worker and the server, checked against scikit-learn and Keras."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from sklearn import metrics

from cnnlab.trained import classification

RNG = np.random.default_rng(3)


def test_cross_entropy_matches_scikit_learn_and_keras() -> None:
    probabilities = RNG.dirichlet(np.ones(3), size=10).astype(np.float32)
    labels = RNG.integers(0, 3, 10)
    losses = classification.cross_entropy(probabilities, labels)
    assert losses.mean() == pytest.approx(metrics.log_loss(labels, probabilities, labels=range(3)), rel=1e-5)
    expected = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
    np.testing.assert_allclose(losses, keras.ops.convert_to_numpy(expected), rtol=1e-5)


def test_binary_cross_entropy_of_one_sigmoid_output_matches_scikit_learn_and_keras() -> None:
    sigmoid = RNG.random((10, 1)).astype(np.float32)
    binary = RNG.integers(0, 2, 10)
    losses = classification.cross_entropy(sigmoid, binary)
    assert losses.mean() == pytest.approx(metrics.log_loss(binary, sigmoid[:, 0], labels=[0, 1]), rel=1e-5)
    expected = [
        float(keras.losses.binary_crossentropy([[label]], [row])[0])
        for label, row in zip(binary, sigmoid, strict=True)
    ]
    np.testing.assert_allclose(losses, expected, rtol=1e-4)
    assert classification.predicted_classes(sigmoid).tolist() == (sigmoid[:, 0] > 0.5).astype(int).tolist()


def test_cross_entropy_is_clipped_as_keras_clips_it() -> None:
    certain_and_wrong = np.array([[1.0, 0.0]], np.float32)
    losses = classification.cross_entropy(certain_and_wrong, np.array([1]))
    expected = keras.losses.sparse_categorical_crossentropy(np.array([1]), certain_and_wrong)
    np.testing.assert_allclose(losses, keras.ops.convert_to_numpy(expected), rtol=1e-5)
    assert np.isfinite(losses).all()


def test_the_confusion_matrix_agrees_with_scikit_learn() -> None:
    labels, predictions = RNG.integers(0, 4, 50), RNG.integers(0, 4, 50)
    expected = metrics.confusion_matrix(labels, predictions, labels=range(4))
    np.testing.assert_array_equal(classification.confusion_matrix(labels, predictions, 4), expected)
    # A class that never occurs keeps its row and column of zeros.
    np.testing.assert_array_equal(
        classification.confusion_matrix(np.array([0, 0]), np.array([0, 1]), 3),
        metrics.confusion_matrix([0, 0], [0, 1], labels=range(3)),
    )


def test_the_scores_and_the_evaluation_module_import_without_scikit_learn() -> None:
    # The worker imports both; a cold worker must not pay for scikit-learn.
    code = (
        "import sys; import cnnlab.trained.classification, cnnlab.trained.evaluation; "
        "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
