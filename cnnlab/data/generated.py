"""A generated dataset of geometric shapes: circles, squares, triangles, stars and crosses.

Every image is drawn from a seed, so the same settings always give the same pixels. Shapes have
sharp straight and curved edges at many angles, which makes the edge detectors a first
convolutional layer learns easy to see.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from cnnlab.errors import DatasetError

SHAPE_NAMES = ("circle", "square", "triangle", "star", "cross", "diamond", "ring", "hexagon")
DEFAULT_CLASSES = ("circle", "square", "triangle", "star", "cross")
DEFAULT_IMAGE_SIZE = 32
MINIMUM_IMAGE_SIZE = 16
MAXIMUM_IMAGE_SIZE = 64
DEFAULT_OPTIONS: dict[str, Any] = {
    "count_per_class": 200,
    "noise": 0.05,  # standard deviation of Gaussian pixel noise, in [0, 0.5]
    "rotation": 45.0,  # the largest random rotation, in degrees (0 keeps shapes upright)
    "scale": (0.5, 0.9),  # the shape's diameter as a fraction of the image side (min, max)
    "classes": DEFAULT_CLASSES,
}
_SUPERSAMPLING = 4


def _polygon(name: str) -> list[tuple[float, float]]:
    """The unit-radius outline of a polygonal shape, centred on the origin, pointing up."""
    if name == "square":
        return [(math.cos(angle), math.sin(angle)) for angle in np.deg2rad([45, 135, 225, 315])]
    if name == "diamond":
        return [(0.6, 0.0), (0.0, 1.0), (-0.6, 0.0), (0.0, -1.0)]
    if name == "triangle":
        return [(math.cos(angle), math.sin(angle)) for angle in np.deg2rad([-90, 30, 150])]
    if name == "hexagon":
        return [(math.cos(angle), math.sin(angle)) for angle in np.deg2rad(np.arange(0, 360, 60))]
    if name == "star":
        points = []
        for index in range(10):
            radius = 1.0 if index % 2 == 0 else 0.42
            angle = math.radians(-90 + 36 * index)
            points.append((radius * math.cos(angle), radius * math.sin(angle)))
        return points
    if name == "cross":
        arm = 1 / 3
        return [
            (-arm, -1),
            (arm, -1),
            (arm, -arm),
            (1, -arm),
            (1, arm),
            (arm, arm),
            (arm, 1),
            (-arm, 1),
            (-arm, arm),
            (-1, arm),
            (-1, -arm),
            (-arm, -arm),
        ]
    raise AssertionError(f"no polygon for {name}")


def _draw_one(
    name: str, size: int, rng: np.random.Generator, options: Mapping[str, Any], colour: bool
) -> np.ndarray:
    """Draw one anti-aliased shape and return it as a float (size, size, channels) array."""
    canvas_size = size * _SUPERSAMPLING
    minimum_scale, maximum_scale = options["scale"]
    radius = 0.5 * canvas_size * rng.uniform(minimum_scale, maximum_scale)
    margin = canvas_size / 2 - radius
    centre_x = canvas_size / 2 + rng.uniform(-margin, margin)
    centre_y = canvas_size / 2 + rng.uniform(-margin, margin)
    angle = math.radians(rng.uniform(-options["rotation"], options["rotation"]))
    background: int | tuple[int, ...]
    foreground: int | tuple[int, ...]
    if colour:
        background = tuple(int(value) for value in rng.integers(0, 110, size=3))
        foreground = tuple(int(value) for value in rng.integers(150, 256, size=3))
        image = Image.new("RGB", (canvas_size, canvas_size), background)
    else:
        background = int(rng.integers(0, 70))
        foreground = int(rng.integers(170, 256))
        image = Image.new("L", (canvas_size, canvas_size), background)
    draw = ImageDraw.Draw(image)
    if name in ("circle", "ring"):
        box = (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius)
        if name == "circle":
            draw.ellipse(box, fill=foreground)
        else:
            draw.ellipse(box, outline=foreground, width=max(1, round(radius * 0.3)))
    else:
        cosine, sine = math.cos(angle), math.sin(angle)
        points = [
            (centre_x + radius * (x * cosine - y * sine), centre_y + radius * (x * sine + y * cosine))
            for x, y in _polygon(name)
        ]
        draw.polygon(points, fill=foreground)
    small = image.resize((size, size), Image.Resampling.BOX)
    array = np.asarray(small, dtype=np.float32) / 255.0
    return array if colour else array[:, :, np.newaxis]


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The shapes options with defaults filled in, or DatasetError naming the bad option."""
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise DatasetError(
            f"Unknown option(s) {sorted(unknown)} for the shapes dataset; "
            f"the options are {sorted(DEFAULT_OPTIONS)}."
        )
    merged = {**DEFAULT_OPTIONS, **options}
    count = merged["count_per_class"]
    if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= 5000:
        raise DatasetError(f"shapes option count_per_class must be an integer from 2 to 5000; got {count!r}.")
    noise = merged["noise"]
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0.0 <= noise <= 0.5:
        raise DatasetError(f"shapes option noise must be a number from 0 to 0.5; got {noise!r}.")
    rotation = merged["rotation"]
    if isinstance(rotation, bool) or not isinstance(rotation, int | float) or not 0.0 <= rotation <= 180.0:
        raise DatasetError(
            f"shapes option rotation must be a number of degrees from 0 to 180; got {rotation!r}."
        )
    scale = merged["scale"]
    if isinstance(scale, int | float) and not isinstance(scale, bool):
        scale = (scale, scale)
    if (
        not isinstance(scale, tuple | list)
        or len(scale) != 2
        or not all(isinstance(value, int | float) and not isinstance(value, bool) for value in scale)
        or not 0.2 <= scale[0] <= scale[1] <= 1.0
    ):
        raise DatasetError(
            "shapes option scale must be a number or a pair [minimum, maximum] with "
            f"0.2 <= minimum <= maximum <= 1; got {merged['scale']!r}."
        )
    merged["scale"] = (float(scale[0]), float(scale[1]))
    classes = merged["classes"]
    if isinstance(classes, str) or not isinstance(classes, tuple | list):
        raise DatasetError(f"shapes option classes must be a list of shape names; got {classes!r}.")
    unknown_shapes = [name for name in classes if name not in SHAPE_NAMES]
    if unknown_shapes or len(set(classes)) < 2 or len(set(classes)) != len(classes):
        raise DatasetError(
            f"shapes option classes must name at least 2 different shapes from {', '.join(SHAPE_NAMES)}; "
            f"got {list(classes)!r}."
        )
    merged["classes"] = tuple(classes)
    return merged


def generate(
    options: Mapping[str, Any],
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    colour: bool = False,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Draw the dataset: (images float32 NHWC in [0, 1], int64 labels, class names).

    The same options, size, colour and seed always give the same images.
    """
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not (MINIMUM_IMAGE_SIZE <= image_size <= MAXIMUM_IMAGE_SIZE)
    ):
        raise DatasetError(
            f"The shapes dataset is drawn at {MINIMUM_IMAGE_SIZE} to {MAXIMUM_IMAGE_SIZE} pixels; "
            f"got image_size={image_size!r}. Choose a size in that range."
        )
    settings = check_options(options)
    classes: tuple[str, ...] = settings["classes"]
    count = settings["count_per_class"]
    rng = np.random.default_rng(seed)
    channels = 3 if colour else 1
    images = np.empty((count * len(classes), image_size, image_size, channels), dtype=np.float32)
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), count)
    for class_index, name in enumerate(classes):
        for item in range(count):
            images[class_index * count + item] = _draw_one(name, image_size, rng, settings, colour)
        if progress is not None:
            progress((class_index + 1) / len(classes), f"Drew {count} {name}s")
    if settings["noise"] > 0:
        images += rng.normal(0.0, settings["noise"], size=images.shape).astype(np.float32)
        np.clip(images, 0.0, 1.0, out=images)
    return images, labels, classes
