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
    assert names == [
        "decoded",
        "inverted",
        "background flattened",
        "ink found",
        "cropped",
        "centred",
        "contrast",
    ]
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


# The hard cases of real-world images, built here: each test checks the step images themselves.


def step(prepared: prepare.PreparedImage, name: str) -> np.ndarray:
    """The image of the named step (fails the test when the step is missing)."""
    found = dict(prepared.steps)
    assert name in found, f"no {name!r} step in {[step_name for step_name, _ in prepared.steps]}"
    return found[name][:, :, 0]


def plot_screenshot() -> Image.Image:
    """A digit "7" drawn in blue inside a plotting window: a black frame, ticks and tick labels."""
    image = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([40, 20, 380, 270], outline="black", width=1)
    for x in range(40, 381, 34):
        draw.line([(x, 270), (x, 276)], fill="black")
        draw.text((x - 6, 280), "0.5", fill="black")
    for y in range(20, 271, 25):
        draw.line([(34, y), (40, y)], fill="black")
    draw.line([(180, 80), (250, 80), (200, 220)], fill=(30, 30, 200), width=6)
    return image


def test_a_plot_frame_with_ticks_is_ignored_and_the_digit_fills_the_box() -> None:
    prepared = prepare.prepare_for_model(plot_screenshot(), dataset_info((8, 8, 1), True, "digits"))
    assert prepared.ink is not None and prepared.ink.lines_removed >= 2
    top, left, bottom, right = prepared.ink_box or (0, 0, 0, 0)
    # The box holds the digit (rows 77-223, columns 177-253) and none of the frame (20..270, 40..380).
    assert top >= 70 and bottom <= 230 and left >= 170 and right <= 260
    ink = step(prepared, "ink found")
    assert ink[20, 100:300].max() == 0 and ink[100:200, 40].max() == 0  # The frame is gone.
    assert ink[280:, :].max() == 0  # So are the tick labels.
    final = prepared.array[:, :, 0]
    assert final.max() == pytest.approx(1.0)  # Stretched to the training digits' range.
    rows = np.flatnonzero(final.max(axis=1) > 0.2)
    assert rows[0] == 0 and rows[-1] == 7  # The 8x8 digits fill their box from top to bottom.


@pytest.mark.parametrize("ink_colour", [(255, 255, 255, 255), (0, 0, 0, 255)], ids=["white ink", "black ink"])
def test_transparent_pngs_keep_their_ink_whatever_its_colour(ink_colour: tuple[int, int, int, int]) -> None:
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(50, 15), (50, 85)], fill=ink_colour, width=8)
    prepared = prepare.prepare_for_model(image, dataset_info((28, 28, 1), True, "mnist"))
    colour = dict(prepared.steps)["decoded"]
    # Composited on a background that contrasts with the ink: the stroke stands out either way.
    assert abs(float(colour[50, 50].mean()) - float(colour[5, 5].mean())) > 0.9
    final = prepared.array[:, :, 0]
    assert final.max() == pytest.approx(1.0) and final[0].max() == 0  # Light ink on black.
    assert final[:, 13:15].sum() > 0.5 * final.sum()  # The vertical stroke, in the middle.


def test_a_digit_touching_the_border_loses_no_ink() -> None:
    paper = Image.new("L", (60, 80), 255)
    draw = ImageDraw.Draw(paper)
    draw.line([(0, 0), (59, 0), (20, 79)], fill=0, width=6)  # A "7" touching three sides.
    prepared = prepare.prepare_for_model(paper, dataset_info((28, 28, 1), True, "mnist"))
    final = prepared.array[:, :, 0]
    assert final.max() == pytest.approx(1.0)
    # Centred by mass but never shifted out of the frame: every edge of the 20x20 box is kept.
    assert final[0].max() == 0 and final[-1].max() == 0 and final[:, 0].max() == 0 and final[:, -1].max() == 0
    rows = np.flatnonzero(final.max(axis=1) > 0.1)
    assert rows[-1] - rows[0] + 1 >= 19
    cropped = step(prepared, "cropped")
    assert cropped.shape[0] >= 80 and cropped[0].max() > 0.5 and cropped[-1].max() > 0.5


def test_a_tiny_digit_in_a_large_photo_is_found_and_scaled_up() -> None:
    size = 600
    rows, columns = np.mgrid[0:size, 0:size] / size
    page = Image.fromarray((255 * (0.75 + 0.2 * rows - 0.1 * columns)).astype(np.uint8))  # Uneven light.
    ImageDraw.Draw(page).line([(420, 100), (420, 150)], fill=20, width=4)  # A "1", 50 pixels tall.
    noisy = np.asarray(page, np.float32) + np.random.default_rng(0).normal(0, 6, (size, size))
    prepared = prepare.prepare_for_model(
        np.clip(noisy, 0, 255).astype(np.uint8), dataset_info((8, 8, 1), True, "digits")
    )
    top, left, bottom, right = prepared.ink_box or (0, 0, 0, 0)
    assert 95 <= top <= 100 and 150 <= bottom <= 156 and left >= 415 and right <= 425
    assert "background flattened" in dict(prepared.steps)
    final = prepared.array[:, :, 0]
    assert final.max() == pytest.approx(1.0)
    assert np.flatnonzero(final.max(axis=1) > 0.2).tolist() == list(range(8))  # Full height, like the digits.
    assert final[:, :2].max() < 0.2 and final[:, -2:].max() < 0.2  # A thin stroke in the middle.


def test_thin_strokes_are_thickened_to_the_training_width() -> None:
    thin, thick = (Image.new("L", (200, 200), 255) for _ in range(2))
    ImageDraw.Draw(thin).ellipse((60, 20, 140, 180), outline=0, width=2)
    ImageDraw.Draw(thick).ellipse((60, 20, 140, 180), outline=0, width=24)
    info = dataset_info((8, 8, 1), True, "digits")
    from_thin, from_thick = (prepare.prepare_for_model(image, info) for image in (thin, thick))
    assert "strokes thickened" in dict(from_thin.steps) and "strokes thickened" not in dict(from_thick.steps)
    # Both become a ring of similar weight, not a faint outline and a blob.
    assert abs(float(from_thin.array.mean()) - float(from_thick.array.mean())) < 0.12
    assert from_thin.array[3:5, 3:5].mean() < 0.3  # The hole of the "0" stays open.
