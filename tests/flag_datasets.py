"""The out-of-distribution flag on any dataset, without a model: a dataset's calibration as a run of
it measures one, noise and blank images of a size, new genuine images of the shapes and of the letter
renders, and the share of images the rule flags. tests/test_flag_any_dataset.py asserts on small
sets; benchmarks/flag_any_dataset.py measures the rates on larger ones."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from cnnlab import specs
from cnnlab.data import datasets, generated
from cnnlab.data.info import DatasetInfo
from cnnlab.trained import calibration as calibrating
from cnnlab.trained import prediction
from tests import glyph_renders


def calibrated(data: datasets.SplitData) -> tuple[DatasetInfo, calibrating.Calibration]:
    """The run's description of its data and the calibration a run of it measures (with a model that
    gets every test image right: the confidence part plays no part in the flag)."""
    labels = np.asarray(data.y_test)
    certain = np.eye(data.num_classes, dtype=np.float32)[labels]
    info = dataclasses.replace(data.info, class_names=tuple(data.class_names))
    return info, calibrating.calibrate(certain, labels, data.x_train, data.x_test)


def noise_and_blanks(size: int, mode: str, count: int = 10) -> tuple[list[Image.Image], list[Image.Image]]:
    """`count` noise images (half uniform, half Gaussian) and `count` blank ones (black, grey, white,
    then random colours), `size` pixels square, noise in `mode` ("L" or "RGB")."""
    random = np.random.default_rng(5)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    half = count // 2
    noise = [Image.fromarray(random.integers(0, 256, shape, dtype=np.uint8), mode) for _ in range(half)]
    noise += [
        Image.fromarray(np.clip(random.normal(128, 60, shape), 0, 255).astype(np.uint8), mode)
        for _ in range(count - half)
    ]
    blanks = [Image.new("RGB", (size, size), (value, value, value)) for value in (0, 128, 255)]
    blanks += [
        Image.new("RGB", (size, size), tuple(random.integers(0, 256, 3).tolist())) for _ in range(count - 3)
    ]
    return noise, blanks


def new_renders(count: int, seed: int = 99) -> list[Image.Image]:
    """`count` new letter renders (glyph_A to glyph_E in turn), drawn with another seed than the zip's."""
    random = np.random.default_rng(seed)
    letters = glyph_renders.LETTERS
    return [glyph_renders.render(letters[index % len(letters)], random) for index in range(count)]


def new_shapes(count: int, seed: int = 1) -> list[Image.Image]:
    """`count` shapes drawn with another seed than the calibration's, as 8-bit grey images."""
    per_class = -(-count // len(generated.DEFAULT_CLASSES))
    drawn = datasets.load(
        specs.DataSettings(dataset="shapes", seed=seed, options={"count_per_class": per_class})
    )
    images = np.concatenate([drawn.x_train, drawn.x_val, drawn.x_test])[:count]
    return [Image.fromarray(np.round(image[..., 0] * 255).astype(np.uint8), "L") for image in images]


def flagged_share(images: list[Image.Image], info: DatasetInfo, measured: calibrating.Calibration) -> float:
    """The share of `images` the rule flags as unlike the training data."""
    prepared = prediction.prepare(images, info)
    reasons = prediction.unlike_reasons(prepared, info, measured)
    return sum(bool(found) for found in reasons) / len(images)
