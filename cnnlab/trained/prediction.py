"""One prediction for new images, the same for Predict, Evaluate's uploads, the CLI and model files.

`decode` reads an upload (keeping transparency, so white ink on a transparent background is not
lost), `prepare` makes each image ready like the training data (`cnnlab.data.prepare`), and
`classify` predicts them in one batch and returns, per image, the class, its probability, the
top-k and an out-of-distribution hint: a sentence when the model is unsure (its top probability
below the threshold calibrated on the run's held-out images, `cnnlab.trained.calibration`) or the
image looks unlike the training data (its ink is not one clear figure on a plain background, its
grey levels do not split cleanly into ink and background as a photo's textures do not, or the
training images' principal components cannot rebuild it). `for_run` is the calibration of a
run's checkpoint, measured once per checkpoint file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from cnnlab.data import datasets
from cnnlab.data import decode as decoding
from cnnlab.data.info import DatasetInfo
from cnnlab.data.prepare import PreparedImage, prepare_for_model
from cnnlab.trained import calibration as calibrating

if TYPE_CHECKING:
    from cnnlab.data.info import SplitData
    from cnnlab.store.records import RunRecord
    from cnnlab.trained.checkpoints import Checkpoint, TrainedModel

__all__ = [
    "Prediction",
    "classify",
    "decode",
    "for_run",
    "out_of_distribution_sentence",
    "predict",
    "prepare",
    "run_info",
]

# The ink of a digit-like image is one figure on a plain background: these bound what that means.
MAX_INK_COVERAGE = 0.35  # share of the image that is ink
MIN_CHOSEN_SHARE = 0.5  # share of the ink in the chosen blob
MAX_BORDER_INK = 0.3  # share of the outermost pixels that are ink
# How cleanly the grey levels split into ink and background (`cnnlab.data.ink.otsu_separation`): a
# signal that does not depend on the model's confidence. Drawings, scans, screenshots and unevenly lit
# photographs of digits measure 0.89 or more once their background is flattened, photographs of
# things (china, flowers, coloured shapes) 0.72-0.81 (tests/data/real_world; benchmarks/real_world.py
# prints the margins); the threshold sits between the two.
MIN_INK_SEPARATION = 0.85


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image, with the top-k and an out-of-distribution hint."""

    name: str
    class_index: int
    class_name: str
    probability: float
    top: tuple[tuple[str, float], ...]  # (class name, probability), most probable first
    probabilities: np.ndarray  # one per class
    prepared: PreparedImage
    out_of_distribution: str | None  # the sentence to show next to the answer, or None
    reasons: tuple[str, ...] = ()  # why it was flagged, for a tooltip or the CLI

    def to_json(self) -> dict[str, Any]:
        """The JSON form the CLI prints."""
        return {
            "image": self.name,
            "class": self.class_name,
            "probability": round(self.probability, 6),
            "top_k": [{"class": name, "probability": round(value, 6)} for name, value in self.top],
            "out_of_distribution": self.out_of_distribution is not None,
            "hint": self.out_of_distribution,
            "reasons": list(self.reasons),
        }


def run_info(run: RunRecord) -> DatasetInfo:
    """What a run's images are, read from its record without loading its data: the dataset (which
    decides the preprocessing), the model's input shape and the run's class names. The Predict page,
    the CLI and every model file downloaded from the run (`cnnlab.trained.model_files`) use it, so a
    run and its downloaded file prepare a new image the same way."""
    settings = run.data()
    spec = run.model_spec()
    registered = {entry.name: entry for entry in datasets.registry()}
    base = registered.get(settings.dataset)
    if base is None:  # The user's own folder or zip: photos, named after it; never scanned here.
        folder = Path(settings.dataset).name or settings.dataset
        base = DatasetInfo(
            name=folder,
            title=f"Your images: {folder}",
            description=f"The user's images from {settings.dataset}.",
            image_shape=spec.input_shape,
            class_names=(),
            size=0,
            source=settings.dataset,
            licence="Your own images",
            available=True,
            unavailable_reason=None,
            digit_like=False,
        )
    rows = run.dataset_summary if isinstance(run.dataset_summary, list) else []
    named = tuple(str(row["class"]) for row in rows if isinstance(row, dict) and "class" in row)
    return dataclasses.replace(base, image_shape=spec.input_shape, class_names=named or base.class_names)


def decode(data: bytes) -> Image.Image:
    """An uploaded image decoded safely, keeping its transparency (ImageError when it is not an image)."""
    return decoding.decode_image(data, draft_size=(512, 512), keep_alpha=True)


def prepare(images: Sequence[Image.Image | np.ndarray], info: DatasetInfo) -> list[PreparedImage]:
    """Each image prepared like the training data of `info` (ImageError for one that cannot be)."""
    return [prepare_for_model(image, info) for image in images]


def out_of_distribution_sentence(info: DatasetInfo) -> str:
    """ "This does not look like a digit; the model only knows 0-9." (or the dataset's words)."""
    names = list(info.class_names)
    if info.digit_like and names == [str(digit) for digit in range(len(names))] and len(names) == 10:
        return "This does not look like a digit; the model only knows 0-9."
    known = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return (
        f"This does not look like the images the model was trained on ({info.title}); it only knows {known}."
    )


def _ink_reasons(prepared: PreparedImage) -> list[str]:
    ink = prepared.ink
    if ink is None:
        return []
    if prepared.ink_box is None:
        return ["no ink stands out from the background"]
    reasons = []
    if ink.coverage > MAX_INK_COVERAGE:
        reasons.append(f"{ink.coverage:.0%} of the image is ink (drawings have under {MAX_INK_COVERAGE:.0%})")
    if ink.chosen_share < MIN_CHOSEN_SHARE:
        reasons.append(
            f"the largest figure holds only {ink.chosen_share:.0%} of the ink ({ink.blobs} pieces)"
        )
    if ink.border_ink > MAX_BORDER_INK:
        reasons.append(f"{ink.border_ink:.0%} of the image's edge is ink, not background")
    if ink.separation is not None and ink.separation < MIN_INK_SEPARATION:
        reasons.append(
            f"its grey levels do not split into ink and background ({ink.separation:.2f}, drawings "
            f"reach {MIN_INK_SEPARATION:.2f}): it looks like a photograph's textures"
        )
    return reasons


def classify(
    model: TrainedModel,
    prepared: Sequence[PreparedImage],
    info: DatasetInfo,
    calibration: calibrating.Calibration | None = None,
    *,
    names: Sequence[str] | None = None,
    top_k: int = 3,
) -> list[Prediction]:
    """Predict prepared images in one batch; each gets its class, top-k and out-of-distribution hint."""
    from cnnlab.trained import inspection  # Here: TensorFlow starts only when a model predicts.

    if not prepared:
        return []
    probabilities = np.asarray(inspection.predict(model, [item.array for item in prepared]), np.float32)
    full = probabilities if probabilities.shape[-1] > 1 else np.hstack([1 - probabilities, probabilities])
    class_names = list(info.class_names) + [
        str(index) for index in range(len(info.class_names), full.shape[1])
    ]
    residuals = None
    if calibration is not None:
        residuals = calibrating.residuals(calibration, np.stack([item.array for item in prepared]))
    sentence = out_of_distribution_sentence(info)
    results = []
    for index, item in enumerate(prepared):
        row = full[index]
        order = np.argsort(-row, kind="stable")[: max(1, top_k)]
        best = int(order[0])
        reasons = _ink_reasons(item) if info.digit_like else []
        if calibration is not None and row[best] < calibration.confidence_threshold:
            reasons.append(
                f"the model is unsure: {row[best]:.0%}, below the {calibration.confidence_threshold:.0%} "
                f"that 98% of its right answers on the {calibration.measured_on} split reach"
            )
        limit = None if calibration is None else calibration.residual_threshold
        if residuals is not None and limit is not None and residuals[index] > limit:
            reasons.append("the prepared image is unlike every training image (PCA residual)")
        results.append(
            Prediction(
                name=names[index] if names is not None else f"image {index + 1}",
                class_index=best,
                class_name=class_names[best],
                probability=float(row[best]),
                top=tuple((class_names[int(position)], float(row[position])) for position in order),
                probabilities=row,
                prepared=item,
                out_of_distribution=sentence if reasons else None,
                reasons=tuple(reasons),
            )
        )
    return results


def predict(
    model: TrainedModel,
    images: Sequence[Image.Image | np.ndarray],
    info: DatasetInfo,
    calibration: calibrating.Calibration | None = None,
    *,
    names: Sequence[str] | None = None,
    top_k: int = 3,
) -> list[Prediction]:
    """`prepare` then `classify`: the whole prediction for decoded images."""
    return classify(model, prepare(images, info), info, calibration, names=names, top_k=top_k)


def measure(model: TrainedModel, data: SplitData) -> calibrating.Calibration:
    """Calibrate a model on its data: thresholds on the test split (else validation), PCA on training."""
    from cnnlab.trained import inspection

    split, images, labels = "test", data.x_test, data.y_test
    if len(labels) == 0:
        split, images, labels = "validation", data.x_val, data.y_val
    if len(labels) == 0:
        raise calibrating.CalibrationError(
            "The run has neither test nor validation images to calibrate on; "
            "train with a test or validation fraction above 0 to get the out-of-distribution hint."
        )
    probabilities = np.asarray(inspection.predict(model, images), np.float32)
    return calibrating.calibrate(probabilities, labels, data.x_train, images, measured_on=split)


def for_run(checkpoint: Checkpoint, model: TrainedModel, data: SplitData) -> calibrating.Calibration:
    """The calibration of a run's checkpoint, measured once per version of its file and kept beside it."""
    return calibrating.for_checkpoint(checkpoint.path, lambda: measure(model, data))
