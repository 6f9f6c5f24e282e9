"""Preprocessing for a model: an image becomes the array a model trained on a dataset expects.

`prepare_for_model` is the one preprocessing of new images: Predict, Evaluate's uploads, the
command line and uploaded model files all call it. It resizes, converts the colour mode and scales
to [0, 1]. For digit-like data (light ink on a dark background) it prepares the image the way the
training set's images were made: transparency composited on a background that contrasts with the
ink, whatever its colour; inverted when the background is light; the ink found robustly
(`cnnlab.data.ink`: lighting flattened, plot frames and axes ignored, the largest blob kept);
strokes thickened to the training set's width; the box scaled to the training set's margin (the
8x8 digits fill their box, MNIST's sit in a 20x20 box centred by mass in 28x28), centred without
cutting ink; the contrast stretched to the training set's range (a peak of 1.0). Every
intermediate image is returned for display. `to_channels`, `resize_array` and `resize_batch` are
the shared building blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from cnnlab.data.decode import normalise_mode
from cnnlab.data.ink import InkStatistics, find_ink
from cnnlab.errors import ImageError

if TYPE_CHECKING:
    from cnnlab.data.info import DatasetInfo

__all__ = [
    "InkLayout",
    "PreparedImage",
    "ink_layout",
    "prepare_for_model",
    "resize_array",
    "resize_batch",
    "to_channels",
]


@dataclass(frozen=True)
class InkLayout:
    """How a digit-like training set places its ink in the frame."""

    fraction: float  # the longest side of the ink's box as a fraction of the image side
    by_mass: bool  # centred by the ink's centre of mass (MNIST) rather than by its box
    stroke: float  # the typical stroke width as a fraction of the box's longest side (0: keep)


_INK_LAYOUTS: dict[str, InkLayout] = {
    "mnist": InkLayout(20 / 28, True, 0.12),
    "digits": InkLayout(1.0, True, 0.15),
    "fashion_mnist": InkLayout(1.0, False, 0.0),
    "shapes": InkLayout(0.75, False, 0.0),
}
_DEFAULT_INK_LAYOUT = _INK_LAYOUTS["mnist"]


def ink_layout(dataset_name: str) -> InkLayout:
    """The ink layout of a digit-like dataset by name (MNIST's for one not listed)."""
    return _INK_LAYOUTS.get(dataset_name, _DEFAULT_INK_LAYOUT)


@dataclass(frozen=True, kw_only=True)
class PreparedImage:
    """An image prepared for a model, and the intermediate steps that led to it."""

    array: np.ndarray  # (height, width, channels) float32 in [0, 1]; add the batch axis yourself
    steps: tuple[tuple[str, np.ndarray], ...]  # (name, image in [0, 1]) in the order applied
    ink_box: tuple[int, int, int, int] | None = None  # the ink's (top, left, bottom, right) when found
    ink: InkStatistics | None = None  # how the ink looked, for digit-like data
    # For digit-like data, the whole image (light on dark) shrunk to the model's size and stretched to
    # [0, 1] without finding its ink: a digit that fills its frame, as the training digits do, looks
    # like them this way too, however it touches the edges.
    framed: np.ndarray | None = None


def _composite_alpha(array: np.ndarray) -> np.ndarray:
    """An RGBA image on a background that contrasts with its ink: black under light ink, white
    under dark ink (so white ink on a transparent background does not vanish on white)."""
    colour, alpha = array[:, :, :3], array[:, :, 3:4]
    if float(alpha.min()) > 0.99:
        return colour
    border = np.concatenate([alpha[0, :, 0], alpha[-1, :, 0], alpha[:, 0, 0], alpha[:, -1, 0]])
    # The ink is the part that differs from the border: opaque strokes on a transparent background,
    # or (rarely) a transparent cut-out in an opaque image.
    ink = alpha[:, :, 0] if float(np.median(border)) < 0.5 else 1.0 - alpha[:, :, 0]
    weights = ink if float(ink.sum()) > 0 else np.ones_like(ink)
    luma = colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    ink_luma = float((luma * weights).sum() / weights.sum())
    background = 0.0 if ink_luma > 0.5 else 1.0
    composited: np.ndarray = colour * alpha + background * (1.0 - alpha)
    return composited


def _as_float_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An image as a float32 (height, width, channels) array in [0, 1]."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            array = _composite_alpha(np.asarray(image, dtype=np.float32) / 255.0)
        else:
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
            array = _composite_alpha(np.clip(array, 0.0, 1.0))
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


def resize_array(
    array: np.ndarray, height: int, width: int, resampling: Image.Resampling = Image.Resampling.BILINEAR
) -> np.ndarray:
    """Resize one float (height, width, channels) image (antialiased bilinear filtering by default)."""
    if array.shape[0] == height and array.shape[1] == width:
        return array
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[:, :, channel], dtype=np.float32)).resize(
                (width, height), resampling
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


def _stroke_width(ink: np.ndarray) -> float:
    """The strokes' mean width in pixels: twice the area over the outline's length."""
    from scipy import ndimage  # Here, so a page that prepares no image (Evaluate) opens sooner.

    mask = ink > 0.5
    outline = mask & ~ndimage.binary_erosion(mask)
    return 2.0 * float(mask.sum()) / max(1.0, float(outline.sum()))


def _thicken(ink: np.ndarray, box: tuple[int, int, int, int], layout: InkLayout) -> np.ndarray | None:
    """The ink with its strokes widened to the training set's width; None when they are wide enough."""
    from scipy import ndimage  # Here, so a page that prepares no image (Evaluate) opens sooner.

    top, left, bottom, right = box
    target = layout.stroke * max(bottom - top, right - left)
    radius = round((target - _stroke_width(ink[top:bottom, left:right])) / 2)
    if layout.stroke <= 0 or radius < 1:
        return None
    rows, columns = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    disk = rows**2 + columns**2 <= radius**2
    thickened: np.ndarray = ndimage.grey_dilation(ink, footprint=disk).astype(np.float32)
    return thickened


def _box_of(ink: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1


def _place(cropped: np.ndarray, height: int, width: int, layout: InkLayout) -> np.ndarray:
    """The cropped ink scaled into the dataset's box and centred (by mass or box) without cutting it."""
    from scipy import ndimage  # Here, so a page that prepares no image (Evaluate) opens sooner.

    crop_height, crop_width = cropped.shape
    scale = layout.fraction * min(height / crop_height, width / crop_width)
    new_height = max(1, min(height, round(crop_height * scale)))
    new_width = max(1, min(width, round(crop_width * scale)))
    reducing = new_height < crop_height
    resampling = Image.Resampling.BOX if reducing else Image.Resampling.BILINEAR
    scaled = resize_array(cropped[:, :, np.newaxis], new_height, new_width, resampling)[:, :, 0]
    top, left = (height - new_height) // 2, (width - new_width) // 2
    if layout.by_mass and scaled.sum() > 0:
        centre_row, centre_column = ndimage.center_of_mass(scaled)
        # Centre by mass, but never so far that a stroke leaves the frame.
        top = min(max(0, round((height - 1) / 2 - centre_row)), height - new_height)
        left = min(max(0, round((width - 1) / 2 - centre_column)), width - new_width)
    canvas = np.zeros((height, width), dtype=np.float32)
    canvas[top : top + new_height, left : left + new_width] = scaled
    return canvas


def _prepare_digit(
    grey: np.ndarray, height: int, width: int, layout: InkLayout, steps: list[tuple[str, np.ndarray]]
) -> tuple[np.ndarray, tuple[int, int, int, int] | None, InkStatistics]:
    """Light-on-dark grey (h, w, 1) to the model's (height, width) plane; appends its steps."""
    found = find_ink(grey[:, :, 0])
    if found.flattened is not None:
        steps.append(("background flattened", found.flattened[:, :, np.newaxis]))
    if found.box is None:
        return np.zeros((height, width), dtype=np.float32), None, found.statistics
    steps.append(("ink found", found.ink[:, :, np.newaxis]))
    ink = found.ink
    thickened = _thicken(ink, _box_of(ink), layout)
    if thickened is not None:
        ink = thickened
        steps.append(("strokes thickened", ink[:, :, np.newaxis]))
    top, left, bottom, right = _box_of(ink)
    cropped = ink[top:bottom, left:right]
    steps.append(("cropped", cropped[:, :, np.newaxis]))
    centred = _place(cropped, height, width, layout)
    steps.append(("centred", centred[:, :, np.newaxis]))
    peak = float(centred.max())
    if peak > 0:
        centred = np.clip(centred / peak, 0.0, 1.0).astype(np.float32)
    steps.append(("contrast", centred[:, :, np.newaxis]))
    return centred, found.box, found.statistics


def prepare_for_model(image: Image.Image | np.ndarray, dataset_info: DatasetInfo) -> PreparedImage:
    """Preprocess one image exactly like the dataset the model was trained on.

    Resizes to `dataset_info.image_shape`, converts the colour mode and scales to [0, 1]. For
    digit-like data (light ink on a dark background) it also inverts a light background, finds
    the ink (ignoring frames, axes and specks), thickens thin strokes, scales and centres the ink
    the way the dataset `dataset_info.name` does (`ink_layout`) and stretches the contrast to a
    peak of 1.0; `ink_box` and `ink` say where the ink was and how it looked. Every intermediate
    image is returned in `steps` so a page can show what the model sees.
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
    ring = max(1, min(plane.shape) // 50)
    border = np.concatenate(
        [plane[:ring].ravel(), plane[-ring:].ravel(), plane[:, :ring].ravel(), plane[:, -ring:].ravel()]
    )
    if float(np.median(border)) > 0.5:
        grey = (1.0 - grey).astype(np.float32)
        steps.append(("inverted", grey))
    layout = ink_layout(dataset_info.name)
    final, box, statistics = _prepare_digit(grey, height, width, layout, steps)
    result = to_channels(final[:, :, np.newaxis], channels).astype(np.float32)
    if channels != 1:
        steps.append(("rgb", result))
    return PreparedImage(
        array=result, steps=tuple(steps), ink_box=box, ink=statistics, framed=_framed(grey, height, width)
    )


def _framed(grey: np.ndarray, height: int, width: int) -> np.ndarray:
    """The whole light-on-dark grey image averaged down to (height, width, 1) and stretched to [0, 1]."""
    reducing = grey.shape[0] > height or grey.shape[1] > width
    resampling = Image.Resampling.BOX if reducing else Image.Resampling.BILINEAR
    small = resize_array(grey, height, width, resampling)
    low, high = float(small.min()), float(small.max())
    stretched: np.ndarray = ((small - low) / max(high - low, 1e-6)).astype(np.float32)
    return stretched
