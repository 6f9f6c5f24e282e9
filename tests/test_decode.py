"""Safe image decoding: every supported format and mode becomes 8-bit RGB or L; caps, bombs,
non-images and corrupt files are refused with a message saying what to do."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import decode
from cnnlab.errors import ImageError


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


# Decoding: every supported format and mode becomes 8-bit RGB or L.


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_decodes_every_supported_format(image_format: str) -> None:
    original = Image.new("RGB", (12, 7), (200, 30, 30))
    decoded = decode.decode_image(encode(original, image_format))
    assert decoded.size == (12, 7)
    assert decoded.mode in ("RGB", "L")
    red = np.asarray(decoded.convert("RGB"), dtype=int)[3, 5]
    assert abs(red[0] - 200) < 20 and red[1] < 60


def test_grey_and_bilevel_images_stay_grey() -> None:
    assert decode.decode_image(encode(Image.new("L", (4, 4), 90), "PNG")).mode == "L"
    bilevel = decode.decode_image(encode(Image.new("1", (4, 4), 1), "PNG"))
    assert bilevel.mode == "L" and np.asarray(bilevel).max() == 255


def test_transparency_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    decoded = np.asarray(decode.decode_image(encode(rgba, "PNG")))
    assert decoded.shape == (4, 4, 3)
    assert tuple(decoded[1, 1]) == (255, 255, 255)
    assert tuple(decoded[0, 0]) == (0, 0, 255)
    grey_alpha = Image.new("LA", (2, 2), (0, 0))
    assert np.asarray(decode.decode_image(encode(grey_alpha, "PNG"))).min() == 255


def test_palette_with_transparency_is_composited_on_white() -> None:
    palette = Image.new("P", (3, 3), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((1, 1), 1)
    decoded = np.asarray(decode.decode_image(encode(palette, "PNG", transparency=0)))
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[1, 1]) == (255, 0, 0)
    opaque = np.asarray(decode.decode_image(encode(palette, "PNG")))
    assert tuple(opaque[0, 0]) == (0, 0, 0)


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # Pure red in CMYK.
    decoded = decode.decode_image(encode(cmyk, "JPEG"))
    assert decoded.mode == "RGB"
    red, green, blue = np.asarray(decoded, dtype=int)[4, 4]
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_grey_is_scaled_to_eight_bits() -> None:
    deep = Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16))
    decoded = decode.decode_image(encode(deep, "PNG"))
    assert decoded.mode == "L"
    assert np.asarray(decoded).tolist() == [[0, 128, 255]]


def test_exif_orientation_is_applied() -> None:
    upright = Image.new("RGB", (40, 20), (255, 255, 255))
    upright.paste((0, 0, 0), (0, 0, 10, 20))  # A black band on the left.
    exif = Image.Exif()
    exif[0x0112] = 6  # "Rotate 90 degrees clockwise to display".
    decoded = decode.decode_image(encode(upright, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.size == (20, 40)
    array = np.asarray(decoded.convert("L"), dtype=int)
    assert array[:10].mean() < 60 and array[-10:].mean() > 200  # The band is now at the top.


def test_only_the_first_frame_of_an_animation_is_kept() -> None:
    frames = [Image.new("RGB", (6, 6), colour) for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    red, green, blue = np.asarray(decode.decode_image(data).convert("RGB"))[3, 3]
    assert red > 200 and blue < 50 and green < 50


# Decoding: bad inputs are rejected with a message saying what was wrong and what to do.


def test_rejects_empty_and_non_bytes_input() -> None:
    with pytest.raises(ImageError, match=r"The file is empty \(0 bytes\)\. Upload a PNG, JPEG"):
        decode.decode_image(b"")
    with pytest.raises(
        ImageError, match=r"Expected the image file's bytes; got str\. Read the file in binary mode"
    ):
        decode.decode_image("picture.png")  # type: ignore[arg-type]


def test_rejects_files_over_the_byte_cap() -> None:
    data = encode(Image.new("RGB", (50, 50)), "BMP")
    with pytest.raises(
        ImageError, match=r"The image file is 0\.0 MB; the limit is 0\.0 MB\. Resize or compress it"
    ):
        decode.decode_image(data, max_bytes=100)


def test_rejects_images_over_the_pixel_cap() -> None:
    data = encode(Image.new("L", (100, 60)), "PNG")
    with pytest.raises(
        ImageError, match="The image is 100 x 60 pixels \\(6,000 in all\\); the limit is 5,000"
    ):
        decode.decode_image(data, max_pixels=5000)


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
        decode.decode_image(bytes(data))


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
        decode.decode_image(data)
    assert "PNG" in str(caught.value)


def test_rejects_unsupported_formats() -> None:
    tiff = encode(Image.new("RGB", (4, 4)), "TIFF")
    with pytest.raises(
        ImageError, match=r"a TIFF image \(not supported\).*Upload a PNG, JPEG, GIF, BMP or WebP"
    ):
        decode.decode_image(tiff)


def test_rejects_truncated_and_corrupt_images() -> None:
    photo = encode(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    with pytest.raises(ImageError, match=r"The PNG data is corrupt or truncated.*save it again"):
        decode.decode_image(photo[: len(photo) // 2])
    with pytest.raises(
        ImageError, match=r"The PNG data is corrupt or truncated \(30 bytes, header unreadable\)"
    ):
        decode.decode_image(photo[:30])
    with pytest.raises(ImageError, match="The JPEG data is corrupt or truncated"):
        decode.decode_image(b"\xff\xd8\xff" + bytes(40))
