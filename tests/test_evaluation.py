"""Evaluation: a real checkpoint against Keras's own evaluate, scikit-learn's report, and the pickers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.data.info import SplitData
from cnnlab.store.run_store import Store
from cnnlab.trained import checkpoints, evaluation
from cnnlab.trained.evaluation import EvaluationError


@pytest.fixture(scope="module")
def trained(trained_home: tuple[Path, str]) -> tuple[Store, str]:
    return Store(trained_home[0]), trained_home[1]


@pytest.fixture(scope="module")
def data(trained: tuple[Store, str]) -> SplitData:
    store, run_id = trained
    return datasets.load(store.get_run(run_id).data())


@pytest.fixture(scope="module")
def result(trained: tuple[Store, str], data: SplitData) -> evaluation.Evaluation:
    store, run_id = trained
    model = checkpoints.load(checkpoints.find(store, run_id, "best"))
    return evaluation.evaluate(model, data.x_test, data.y_test, data.class_names)


def test_loss_and_accuracy_match_keras_evaluate(
    trained: tuple[Store, str], data: SplitData, result: evaluation.Evaluation
) -> None:
    store, run_id = trained
    model = checkpoints.load(checkpoints.find(store, run_id, "best"))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    expected = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    assert result.accuracy == pytest.approx(expected["accuracy"], abs=1e-6)
    assert result.loss == pytest.approx(expected["loss"], rel=1e-4)
    # The run's own recorded test figures come from the same checkpoint (one epoch: best is latest).
    assert result.accuracy == pytest.approx(store.get_run(run_id).result("test_accuracy"), abs=1e-6)


def test_confusion_and_report_agree_with_scikit_learn(result: evaluation.Evaluation) -> None:
    np.testing.assert_array_equal(
        result.confusion, metrics.confusion_matrix(result.labels, result.predicted, labels=range(10))
    )
    report = evaluation.per_class_report(result)
    reference = metrics.classification_report(
        result.labels, result.predicted, output_dict=True, zero_division=0
    )
    for row in report.itertuples():
        expected = reference[str(row.Index)]
        assert (row.precision, row.recall, row.f1, row.support) == pytest.approx(
            (expected["precision"], expected["recall"], expected["f1-score"], expected["support"])
        )
    assert result.confusion.sum() == result.count == len(result.labels)
    assert result.mistake_count == result.count - np.trace(result.confusion)


def test_cells_and_mistakes_come_most_confident_first(result: evaluation.Evaluation) -> None:
    for true_class in range(10):
        for predicted_class in range(10):
            indices = evaluation.cell(result, true_class, predicted_class)
            assert len(indices) == result.confusion[true_class, predicted_class]
            assert np.all(np.diff(result.confidence[indices]) <= 0)
    wrong = evaluation.mistakes(result)
    assert len(wrong) == result.mistake_count
    assert np.all(result.labels[wrong] != result.predicted[wrong])
    assert np.all(np.diff(result.confidence[wrong]) <= 0)
    assert len(evaluation.mistakes(result, 3)) == min(3, result.mistake_count)
    title = evaluation.describe(result, int(wrong[0]))
    assert title.startswith("✗ ") and "→" in title and title.endswith("%")


def test_metrics_csv_holds_the_table_and_the_summary(result: evaluation.Evaluation) -> None:
    text = evaluation.metrics_csv(result)
    table_text, summary_text = text.split("\n\n")
    table = pd.read_csv(io.StringIO(table_text))
    assert list(table.columns) == ["class", "precision", "recall", "f1", "support"]
    assert table["support"].sum() == result.count
    summary = pd.read_csv(io.StringIO(summary_text)).set_index("metric")["value"]
    assert summary["accuracy"] == pytest.approx(result.accuracy, abs=1e-5)
    reference = metrics.classification_report(
        result.labels, result.predicted, labels=range(10), output_dict=True, zero_division=0
    )
    for average in ("macro", "weighted"):
        for name, key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert summary[f"{name} ({average} average)"] == pytest.approx(
                reference[f"{average} avg"][key], abs=1e-5
            )


def test_grad_cam_of_chosen_images(trained: tuple[Store, str], result: evaluation.Evaluation) -> None:
    store, run_id = trained
    model = checkpoints.load(checkpoints.find(store, run_id, "latest"))
    maps = evaluation.explain(model, result, np.array([0, 1, 2]))
    assert maps.shape == (3, 8, 8) and maps.min() >= 0.0 and maps.max() <= 1.0
    assert evaluation.explain(model, result, np.array([], dtype=np.int64)).shape == (0, 8, 8)


def test_a_single_sigmoid_output_is_understood() -> None:
    class Half:
        losses = ()

        def predict(self, images: np.ndarray, **options: object) -> np.ndarray:
            return np.array([[0.9], [0.2], [0.6]], np.float32)

    result = evaluation.evaluate(Half(), np.zeros((3, 2, 2, 1)), np.array([1, 0, 0]), ["cat", "dog"])
    np.testing.assert_array_equal(result.predicted, [1, 0, 1])
    np.testing.assert_allclose(result.confidence, [0.9, 0.8, 0.6], atol=1e-6)
    assert result.accuracy == pytest.approx(2 / 3)
    np.testing.assert_array_equal(result.confusion, [[1, 1], [0, 1]])


def test_unknown_and_empty_splits_say_what_to_do(data: SplitData) -> None:
    with pytest.raises(EvaluationError, match="'test' or 'validation'; got 'training'"):
        evaluation.split_arrays(data, "training")
    no_test = datasets.load(specs.DataSettings(test_fraction=0.0))
    with pytest.raises(EvaluationError, match=r"no test images.*Choose the validation split"):
        evaluation.split_arrays(no_test, "test")
    assert len(evaluation.split_arrays(data, "validation")[0]) == len(data.y_val)
