"""How well a trained run does on held-out images: accuracy, loss, per-class scores, confusion, mistakes.

The model comes from `cnnlab.trained.checkpoints` (a run's best or latest checkpoint) or from a
user's file; `evaluate` predicts a split once and keeps everything the Evaluate page shows, and
the helpers below pick images out of it. The loss, the predicted classes and the confusion
matrix come from the same single pass as the predictions, by `cnnlab.trained.classification`, as
the worker's validation does (cross-entropy plus the model's regularisation penalties, so the loss
matches Keras's own `evaluate`); precision, recall and F1 are scikit-learn's.

Only `predict_scores` and `explain` need the model, and so TensorFlow; everything else is numpy
(and scikit-learn, imported by the tables that use it, which the worker never calls), so a page
can show a checkpoint's evaluation without starting TensorFlow when its scores were saved before
(`save_scores` and `load_scores`, one file per checkpoint version, split and data: `scores_path`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.data.info import SplitData
from cnnlab.errors import CnnLabError
from cnnlab.trained import classification

if TYPE_CHECKING:
    import keras
    import pandas as pd  # Imported where a table is made: the page draws its summary before any table.

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


@dataclass(frozen=True)
class Scores:
    """What one pass of a model over a split gives: its probabilities and its regularisation penalty."""

    probabilities: np.ndarray  # float32 (count, classes), or (count, 1) for one sigmoid unit
    penalty: float  # the sum of the model's regularisation losses, added to the mean cross-entropy


def predict_scores(model: keras.Model, images: np.ndarray) -> Scores:
    """The model's probabilities for `images` in one pass, and its regularisation penalty."""
    import keras

    probabilities = np.asarray(model.predict(images, batch_size=PREDICTION_BATCH_SIZE, verbose=0), np.float32)
    penalty = float(sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses))
    return Scores(probabilities, penalty)


def from_scores(
    images: np.ndarray, labels: np.ndarray, scores: Scores, class_names: Sequence[str]
) -> Evaluation:
    """The evaluation of a split from its scores: loss, accuracy, confusion matrix, per-image confidence.

    EvaluationError when the scores are not one row per image (scores saved for other data).
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(scores.probabilities, dtype=np.float32)
    if len(probabilities) != len(labels):
        raise EvaluationError(
            f"The scores have {len(probabilities)} rows for {len(labels)} images; evaluate the model again."
        )
    predicted = classification.predicted_classes(probabilities)
    if probabilities.shape[-1] == 1:
        confidence = np.where(predicted == 1, probabilities[:, 0], 1.0 - probabilities[:, 0])
    else:
        confidence = probabilities.max(axis=-1)
    names = tuple(str(name) for name in class_names)
    losses = classification.cross_entropy(probabilities, labels)
    matrix = classification.confusion_matrix(labels, predicted, max(len(names), 2))
    return Evaluation(
        images=images,
        labels=labels,
        probabilities=probabilities,
        predicted=predicted,
        confidence=confidence.astype(np.float32),
        class_names=names,
        loss=float(losses.mean()) + scores.penalty if len(losses) else float("nan"),
        accuracy=float((predicted == labels).mean()) if len(labels) else float("nan"),
        confusion=matrix,
    )


def evaluate(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> Evaluation:
    """Predict `images` once and measure: loss, accuracy, confusion matrix, per-image confidence."""
    return from_scores(images, labels, predict_scores(model, images), class_names)


def scores_path(cache_folder: Path, checkpoint_path: Path, modified: int, split: str, data: Any) -> Path:
    """Where the scores of one checkpoint file version on one split of one dataset are saved.

    The name hashes the checkpoint's path and modification time, the split and the data settings
    (any JSON-ready value): a rewritten checkpoint or other data gets another file.
    """
    key = json.dumps([str(checkpoint_path), modified, split, data], sort_keys=True, default=str)
    return Path(cache_folder) / f"scores_{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def save_scores(path: Path, scores: Scores) -> None:
    """Write `scores` to `path` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, probabilities=scores.probabilities, penalty=np.float64(scores.penalty))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_scores(path: Path) -> Scores | None:
    """The scores saved at `path`, or None when there are none (or the file is unreadable)."""
    try:
        with np.load(path) as saved:
            return Scores(np.asarray(saved["probabilities"], np.float32), float(saved["penalty"]))
    except (OSError, KeyError, ValueError):
        return None


def row_shares(confusion: np.ndarray) -> np.ndarray:
    """A confusion matrix with each row divided by its total: the share of each true class given each
    prediction (a class with no images keeps a row of zeros)."""
    counts = np.asarray(confusion, dtype=np.float64)
    shares: np.ndarray = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return shares


def _precision_recall_f1(evaluation: Evaluation) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per class: precision, recall, F1 and support, by scikit-learn (0 where undefined).

    Imported here, not at the top: the worker imports this module and does not import scikit-learn.
    """
    from sklearn import metrics

    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        evaluation.labels,
        evaluation.predicted,
        labels=np.arange(len(evaluation.class_names)),
        average=None,
        zero_division=0,
    )
    return precision, recall, f1, np.asarray(support)


def per_class_report(evaluation: Evaluation) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (as scikit-learn computes them), one row per class name."""
    import pandas as pd

    precision, recall, f1, support = _precision_recall_f1(evaluation)
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
    import pandas as pd

    rows = [
        {"metric": "accuracy", "value": evaluation.accuracy},
        {"metric": "loss", "value": evaluation.loss},
    ]
    from sklearn import metrics

    for average in ("macro", "weighted"):
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            evaluation.labels,
            evaluation.predicted,
            labels=np.arange(len(evaluation.class_names)),
            average=average,
            zero_division=0,
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
    from cnnlab.trained import inspection

    if len(indices) == 0:
        return np.zeros((0, *evaluation.images.shape[1:3]), np.float32)
    return inspection.grad_cam(model, evaluation.images[indices], evaluation.predicted[indices])


__all__ = [
    "SPLITS",
    "Evaluation",
    "EvaluationError",
    "Scores",
    "cell",
    "describe",
    "evaluate",
    "explain",
    "from_scores",
    "load_scores",
    "metrics_csv",
    "mistakes",
    "per_class_report",
    "predict_scores",
    "save_scores",
    "scores_path",
    "split_arrays",
    "summary",
]
