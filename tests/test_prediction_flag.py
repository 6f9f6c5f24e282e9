"""The "does not look like a digit" rule on a small set made at test time (tests/flag_images.py): it
flags every noise image and photo crop and passes most genuine digits in styles unlike the training
set's (Pillow's own font on paper and on dark, a plot screenshot, a JPEG, pen strokes on paper and on
the canvas). The rule reads the images alone, so no model is trained: the calibration is measured on
the digits dataset itself, as a run's is. benchmarks/flag_rates.py measures the same on a large set."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.trained import calibration as calibrating
from cnnlab.trained import prediction
from tests import flag_images

PILLOW_FONT = [None]  # Pillow's own font: the same on every machine


@pytest.fixture(scope="module")
def digits_calibration() -> tuple[datasets.DatasetInfo, calibrating.Calibration]:
    """The digits dataset's description and a calibration of its principal components, measured on
    its training and test images as a run's is (the confidence part is not used by the rule)."""
    data = datasets.load(specs.DataSettings(dataset="digits"))
    labels = np.asarray(data.y_test)
    certain = np.eye(len(data.class_names), dtype=np.float32)[labels]
    measured = calibrating.calibrate(certain, labels, data.x_train, data.x_test)
    return data.info, measured


def flagged(
    samples: list[flag_images.Sample], info: datasets.DatasetInfo, measured: calibrating.Calibration
) -> list[bool]:
    prepared = prediction.prepare([sample.image for sample in samples], info)
    return [bool(reasons) for reasons in prediction.unlike_reasons(prepared, info, measured)]


def test_noise_and_photos_are_flagged_and_most_genuine_digits_are_not(
    digits_calibration: tuple[datasets.DatasetInfo, calibrating.Calibration],
) -> None:
    info, measured = digits_calibration
    styles = ("font on paper", "font on dark", "screenshot", "JPEG", "hand-drawn", "canvas", "28x28 PNG")
    digits = [sample for sample in flag_images.digit_set(4, PILLOW_FONT, seed=3) if sample.style in styles]
    others = [
        sample
        for sample in flag_images.non_digit_set(5, PILLOW_FONT, seed=4)
        if sample.style in ("noise", "photo")
    ]
    assert len(digits) == 28 and len(others) == 10
    digit_flags = flagged(digits, info, measured)
    missed = [
        sample.style for sample, flag in zip(others, flagged(others, info, measured), strict=True) if not flag
    ]
    assert not missed, f"non-digits not flagged: {missed}"
    flagged_styles = [sample.style for sample, flag in zip(digits, digit_flags, strict=True) if flag]
    assert len(flagged_styles) <= 3, f"genuine digits flagged: {flagged_styles}"  # at most ~1 in 10


def test_the_reasons_are_plain_words_with_the_measurements_apart(
    digits_calibration: tuple[datasets.DatasetInfo, calibrating.Calibration],
) -> None:
    info, measured = digits_calibration
    photo = flag_images.non_digit_set(1, PILLOW_FONT, seed=4)[1]
    assert photo.style == "photo"
    reasons = prediction.unlike_reasons(prediction.prepare([photo.image], info), info, measured)[0]
    assert reasons
    for plain, detail in reasons:
        assert not any(word in plain for word in ("PCA", "residual", "Otsu", "%")), plain
        assert any(character.isdigit() for character in detail), detail  # The measurement is kept.


@pytest.mark.parametrize(
    ("size", "dark_on_light", "resampling"),
    [(64, True, Image.Resampling.BILINEAR), (200, False, Image.Resampling.BICUBIC)],
    ids=["64 px on paper", "200 px on dark"],
)
def test_the_training_digits_enlarged_to_fill_their_frame_are_not_flagged(
    digits_calibration: tuple[datasets.DatasetInfo, calibrating.Calibration],
    size: int,
    dark_on_light: bool,
    resampling: Image.Resampling,
) -> None:
    """An oracle: the dataset's own digits, enlarged (blurred, touching their edges as the 8x8 digits
    do), are digits. Before the whole-frame check the photo-edge rule flagged nearly all of them."""
    info, measured = digits_calibration
    images = load_digits().images[::12]  # 150 of the 1,797, every class.
    scaled = [(16 - image if dark_on_light else image) * (255 / 16) for image in images]
    enlarged = [
        Image.fromarray(pixels.astype(np.uint8)).resize((size, size), resampling) for pixels in scaled
    ]
    prepared = prediction.prepare(enlarged, info)
    flags = [bool(reasons) for reasons in prediction.unlike_reasons(prepared, info, measured)]
    assert sum(flags) <= 0.02 * len(flags), f"{sum(flags)} of {len(flags)} flagged"
