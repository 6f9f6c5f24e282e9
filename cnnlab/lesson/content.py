"""The Learn page's content: the source article's examples, the named kernels and the exercises.

The running example follows the walk-through of `SOURCE_ARTICLE`: a 6x6 "X", a 3x3 vertical-edge
filter and a 4x4 feature map; an "O" and scikit-learn's handwritten digits give other inputs,
and any picture can be turned into a small grid of ink. The arithmetic applied to them is in
`arithmetic`.
"""

from __future__ import annotations

import functools

import numpy as np

from cnnlab import articles
from cnnlab.lesson.arithmetic import LessonError

# The article whose walk-through the page follows, as the learner reads its name.
SOURCE_ARTICLE = articles.cite("001")

# The article's 3x3 patch of the "X" and its result with the vertical-edge filter.
ARTICLE_PATCH = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
ARTICLE_RESULT = 2

KERNELS: dict[str, np.ndarray] = {
    "Vertical edge": np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]]),
    "Horizontal edge": np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]]),
    "Sobel x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "Sobel y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "Blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "Sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "Emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    "Identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
}
KERNEL_NOTES: dict[str, str] = {
    "Vertical edge": "Left column minus right column: large where brightness changes from left to right.",
    "Horizontal edge": "Top row minus bottom row: large where brightness changes from top to bottom.",
    "Sobel x": "A vertical-edge detector that weighs the middle row twice, so it is less noisy.",
    "Sobel y": "A horizontal-edge detector that weighs the middle column twice.",
    "Blur": "A weighted average of the neighbourhood (the weights add up to 1): smooths the image.",
    "Sharpen": "The pixel five times, minus its four neighbours: exaggerates differences.",
    "Emboss": "Dark on one diagonal side, light on the other: makes the image look raised.",
    "Identity": "Only the centre weight is 1: the output copies the input.",
}


def x_image() -> np.ndarray:
    """The running example: a 6x6 picture of the letter "X" (1 = ink, 0 = background)."""
    image = np.zeros((6, 6), dtype=int)
    for index in range(6):
        image[index, index] = image[index, 5 - index] = 1
    return image


def o_image() -> np.ndarray:
    """A 6x6 picture of the letter "O" (1 = ink, 0 = background)."""
    image = np.zeros((6, 6), dtype=int)
    image[0, 1:5] = image[5, 1:5] = image[1:5, 0] = image[1:5, 5] = 1
    return image


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(int), digits.target.astype(int)


def digits_sample(index: int) -> tuple[np.ndarray, int]:
    """Handwritten digit `index` of scikit-learn's 1,797 (8x8, ink 0-16) and its label."""
    images, labels = _digits()
    if not 0 <= index < len(images):
        raise LessonError(f"The digits sample number is 0 to {len(images) - 1}; got {index}.")
    return images[index], int(labels[index])


def image_to_grid(image: np.ndarray, size: int) -> np.ndarray:
    """A (height, width[, channels]) image in [0, 255] as a size x size grid of ink in [0, 1].

    Colour is averaged to grey; a light background is inverted so that ink is 1, like the X;
    values are rounded to two decimals so the written sums stay readable.
    """
    from PIL import Image

    grey = np.asarray(image, dtype=np.float64)
    if grey.ndim == 3:
        grey = grey[:, :, :3].mean(axis=2)
    small = Image.fromarray(grey.astype(np.float32)).resize((size, size), Image.Resampling.BOX)
    grid = np.clip(np.asarray(small, dtype=np.float64) / 255.0, 0.0, 1.0)
    border = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
    if np.median(border) > 0.5:
        grid = 1.0 - grid
    return np.round(grid, 2)


def next_step(step: int, total: int) -> int:
    """The step after `step` when playing: one further, back to the first after the last."""
    return (step + 1) % total if total > 0 else 0


def check_prediction(predicted: tuple[int, int], actual: tuple[int, int]) -> bool:
    """Whether the learner's predicted output (rows, columns) is right."""
    return tuple(int(value) for value in predicted) == tuple(int(value) for value in actual)


POOLING_COMPARISON = {
    "Factors": [
        "What it does",
        "What it preserves",
        "Best used for",
        "Spatial information",
        "When to choose it",
    ],
    "Max pooling": [
        "Keeps only the single highest value in each window",
        "The strongest activation: the clearest sign a filter found something",
        "Classification and detection, where presence matters more than exact position",
        "Discards position within the window",
        "The default in most CNNs for classification",
    ],
    "Average pooling": [
        "Computes the mean of all values in each window",
        "A smoothed summary; strong and weak activations weigh the same",
        "Global average pooling before the output layer",
        "Also discards position, and dilutes the peak",
        "GlobalAveragePooling2D before the Dense output, instead of Flatten",
    ],
}
