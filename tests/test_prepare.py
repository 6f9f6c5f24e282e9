"""Preprocessing for a model: the same size, colour mode and ink layout as the dataset."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnlab.data import prepare
from cnnlab.data.info import DatasetInfo
from cnnlab.errors import ImageError


def dataset_info(shape: tuple[int, int, int], digit_like: bool, name: str = "test") -> DatasetInfo:
    return DatasetInfo(
        name=name,
        title="Test",
        description="",
        image_shape=shape,
        class_names=("a", "b"),
        size=10,
        source="",
        licence="",
        available=True,
        unavailable_reason=None,
        digit_like=digit_like,
    )


def test_prepares_a_photo_for_a_colour_dataset() -> None:
    photo = Image.new("RGB", (100, 50), (255, 0, 0))
    prepared = prepare.prepare_for_model(photo, dataset_info((32, 32, 3), digit_like=False))
    assert prepared.array.shape == (32, 32, 3) and prepared.array.dtype == np.float32
    assert np.allclose(prepared.array[..., 0], 1.0) and np.allclose(prepared.array[..., 1:], 0.0)
    assert [name for name, _ in prepared.steps] == ["decoded", "resized"]


def test_prepares_a_colour_photo_for_a_grey_dataset() -> None:
    photo = Image.new("RGB", (20, 20), (0, 255, 0))
    prepared = prepare.prepare_for_model(photo, dataset_info((16, 16, 1), digit_like=False))
    assert prepared.array.shape == (16, 16, 1)
    assert np.allclose(prepared.array, 0.587, atol=0.01)  # ITU-R 601 luma of pure green.
    assert [name for name, _ in prepared.steps] == ["decoded", "grayscale", "resized"]


def dark_on_light_digit(size: int = 90) -> Image.Image:
    """A thick dark stroke drawn off-centre on light paper, like a photo of a handwritten 1."""
    paper = Image.new("L", (size, size), 230)
    ImageDraw.Draw(paper).line([(20, 10), (25, 50)], fill=30, width=7)
    return paper


def test_digit_like_data_is_inverted_cropped_and_centred() -> None:
    prepared = prepare.prepare_for_model(dark_on_light_digit(), dataset_info((28, 28, 1), True, "mnist"))
    names = [name for name, _ in prepared.steps]
    assert names == ["decoded", "inverted", "contrast", "cropped", "centred"]
    array = prepared.array[:, :, 0]
    assert array.shape == (28, 28)
    assert array[0].max() == 0 and array[:, 0].max() == 0  # Dark background, like MNIST.
    assert array.max() > 0.9
    rows, columns = np.indices(array.shape)
    centre_row = (rows * array).sum() / array.sum()
    centre_column = (columns * array).sum() / array.sum()
    assert abs(centre_row - 13.5) <= 1 and abs(centre_column - 13.5) <= 1
    ink_rows = np.flatnonzero(array.max(axis=1) > 0.2)
    assert 17 <= ink_rows[-1] - ink_rows[0] + 1 <= 22  # MNIST fits the ink in a 20-pixel box.


def test_light_ink_on_dark_is_not_inverted_and_rgb_targets_get_three_channels() -> None:
    chalk = Image.new("L", (40, 40), 0)
    ImageDraw.Draw(chalk).ellipse((10, 10, 30, 30), outline=255, width=4)
    prepared = prepare.prepare_for_model(chalk, dataset_info((16, 16, 3), True, "digits"))
    names = [name for name, _ in prepared.steps]
    assert "inverted" not in names and names[-1] == "rgb"
    assert prepared.array.shape == (16, 16, 3)
    assert np.array_equal(prepared.array[..., 0], prepared.array[..., 2])


def test_a_prepared_digit_from_the_dataset_stays_recognisable() -> None:
    from cnnlab.data import datasets

    data = datasets.load()
    sample = data.x_test[0]
    prepared = prepare.prepare_for_model(sample, data.info)
    assert prepared.array.shape == sample.shape
    correlation = np.corrcoef(prepared.array.ravel(), sample.ravel())[0, 1]
    assert correlation > 0.6


def test_blank_images_do_not_crash() -> None:
    prepared = prepare.prepare_for_model(np.zeros((10, 10), dtype=np.uint8), dataset_info((8, 8, 1), True))
    assert prepared.array.shape == (8, 8, 1) and prepared.array.max() == 0
    white = prepare.prepare_for_model(np.full((10, 10), 255, dtype=np.uint8), dataset_info((8, 8, 1), True))
    assert white.array.max() == 0


@pytest.mark.parametrize(
    "array",
    [
        np.full((5, 5), 128, dtype=np.uint8),
        np.full((5, 5, 1), 128 / 255, dtype=np.float32),
        np.full((5, 5, 3), 128.0, dtype=np.float64),
        np.full((1, 5, 5, 3), 128, dtype=np.uint8),
    ],
)
def test_accepts_arrays_in_the_usual_layouts(array: np.ndarray) -> None:
    prepared = prepare.prepare_for_model(array, dataset_info((4, 4, 1), digit_like=False))
    assert prepared.array.shape == (4, 4, 1)
    assert np.allclose(prepared.array, 128 / 255, atol=0.01)


def test_rgba_arrays_are_composited_on_white() -> None:
    transparent = np.zeros((4, 4, 4), dtype=np.uint8)
    prepared = prepare.prepare_for_model(transparent, dataset_info((4, 4, 3), digit_like=False))
    assert np.allclose(prepared.array, 1.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            np.zeros((2, 3, 4, 5)),
            "Expected an image array of shape \\(height, width\\).*got shape \\(2, 3, 4, 5\\)",
        ),
        (np.zeros((4, 4, 2)), "got shape \\(4, 4, 2\\). Pass a single image"),
        (np.zeros((0, 4)), "The image array is empty"),
        (np.full((3, 3), np.nan), "NaN or infinite"),
        ("photo.png", "Expected a PIL image or a numpy array; got str"),
    ],
)
def test_rejects_bad_arrays(value: object, expected: str) -> None:
    with pytest.raises(ImageError, match=expected):
        prepare.prepare_for_model(value, dataset_info((4, 4, 1), digit_like=False))  # type: ignore[arg-type]


def test_to_channels_uses_luma_for_grey_and_repeats_grey_for_colour() -> None:
    colour = np.zeros((2, 1, 1, 3), dtype=np.float32)
    colour[0, 0, 0] = [1.0, 0.0, 0.0]
    colour[1, 0, 0] = [0.0, 0.0, 1.0]
    grey = prepare.to_channels(colour, 1)
    np.testing.assert_allclose(grey[:, 0, 0, 0], [0.299, 0.114], rtol=1e-6)
    repeated = prepare.to_channels(grey, 3)
    assert repeated.shape == (2, 1, 1, 3) and np.array_equal(repeated[..., 0], repeated[..., 2])
    assert prepare.to_channels(colour, 3) is colour


def test_resize_batch_resizes_every_image_like_pillow() -> None:
    batch = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    resized = prepare.resize_batch(batch, 4, 6)
    assert resized.shape == (3, 4, 6, 1) and resized.dtype == np.float32
    oracle = np.asarray(Image.fromarray(batch[1, :, :, 0]).resize((6, 4), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(resized[1, :, :, 0], np.clip(oracle, 0, 1), rtol=1e-6)
    assert prepare.resize_batch(batch, 8, 8) is batch
