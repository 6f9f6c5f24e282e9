"""Safe image decoding and the preprocessing that matches a dataset."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnlab.data import images
from cnnlab.data.datasets import DatasetInfo
from cnnlab.errors import ImageError


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def dataset_info(shape: tuple[int, int, int], digit_like: bool, name: str = "test") -> DatasetInfo:
    return DatasetInfo(name, "Test", "", shape, ("a", "b"), 10, "", "", True, None, digit_like)


# Decoding: every supported format and mode becomes 8-bit RGB or L.


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_decodes_every_supported_format(image_format: str) -> None:
    original = Image.new("RGB", (12, 7), (200, 30, 30))
    decoded = images.decode_image(encode(original, image_format))
    assert decoded.size == (12, 7)
    assert decoded.mode in ("RGB", "L")
    red = np.asarray(decoded.convert("RGB"), dtype=int)[3, 5]
    assert abs(red[0] - 200) < 20 and red[1] < 60


def test_grey_and_bilevel_images_stay_grey() -> None:
    assert images.decode_image(encode(Image.new("L", (4, 4), 90), "PNG")).mode == "L"
    bilevel = images.decode_image(encode(Image.new("1", (4, 4), 1), "PNG"))
    assert bilevel.mode == "L" and np.asarray(bilevel).max() == 255


def test_transparency_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    decoded = np.asarray(images.decode_image(encode(rgba, "PNG")))
    assert decoded.shape == (4, 4, 3)
    assert tuple(decoded[1, 1]) == (255, 255, 255)
    assert tuple(decoded[0, 0]) == (0, 0, 255)
    grey_alpha = Image.new("LA", (2, 2), (0, 0))
    assert np.asarray(images.decode_image(encode(grey_alpha, "PNG"))).min() == 255


def test_palette_with_transparency_is_composited_on_white() -> None:
    palette = Image.new("P", (3, 3), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((1, 1), 1)
    decoded = np.asarray(images.decode_image(encode(palette, "PNG", transparency=0)))
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[1, 1]) == (255, 0, 0)
    opaque = np.asarray(images.decode_image(encode(palette, "PNG")))
    assert tuple(opaque[0, 0]) == (0, 0, 0)


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # Pure red in CMYK.
    decoded = images.decode_image(encode(cmyk, "JPEG"))
    assert decoded.mode == "RGB"
    red, green, blue = np.asarray(decoded, dtype=int)[4, 4]
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_grey_is_scaled_to_eight_bits() -> None:
    deep = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    decoded = images.decode_image(encode(deep, "PNG"))
    assert decoded.mode == "L"
    assert np.asarray(decoded).tolist() == [[0, 128, 255]]


def test_exif_orientation_is_applied() -> None:
    upright = Image.new("RGB", (40, 20), (255, 255, 255))
    upright.paste((0, 0, 0), (0, 0, 10, 20))  # A black band on the left.
    exif = Image.Exif()
    exif[0x0112] = 6  # "Rotate 90 degrees clockwise to display".
    decoded = images.decode_image(encode(upright, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.size == (20, 40)
    array = np.asarray(decoded.convert("L"), dtype=int)
    assert array[:10].mean() < 60 and array[-10:].mean() > 200  # The band is now at the top.


def test_only_the_first_frame_of_an_animation_is_kept() -> None:
    frames = [Image.new("RGB", (6, 6), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    red, green, blue = np.asarray(images.decode_image(data).convert("RGB"))[3, 3]
    assert red > 200 and blue < 50 and green < 50


# Decoding: bad inputs are rejected with a message saying what was wrong and what to do.


def test_rejects_empty_and_non_bytes_input() -> None:
    with pytest.raises(ImageError, match=r"The file is empty \(0 bytes\)\. Upload a PNG, JPEG"):
        images.decode_image(b"")
    with pytest.raises(
        ImageError, match=r"Expected the image file's bytes; got str\. Read the file in binary mode"
    ):
        images.decode_image("picture.png")  # type: ignore[arg-type]


def test_rejects_files_over_the_byte_cap() -> None:
    data = encode(Image.new("RGB", (50, 50)), "BMP")
    with pytest.raises(
        ImageError, match=r"The image file is 0\.0 MB; the limit is 0\.0 MB\. Resize or compress it"
    ):
        images.decode_image(data, max_bytes=100)


def test_rejects_images_over_the_pixel_cap() -> None:
    data = encode(Image.new("L", (100, 60)), "PNG")
    with pytest.raises(
        ImageError, match="The image is 100 x 60 pixels \\(6,000 in all\\); the limit is 5,000"
    ):
        images.decode_image(data, max_pixels=5000)


def test_a_decompression_bomb_is_rejected_from_its_header_alone() -> None:
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    # Rewrite the PNG header to claim 50,000 x 50,000 pixels, keeping its checksum valid.
    header_start = data.index(b"IHDR")
    struct.pack_into(">II", data, header_start + 4, 50_000, 50_000)
    checksum = zlib.crc32(bytes(data[header_start : header_start + 17]))
    struct.pack_into(">I", data, header_start + 17, checksum)
    with pytest.raises(
        ImageError,
        match=r"The image has 2,500,000,000 pixels, too many to decode safely \(the limit is 40,000,000",
    ):
        images.decode_image(bytes(data))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
            "SVG vector images are not supported",
        ),
        (b"<svg width='10' height='10'></svg>", "Export it as PNG"),
        (b"just some notes, not a picture", "it looks like text \\(30 bytes\\)"),
        (b"%PDF-1.7 binary stuff", "it looks like a PDF document"),
        (b"<!DOCTYPE html><html></html>", "it looks like an HTML page"),
        (b"\x00\x01\x02\x03\xff\xfe" * 10, "binary data of an unknown kind"),
    ],
)
def test_rejects_non_images_with_a_clear_message(data: bytes, expected: str) -> None:
    with pytest.raises(ImageError, match=expected) as caught:
        images.decode_image(data)
    assert "PNG" in str(caught.value)


def test_rejects_unsupported_formats() -> None:
    tiff = encode(Image.new("RGB", (4, 4)), "TIFF")
    with pytest.raises(
        ImageError, match=r"a TIFF image \(not supported\).*Upload a PNG, JPEG, GIF, BMP or WebP"
    ):
        images.decode_image(tiff)


def test_rejects_truncated_and_corrupt_images() -> None:
    photo = encode(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    with pytest.raises(ImageError, match=r"The PNG data is corrupt or truncated.*save it again"):
        images.decode_image(photo[: len(photo) // 2])
    with pytest.raises(
        ImageError, match=r"The PNG data is corrupt or truncated \(30 bytes, header unreadable\)"
    ):
        images.decode_image(photo[:30])
    with pytest.raises(ImageError, match="The JPEG data is corrupt or truncated"):
        images.decode_image(b"\xff\xd8\xff" + bytes(40))


# prepare_for_model: the same preprocessing as the dataset.


def test_prepares_a_photo_for_a_colour_dataset() -> None:
    photo = Image.new("RGB", (100, 50), (255, 0, 0))
    prepared = images.prepare_for_model(photo, dataset_info((32, 32, 3), digit_like=False))
    assert prepared.array.shape == (32, 32, 3) and prepared.array.dtype == np.float32
    assert np.allclose(prepared.array[..., 0], 1.0) and np.allclose(prepared.array[..., 1:], 0.0)
    assert [name for name, _ in prepared.steps] == ["decoded", "resized"]


def test_prepares_a_colour_photo_for_a_grey_dataset() -> None:
    photo = Image.new("RGB", (20, 20), (0, 255, 0))
    prepared = images.prepare_for_model(photo, dataset_info((16, 16, 1), digit_like=False))
    assert prepared.array.shape == (16, 16, 1)
    assert np.allclose(prepared.array, 0.587, atol=0.01)  # ITU-R 601 luma of pure green.
    assert [name for name, _ in prepared.steps] == ["decoded", "grayscale", "resized"]


def dark_on_light_digit(size: int = 90) -> Image.Image:
    """A thick dark stroke drawn off-centre on light paper, like a photo of a handwritten 1."""
    paper = Image.new("L", (size, size), 230)
    ImageDraw.Draw(paper).line([(20, 10), (25, 50)], fill=30, width=7)
    return paper


def test_digit_like_data_is_inverted_cropped_and_centred() -> None:
    prepared = images.prepare_for_model(dark_on_light_digit(), dataset_info((28, 28, 1), True, "mnist"))
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
    prepared = images.prepare_for_model(chalk, dataset_info((16, 16, 3), True, "digits"))
    names = [name for name, _ in prepared.steps]
    assert "inverted" not in names and names[-1] == "rgb"
    assert prepared.array.shape == (16, 16, 3)
    assert np.array_equal(prepared.array[..., 0], prepared.array[..., 2])


def test_a_prepared_digit_from_the_dataset_stays_recognisable() -> None:
    from cnnlab.data import datasets

    data = datasets.load()
    sample = data.x_test[0]
    prepared = images.prepare_for_model(sample, data.info)
    assert prepared.array.shape == sample.shape
    correlation = np.corrcoef(prepared.array.ravel(), sample.ravel())[0, 1]
    assert correlation > 0.6


def test_blank_images_do_not_crash() -> None:
    prepared = images.prepare_for_model(np.zeros((10, 10), dtype=np.uint8), dataset_info((8, 8, 1), True))
    assert prepared.array.shape == (8, 8, 1) and prepared.array.max() == 0
    white = images.prepare_for_model(np.full((10, 10), 255, dtype=np.uint8), dataset_info((8, 8, 1), True))
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
    prepared = images.prepare_for_model(array, dataset_info((4, 4, 1), digit_like=False))
    assert prepared.array.shape == (4, 4, 1)
    assert np.allclose(prepared.array, 128 / 255, atol=0.01)


def test_rgba_arrays_are_composited_on_white() -> None:
    transparent = np.zeros((4, 4, 4), dtype=np.uint8)
    prepared = images.prepare_for_model(transparent, dataset_info((4, 4, 3), digit_like=False))
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
        images.prepare_for_model(value, dataset_info((4, 4, 1), digit_like=False))  # type: ignore[arg-type]
