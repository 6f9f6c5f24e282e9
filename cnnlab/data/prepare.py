"""Preprocessing for a model: an image becomes the array a model trained on a dataset expects.

`prepare_for_model` resizes, converts the colour mode and scales to [0, 1]; for digit-like data
(light ink on a dark background) it also inverts a light background, stretches the contrast and
crops and centres the ink the way the dataset does, returning every intermediate step for
display. `to_channels`, `resize_array` and `resize_batch` are the shared building blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from cnnlab.data.decode import normalise_mode
from cnnlab.errors import ImageError

if TYPE_CHECKING:
    from cnnlab.data.info import DatasetInfo

__all__ = ["PreparedImage", "prepare_for_model", "resize_array", "resize_batch", "to_channels"]

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


@dataclass(frozen=True, kw_only=True)
class PreparedImage:
    """An image prepared for a model, and the intermediate steps that led to it."""

    array: np.ndarray  # (height, width, channels) float32 in [0, 1]; add the batch axis yourself
    steps: tuple[tuple[str, np.ndarray], ...]  # (name, image in [0, 1]) in the order applied


def _as_float_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An image as a float32 (height, width, channels) array in [0, 1]."""
    if isinstance(image, Image.Image):
        array = np.asarray(normalise_mode(image), dtype=np.float32) / 255.0
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
    clipped: np.ndarray = np.clip(array, 0.0, 1.0).astype(np.float32)
    return clipped


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
    resized: np.ndarray = np.clip(np.stack(planes, axis=-1), 0.0, 1.0).astype(np.float32)
    return resized


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
        return PreparedImage(array=resized, steps=tuple(steps))

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
    return PreparedImage(array=result, steps=tuple(steps))
