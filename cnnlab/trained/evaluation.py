"""How well a trained run does on held-out images: accuracy, loss, per-class scores, confusion, mistakes.

The model comes from `cnnlab.trained.checkpoints` (a run's best or latest checkpoint) or from a
user's file; `evaluate` predicts a split once and keeps everything the Evaluate page shows, and
the helpers below pick images out of it. The
loss is computed from the same single pass as the predictions, as `cnnlab.runs.telemetry` does for
validation (cross-entropy plus the model's regularisation penalties), so it matches Keras's
own `evaluate`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
from sklearn import metrics

from cnnlab.data.info import SplitData
from cnnlab.errors import CnnLabError
from cnnlab.runs import telemetry
from cnnlab.trained import inspection

SPLITS = ("test", "validation")
PREDICTION_BATCH_SIZE = 256


class EvaluationError(CnnLabError):
    """A run cannot be evaluated as asked (an unknown or empty split)."""


def split_arrays(data: SplitData, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of the "test" or "validation" split; EvaluationError when it is empty."""
    if split not in SPLITS:
        raise EvaluationError(f"The split to evaluate is 'test' or 'validation'; got {split!r}.")
    images, labels = (data.x_test, data.y_test) if split == "test" else (data.x_val, data.y_val)
    if len(labels) == 0:
        raise EvaluationError(
            f"The run's data has no {split} images (its {split} fraction is 0). "
            f"Choose the {'validation' if split == 'test' else 'test'} split, or train with a {split} fraction."
        )
    return images, labels


@dataclass(frozen=True)
class Evaluation:
    """One pass of a model over a labelled split, and everything derived from it."""

    images: np.ndarray  # float32 (count, height, width, channels) in [0, 1]
    labels: np.ndarray  # int64 true classes
    probabilities: np.ndarray  # float32 (count, classes), or (count, 1) for one sigmoid unit
    predicted: np.ndarray  # int64 predicted classes
    confidence: np.ndarray  # the probability of the predicted class
    class_names: tuple[str, ...]
    loss: float
    accuracy: float
    confusion: np.ndarray  # counts; rows are true classes, columns predictions

    @property
    def count(self) -> int:
        """How many images were evaluated."""
        return len(self.labels)

    @property
    def mistake_count(self) -> int:
        """How many images the model got wrong."""
        return int((self.predicted != self.labels).sum())


def evaluate(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> Evaluation:
    """Predict `images` once and measure: loss, accuracy, confusion matrix, per-image confidence."""
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(model.predict(images, batch_size=PREDICTION_BATCH_SIZE, verbose=0), np.float32)
    losses, hits = telemetry.losses_and_hits(probabilities, labels)
    penalty = float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses))
    predicted = telemetry.predicted_classes(probabilities)
    if probabilities.shape[-1] == 1:
        confidence = np.where(predicted == 1, probabilities[:, 0], 1.0 - probabilities[:, 0])
    else:
        confidence = probabilities.max(axis=-1)
    names = tuple(str(name) for name in class_names)
    matrix = telemetry.confusion_matrix(labels, predicted, max(len(names), 2))
    return Evaluation(
        images=images,
        labels=labels,
        probabilities=probabilities,
        predicted=predicted,
        confidence=confidence.astype(np.float32),
        class_names=names,
        loss=float(losses.mean()) + penalty if len(losses) else float("nan"),
        accuracy=float(hits.mean()) if len(hits) else float("nan"),
        confusion=matrix,
    )


def per_class_report(evaluation: Evaluation) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (scikit-learn), one row per class name."""
    indices = list(range(len(evaluation.class_names)))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        evaluation.labels, evaluation.predicted, labels=indices, zero_division=0
    )
    return pd.DataFrame(
        {
            "class": list(evaluation.class_names),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support.astype(int),
        }
    )


def summary(evaluation: Evaluation) -> pd.DataFrame:
    """Accuracy, loss, and the macro and weighted averages of precision, recall and F1, one row each."""
    rows = [
        {"metric": "accuracy", "value": evaluation.accuracy},
        {"metric": "loss", "value": evaluation.loss},
    ]
    indices = list(range(len(evaluation.class_names)))
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            evaluation.labels, evaluation.predicted, labels=indices, average=average, zero_division=0
        )
        rows += [
            {"metric": f"{name} ({average} average)", "value": float(value)}
            for name, value in (("precision", precision), ("recall", recall), ("f1", f1))
        ]
    return pd.DataFrame(rows)


def metrics_csv(evaluation: Evaluation) -> str:
    """The per-class table followed by the overall figures, as CSV text."""
    buffer = io.StringIO()
    per_class_report(evaluation).to_csv(buffer, index=False, float_format="%.6g")
    buffer.write("\n")
    summary(evaluation).to_csv(buffer, index=False, float_format="%.6g")
    return buffer.getvalue()


def cell(evaluation: Evaluation, true_class: int, predicted_class: int) -> np.ndarray:
    """Indices of the images of class `true_class` predicted as `predicted_class`, most confident first."""
    chosen = np.flatnonzero((evaluation.labels == true_class) & (evaluation.predicted == predicted_class))
    return chosen[np.argsort(-evaluation.confidence[chosen], kind="stable")]


def mistakes(evaluation: Evaluation, limit: int | None = None) -> np.ndarray:
    """Indices of the wrongly predicted images, the most confidently wrong first."""
    wrong = np.flatnonzero(evaluation.predicted != evaluation.labels)
    ordered = wrong[np.argsort(-evaluation.confidence[wrong], kind="stable")]
    return ordered if limit is None else ordered[:limit]


def describe(evaluation: Evaluation, index: int) -> str:
    """A short title for one image: its true class, the prediction and the confidence."""
    names = evaluation.class_names
    truth, guess = int(evaluation.labels[index]), int(evaluation.predicted[index])
    mark = "✓" if truth == guess else "✗"
    return f"{mark} {names[truth]}→{names[guess]} {evaluation.confidence[index]:.0%}"


def explain(model: keras.Model, evaluation: Evaluation, indices: np.ndarray) -> np.ndarray:
    """Grad-CAM maps of the chosen images for their predicted classes, (count, height, width)."""
    if len(indices) == 0:
        return np.zeros((0, *evaluation.images.shape[1:3]), np.float32)
    return inspection.grad_cam(model, evaluation.images[indices], evaluation.predicted[indices])


__all__ = [
    "SPLITS",
    "Evaluation",
    "EvaluationError",
    "cell",
    "describe",
    "evaluate",
    "explain",
    "metrics_csv",
    "mistakes",
    "per_class_report",
    "split_arrays",
    "summary",
]
