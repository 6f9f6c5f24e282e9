"""The one safe way from untrusted bytes to an image, and the preprocessing that matches a dataset.

`decode_image` caps bytes and pixels before decoding (decompression bombs), applies the EXIF
orientation, flattens palettes, transparency (on white), CMYK and 16-bit images to 8-bit RGB or
L, and keeps the first frame of an animation. `prepare_for_model` turns an image into the array a
model trained on a dataset expects, returning every intermediate step for display.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from cnnlab.errors import ImageError

if TYPE_CHECKING:
    from cnnlab.data.datasets import DatasetInfo

SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # JPEG also opens camera MPO files.
SUPPORTED_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
_WHAT_TO_DO = "Upload a PNG, JPEG, GIF, BMP or WebP image."

# How much of the frame the ink fills in each digit-like dataset (longest side of its bounding
# box as a fraction of the image side), and whether the ink is centred by its centre of mass
# (MNIST's own preprocessing) or by its bounding box.
_INK_LAYOUT: dict[str, tuple[float, bool]] = {
    "mnist": (20 / 28, True),
    "digits": (1.0, True),
    "fashion_mnist": (1.0, False),
    "shapes": (0.75, False),
}
_DEFAULT_INK_LAYOUT = (20 / 28, True)


def _registered_formats() -> list[str]:
    """The supported formats this Pillow build can open (WebP needs libwebp)."""
    Image.init()
    return [name for name in SUPPORTED_FORMATS if name in Image.OPEN]


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"


def _sniff(data: bytes) -> str:
    """A guess at what non-image bytes are, for the error message."""
    head = data[:512].lstrip()
    lowered = head.lower()
    if lowered.startswith(b"<?xml") or b"<svg" in lowered:
        return "an SVG or XML document"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if head.startswith(b"II*\x00") or head.startswith(b"MM\x00*"):
        return "a TIFF image (not supported)"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "text"


_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}


def _claimed_format(data: bytes) -> str | None:
    """The supported format the first bytes announce, if any."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for signature, name in _SIGNATURES.items() if data.startswith(signature)), None)


def _is_svg(data: bytes) -> bool:
    lowered = data[:2048].lstrip().lower()
    return (
        lowered.startswith(b"<svg")
        or (lowered.startswith(b"<?xml") and b"<svg" in lowered)
        or (lowered.startswith(b"<!doctype svg"))
    )


def _to_eight_bit(image: Image.Image) -> Image.Image:
    """Scale a 16- or 32-bit single-channel image ("I", "I;16", "F") to 8-bit "L"."""
    values = np.asarray(image).astype(np.float64)
    maximum = float(values.max()) if values.size else 0.0
    minimum = float(values.min()) if values.size else 0.0
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif image.mode == "I" and minimum >= 0 and maximum <= 65535:
        scaled = values / 257.0 if maximum > 255 else values
    elif image.mode == "F" and minimum >= 0 and maximum <= 1.0:
        scaled = values * 255.0
    else:
        span = maximum - minimum
        scaled = (values - minimum) * (255.0 / span) if span > 0 else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _flatten_on_white(image: Image.Image) -> Image.Image:
    """Composite an image with an alpha channel onto a white background."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _normalise_mode(image: Image.Image) -> Image.Image:
    """Convert any decoded mode to "L" (grey) or "RGB"."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _to_eight_bit(image)
    if mode == "LA" or mode == "La":
        return _flatten_on_white(image).convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        return _flatten_on_white(image) if has_alpha else image.convert("RGB")
    if mode in ("RGBA", "RGBa"):
        return _flatten_on_white(image)
    return image.convert("RGB")


def _too_many_pixels(error: Exception, max_pixels: int) -> ImageError:
    """The message for Pillow's own decompression-bomb guard, with the pixel count it found."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    count = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return ImageError(
        f"The image has {count}, too many to decode safely (the limit is {max_pixels:,} pixels). "
        "Resize it to a few thousand pixels per side and upload it again."
    )


def decode_image(
    data: bytes,
    *,
    max_bytes: int = 20_000_000,
    max_pixels: int = 40_000_000,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode untrusted image bytes into a safe 8-bit "RGB" or "L" image.

    The byte count is checked before decoding and the pixel count from the header before any
    pixel is decoded. The EXIF orientation is applied, transparency is composited on white,
    palettes, CMYK and 16-bit images are converted, and only the first frame of an animation is
    kept. `draft_size` lets JPEG decoding skip detail beyond that size (faster for photos that
    are shrunk afterwards). Raises ImageError with a message saying what was wrong and what to do.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(
            f"Expected the image file's bytes; got {type(data).__name__}. Read the file in binary mode."
        )
    data = bytes(data)
    if not data:
        raise ImageError(f"The file is empty (0 bytes). {_WHAT_TO_DO}")
    if len(data) > max_bytes:
        raise ImageError(
            f"The image file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}. "
            "Resize or compress it, then upload it again."
        )
    if _is_svg(data):
        raise ImageError(
            "SVG vector images are not supported; got an SVG document. "
            "Export it as PNG (any drawing program or browser can) and upload that."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_registered_formats())
        except Image.UnidentifiedImageError:
            claimed = _claimed_format(data)
            if claimed is not None:
                raise ImageError(
                    f"The {claimed} data is corrupt or truncated ({len(data):,} bytes, header unreadable). "
                    "Open it in an image viewer, save it again, and upload the new file."
                ) from None
            raise ImageError(
                f"The file is not a supported image; it looks like {_sniff(data)} "
                f"({len(data):,} bytes). {_WHAT_TO_DO}"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels(error, max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageError(f"The image header is corrupt ({error}). {_WHAT_TO_DO}") from None
        width, height = image.size
        if width <= 0 or height <= 0 or width * height > max_pixels:
            raise ImageError(
                f"The image is {width:,} x {height:,} pixels ({width * height:,} in all); "
                f"the limit is {max_pixels:,} pixels. Resize it and upload it again."
            )
        try:
            if draft_size is not None and image.format in ("JPEG", "MPO"):
                image.draft("RGB" if image.mode != "L" else "L", draft_size)
            image.seek(0)  # The first frame of an animation.
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels(error, max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
            raise ImageError(
                f"The {image.format or 'image'} data is corrupt or truncated ({error}). "
                "Open it in an image viewer, save it again, and upload the new file."
            ) from None
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:
        # A malformed EXIF block must not reject the picture itself.
        oriented = image
    result = _normalise_mode(oriented if oriented is not None else image)
    return result.copy()


@dataclass(frozen=True)
class PreparedImage:
    """An image prepared for a model, and the intermediate steps that led to it."""

    array: np.ndarray  # (height, width, channels) float32 in [0, 1]; add the batch axis yourself
    steps: tuple[tuple[str, np.ndarray], ...]  # (name, image in [0, 1]) in the order applied


def _as_float_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An image as a float32 (height, width, channels) array in [0, 1]."""
    if isinstance(image, Image.Image):
        array = np.asarray(_normalise_mode(image), dtype=np.float32) / 255.0
    elif isinstance(image, np.ndarray):
        array = image
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise ImageError(
                f"Expected an image array of shape (height, width) or (height, width, 1, 3 or 4); "
                f"got shape {array.shape}. Pass a single image."
            )
        if array.size == 0:
            raise ImageError(f"The image array is empty (shape {array.shape}). Pass a non-empty image.")
        if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
            maximum = 255.0 if array.dtype in (np.uint8, np.bool_) or array.max() <= 255 else 65535.0
            array = array.astype(np.float32) / (1.0 if array.dtype == np.bool_ else maximum)
        else:
            array = array.astype(np.float32)
            if not np.all(np.isfinite(array)):
                raise ImageError("The image array contains NaN or infinite values. Pass finite pixel values.")
            if array.max() > 1.0:
                array = array / 255.0
        if array.ndim == 3 and array.shape[2] == 4:
            alpha = array[:, :, 3:4]
            array = array[:, :, :3] * alpha + (1.0 - alpha)
    else:
        raise ImageError(f"Expected a PIL image or a numpy array; got {type(image).__name__}.")
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return np.clip(array, 0.0, 1.0).astype(np.float32)


def to_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """Convert (..., height, width, 1 or 3) images to `channels` (ITU-R 601 luma for grey)."""
    if array.shape[-1] == channels:
        return array
    if channels == 1:
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return (array[..., :3] @ weights)[..., np.newaxis].astype(array.dtype)
    return np.repeat(array, channels, axis=-1)


def resize_array(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize one float (height, width, channels) image with antialiased bilinear filtering."""
    if array.shape[0] == height and array.shape[1] == width:
        return array
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[:, :, channel], dtype=np.float32)).resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for channel in range(array.shape[2])
    ]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0).astype(np.float32)


def resize_batch(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float (count, height, width, channels) batch image by image."""
    if images.shape[1] == height and images.shape[2] == width:
        return images
    result = np.empty((images.shape[0], height, width, images.shape[3]), dtype=np.float32)
    for index in range(images.shape[0]):
        result[index] = resize_array(images[index], height, width)
    return result


def _shift(plane: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Shift a 2-D array, filling the uncovered border with zeros (no wrap-around)."""
    shifted = np.zeros_like(plane)
    height, width = plane.shape
    source_rows = slice(max(0, -rows), min(height, height - rows))
    target_rows = slice(max(0, rows), min(height, height + rows))
    source_columns = slice(max(0, -columns), min(width, width - columns))
    target_columns = slice(max(0, columns), min(width, width + columns))
    shifted[target_rows, target_columns] = plane[source_rows, source_columns]
    return shifted


def _centre_ink(grey: np.ndarray, height: int, width: int, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop the ink, scale it into the dataset's box and centre it; return (centred, cropped)."""
    fraction, by_mass = _INK_LAYOUT.get(name, _DEFAULT_INK_LAYOUT)
    plane = grey[:, :, 0]
    ink = plane > 0.2 * float(plane.max()) if plane.max() > 0 else np.zeros_like(plane, dtype=bool)
    if not ink.any():
        return resize_array(grey, height, width), None
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    cropped = grey[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    crop_height, crop_width = cropped.shape[:2]
    scale = fraction * min(height / crop_height, width / crop_width)
    new_height = max(1, min(height, round(crop_height * scale)))
    new_width = max(1, min(width, round(crop_width * scale)))
    scaled = resize_array(cropped, new_height, new_width)[:, :, 0]
    canvas = np.zeros((height, width), dtype=np.float32)
    top = (height - new_height) // 2
    left = (width - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = scaled
    if by_mass and canvas.sum() > 0:
        row_indices, column_indices = np.indices(canvas.shape)
        total = canvas.sum()
        centre_row = float((row_indices * canvas).sum() / total)
        centre_column = float((column_indices * canvas).sum() / total)
        canvas = _shift(canvas, round((height - 1) / 2 - centre_row), round((width - 1) / 2 - centre_column))
    return canvas[:, :, np.newaxis], cropped


def prepare_for_model(image: Image.Image | np.ndarray, dataset_info: DatasetInfo) -> PreparedImage:
    """Preprocess one image exactly like the dataset the model was trained on.

    Resizes to `dataset_info.image_shape`, converts the colour mode and scales to [0, 1]. For
    digit-like data (light ink on a dark background) it also inverts a light background,
    stretches the contrast, crops the ink and centres it the way the dataset does. Every
    intermediate image is returned in `steps` so a page can show what the model sees.
    """
    height, width, channels = (int(size) for size in dataset_info.image_shape)
    decoded = _as_float_array(image)
    steps: list[tuple[str, np.ndarray]] = [("decoded", decoded)]
    if not dataset_info.digit_like:
        converted = to_channels(decoded, channels)
        if converted is not decoded:
            steps.append(("grayscale" if channels == 1 else "rgb", converted))
        resized = resize_array(converted, height, width)
        steps.append(("resized", resized))
        return PreparedImage(resized, tuple(steps))

    grey = to_channels(decoded, 1)
    if grey is not decoded:
        steps.append(("grayscale", grey))
    plane = grey[:, :, 0]
    border = np.concatenate([plane[0, :], plane[-1, :], plane[:, 0], plane[:, -1]])
    if float(np.median(border)) > 0.5:
        grey = 1.0 - grey
        steps.append(("inverted", grey))
    background = float(
        np.median(np.concatenate([grey[0, :, 0], grey[-1, :, 0], grey[:, 0, 0], grey[:, -1, 0]]))
    )
    peak = float(grey.max())
    if peak - background > 0.05 and (background > 0.02 or peak < 0.98):
        grey = np.clip((grey - background) / (peak - background), 0.0, 1.0).astype(np.float32)
        steps.append(("contrast", grey))
    centred, cropped = _centre_ink(grey, height, width, dataset_info.name)
    if cropped is not None:
        steps.append(("cropped", cropped))
    steps.append(("centred", centred))
    result = to_channels(centred, channels).astype(np.float32)
    if channels != 1:
        steps.append(("rgb", result))
    return PreparedImage(result, tuple(steps))
