"""One prediction for new images, the same for Predict, Evaluate's uploads, the CLI and model files.

`decode` reads an upload (keeping transparency, so white ink on a transparent background is not
lost), `prepare` makes each image ready like the training data (`cnnlab.data.prepare`), and
`classify` predicts them in one batch and returns, per image, the class, its probability, the
top-k and two warnings. The out-of-distribution flag, said before the answer, comes from the image
alone: its ink is not one clear figure on a plain background, its grey levels do not split into ink
and background as a photo's do not (digit-like data only); on any dataset, it is blank or grainy like
noise by the limits measured on the run's held-out images, or the training images' principal
components cannot rebuild it (an image that, whole, looks like the training digits may touch its
edges); each reason is kept in a learner's words and with its measurement. The unsure note says the top
probability is below the threshold calibrated on the run's held-out images
(`cnnlab.trained.calibration`). benchmarks/flag_rates.py measures both on real-world-style digits
and non-digits. `for_run` is the calibration of a run's checkpoint, measured once per checkpoint file.
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
    "unlike_reasons",
]

# The ink of a digit-like image is one figure on a plain background: these bound what that means.
# They were chosen with benchmarks/flag_rates.py (digits in fonts, screenshots, JPEGs, photographs,
# pen strokes, tight crops, enlarged thumbnails; noise, photo crops, textures, gradients, letters,
# shapes): docs/performance.md has the rates they give. How much of the image is ink is not used:
# a tight crop of a bold digit is mostly ink.
MIN_CHOSEN_SHARE = 0.5  # share of the ink in the chosen blob
MAX_BORDER_INK = 0.2  # share of the outermost pixels that is ink, whatever the image's shades
# A photo's edge is rarely plain: ink on more than this share of the edge, with grey levels that do not
# split cleanly (below TEXTURED_SEPARATION) or in an image too small to measure them, is a photo.
MAX_BORDER_INK_TEXTURED = 0.1
TEXTURED_SEPARATION = 0.92
# An image large enough to measure its grey levels (`cnnlab.data.ink.SEPARATION_FROM`) that split below
# PHOTO_SEPARATION is a photo when any of its edge, beyond this share, is ink: digits on paper or a
# screen, real MNIST handwriting enlarged or scanned included, keep their edge plain (chosen on
# tests/real_sets.py's tuning half and set seeds 0 and 7; docs/performance.md).
MAX_BORDER_INK_PHOTO = 0.015
PHOTO_SEPARATION = 0.9
# A digit's ink hardly lies on the image's edge even when it touches it (at most 6%); a speck or a
# stroke cut from a larger picture has much of its ink there.
MAX_EDGE_SHARE = 0.1
# How cleanly the grey levels split into ink and background (`cnnlab.data.ink.otsu_separation`):
# fonts, drawings and screenshots measure 0.8 or more (half of them 0.97 or more), blurred or
# photographed digits down to 0.7, photographs of things 0.64-0.89.
MIN_INK_SEPARATION = 0.7
NOTHING_STANDS_OUT = "nothing stands out from the background"


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image, with the top-k and two honest warnings: the image looks
    unlike the training data (`out_of_distribution`, said before the answer), or the model is unsure."""

    name: str
    class_index: int
    class_name: str
    probability: float
    top: tuple[tuple[str, float], ...]  # (class name, probability), most probable first
    probabilities: np.ndarray  # one per class
    prepared: PreparedImage
    out_of_distribution: str | None  # the sentence to say first when the image looks unlike the data
    reasons: tuple[str, ...] = ()  # why, in a learner's words
    details: tuple[str, ...] = ()  # the same, with the measurements and thresholds
    unsure: str | None = None  # the sentence when the model's top probability is below its calibration

    def headline(self) -> str:
        """The answer as a page says it first: the warning, then the guess."""
        if self.out_of_distribution is not None:
            return f"{self.out_of_distribution.split(';')[0]}; the model's guess would be {self.class_name}"
        if self.unsure is not None:
            return f"The model is unsure: perhaps {self.class_name} ({self.probability:.0%})"
        return f"{self.class_name} ({self.probability:.0%})"

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
            "details": list(self.details),
            "unsure": self.unsure is not None,
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
            description=f"The user's images from {folder}.",  # The name only: no server path on a page.
            image_shape=spec.input_shape,
            class_names=(),
            size=0,
            source=folder,
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
    if _is_digits(info):
        return "This does not look like a digit; the model only knows 0-9."
    names = list(info.class_names)
    known = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"This does not look like the training images ({info.title}); it only knows {known}."


def _is_digits(info: DatasetInfo) -> bool:
    names = list(info.class_names)
    return info.digit_like and names == [str(digit) for digit in range(10)]


# A reason in a learner's words, and the same with its measurement.
Reason = tuple[str, str]


def _ink_reasons(prepared: PreparedImage, fills_its_frame: bool = False) -> list[Reason]:
    """Why a digit-like image's ink is not one figure on a plain background (model-independent).
    Ink on the edges and blended shades (an enlarged thumbnail's blur) are no reason when the image
    `fills_its_frame` as the training digits do."""
    ink = prepared.ink
    if ink is None:
        return []
    if prepared.ink_box is None:
        return [(NOTHING_STANDS_OUT, "no ink stands out from the background")]
    reasons = []
    if ink.chosen_share < MIN_CHOSEN_SHARE:
        reasons.append(
            (
                "its marks are scattered in many pieces, not one figure",
                f"the largest figure holds only {ink.chosen_share:.0%} of the ink ({ink.blobs} pieces)",
            )
        )
    textured = ink.separation is None or ink.separation < TEXTURED_SEPARATION
    photographic = ink.separation is not None and ink.separation < PHOTO_SEPARATION
    runs_off = (
        ink.border_ink > MAX_BORDER_INK
        or (ink.border_ink > MAX_BORDER_INK_TEXTURED and textured)
        or (ink.border_ink > MAX_BORDER_INK_PHOTO and photographic)
    )
    if fills_its_frame:
        pass  # A digit that fills its frame as the training digits do may touch every edge.
    elif runs_off:
        reasons.append(
            (
                "its marks run off the edges, as in a photograph",
                f"{ink.border_ink:.1%} of the image's edge is ink (at most {MAX_BORDER_INK:.0%}; "
                f"{MAX_BORDER_INK_TEXTURED:.0%} when its grey levels split below {TEXTURED_SEPARATION:.2f}; "
                f"{MAX_BORDER_INK_PHOTO:.1%} below {PHOTO_SEPARATION:.2f})",
            )
        )
    elif ink.edge_share > MAX_EDGE_SHARE:
        reasons.append(
            (
                "its marks lie on the edge, as if cut from a larger picture",
                f"{ink.edge_share:.0%} of its ink lies on the image's edge (digits: under {MAX_EDGE_SHARE:.0%})",
            )
        )
    if ink.separation is not None and ink.separation < MIN_INK_SEPARATION and not fills_its_frame:
        reasons.append(
            (
                "its shades blend like a photograph's, not like ink on paper",
                f"its grey levels split into ink and background at {ink.separation:.2f} (Otsu's "
                f"between-class share); drawings reach {MIN_INK_SEPARATION:.2f}",
            )
        )
    return reasons


def _unlike_reason(info: DatasetInfo, residual: float, limit: float) -> Reason:
    what = "digit" if _is_digits(info) else "training image"
    return (
        f"once prepared, its shapes are unlike any {what} the model learned from",
        f"its distance from the training images' principal components (PCA residual) is {residual:.2f}, "
        f"above {limit:.2f} ({calibrating.RESIDUAL_MARGIN:g} times what 99% of held-out images stay under)",
    )


def _signal_reasons(
    contrast: float | None, roughness: float, calibration: calibrating.Calibration
) -> list[Reason]:
    """Why an image is blank (`contrast` None: not judged) or grainy like noise, by the limits
    measured on the run's held-out images."""
    reasons = []
    low = calibration.contrast_threshold
    if low is not None and contrast is not None and contrast < low:
        reasons.append(
            (
                "it is almost blank: nothing in it stands out",
                f"its values vary by {contrast:.3f} (standard deviation); the limit is {low:.3f}, "
                f"{calibrating.CONTRAST_MARGIN:g} times what 99% of held-out images reach",
            )
        )
    high = calibration.roughness_threshold
    if high is not None and roughness > high:
        reasons.append(
            (
                "it is grainy like random noise, unlike the training images",
                f"neighbouring pixels differ by {roughness:.3f} on average; the limit is {high:.3f}, "
                f"{calibrating.ROUGHNESS_MARGIN:g} times what 99% of held-out images stay under",
            )
        )
    return reasons


def _fills_its_frame(
    prepared: Sequence[PreparedImage], calibration: calibrating.Calibration | None
) -> list[bool]:
    """Whether each digit-like image, whole and shrunk to the model's size, is as close to the training
    images' principal components as 99% of the held-out images are: a digit enlarged from a dataset's
    thumbnail, touching its edges as the training digits do (no tuning photo or crop of
    benchmarks/flag_rates.py came that close)."""
    typical = None if calibration is None else calibrating.typical_residual(calibration)
    framed = [item.framed for item in prepared if item.framed is not None]
    if typical is None or calibration is None or len(framed) != len(prepared):
        return [False] * len(prepared)
    residuals = calibrating.residuals(calibration, np.stack(framed))
    return [False] * len(prepared) if residuals is None else [bool(value <= typical) for value in residuals]


def unlike_reasons(
    prepared: Sequence[PreparedImage], info: DatasetInfo, calibration: calibrating.Calibration | None
) -> list[list[Reason]]:
    """Why each prepared image looks unlike the training data, as (plain words, measurement) pairs;
    empty for one that does not. It reads the images alone, never the model's answer: the ink of a
    digit-like image, then on any dataset the limits measured on the run's held-out images (blank,
    grainy like noise, unlike the training images' principal components)."""
    if not prepared:
        return []
    framed = _fills_its_frame(prepared, calibration) if info.digit_like else [False] * len(prepared)
    found: list[list[Reason]] = [
        _ink_reasons(item, fills) if info.digit_like else []
        for item, fills in zip(prepared, framed, strict=True)
    ]
    if calibration is None:
        return found
    arrays = np.stack([item.array for item in prepared])
    residuals = calibrating.residuals(calibration, arrays)
    limit = calibration.residual_threshold
    contrasts, roughness = calibrating.contrasts(arrays), calibrating.roughness(arrays)
    for index, reasons in enumerate(found):
        # Digit-like data judges blankness by its ink ("nothing stands out"): a large noise image
        # shrunk to 8x8 has little contrast left, and calling it blank would mislead.
        contrast = None if info.digit_like else float(contrasts[index])
        reasons += _signal_reasons(contrast, float(roughness[index]), calibration)
        if residuals is not None and limit is not None and residuals[index] > limit:
            reasons.append(_unlike_reason(info, float(residuals[index]), limit))
    return found


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
    sentence = out_of_distribution_sentence(info)
    results = []
    for index, (item, reasons) in enumerate(
        zip(prepared, unlike_reasons(prepared, info, calibration), strict=True)
    ):
        row = full[index]
        order = np.argsort(-row, kind="stable")[: max(1, top_k)]
        best = int(order[0])
        unsure = None
        if calibration is not None and row[best] < calibration.confidence_threshold:
            unsure = (
                f"The model is unsure: {row[best]:.0%}, below the {calibration.confidence_threshold:.0%} "
                f"that 98% of its right answers on the {calibration.measured_on} images reach."
            )
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
                reasons=tuple(plain for plain, _ in reasons),
                details=tuple(detail for _, detail in reasons),
                unsure=unsure,
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
