"""The arithmetic of the Learn page: convolution step by step, stride, padding, ReLU, pooling and
receptive fields.

Pure numpy, nothing drawn. Convolution here means what CNNs (and Keras' Conv2D) compute:
cross-correlation, the kernel slid over the image without flipping it. Padding follows Keras:
'valid' adds nothing and drops windows that would run off the edge (the output size is rounded
down); 'same' makes the output ceil(W / S) and pads the zeros it needs, the odd one at the
bottom and right. The pictures, kernels and tables the lesson applies this to are in `content`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.errors import CnnLabError

PADDINGS = ("valid", "same")


class LessonError(CnnLabError):
    """A lesson setting cannot be used (kernel larger than the image, bad stride or padding)."""


@dataclass(frozen=True)
class Padding:
    """Zeros added on each side of the image."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


def _check(size: int, kernel: int, stride: int, padding: str) -> None:
    if padding not in PADDINGS:
        raise LessonError(f"Padding is 'valid' or 'same'; got {padding!r}.")
    if stride < 1:
        raise LessonError(f"The stride is at least 1; got {stride}.")
    if kernel < 1:
        raise LessonError(f"The kernel is at least 1x1; got size {kernel}.")
    if padding == "valid" and kernel > size:
        raise LessonError(
            f"A {kernel}x{kernel} kernel does not fit in a {size}-pixel side with padding='valid'. "
            "Use padding='same' or a smaller kernel."
        )


def _pad_total(size: int, kernel: int, stride: int, padding: str) -> int:
    """Keras' total padding on one axis."""
    if padding == "valid":
        return 0
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


def padding_amounts(
    shape: tuple[int, int], kernel_shape: tuple[int, int], stride: int, padding: str
) -> Padding:
    """The zeros Keras adds around an image of `shape` for this kernel, stride and padding."""
    for size, kernel in zip(shape, kernel_shape, strict=True):
        _check(size, kernel, stride, padding)
    rows = _pad_total(shape[0], kernel_shape[0], stride, padding)
    columns = _pad_total(shape[1], kernel_shape[1], stride, padding)
    return Padding(rows // 2, rows - rows // 2, columns // 2, columns - columns // 2)


def pad(image: np.ndarray, padding: Padding) -> np.ndarray:
    """The image with its zero border."""
    return np.pad(image, ((padding.top, padding.bottom), (padding.left, padding.right)))


@dataclass(frozen=True)
class OutputSize:
    """The output-size formula (W - F + 2P) / S + 1 on one axis, with its real numbers."""

    size: int  # what Keras produces
    exact: float  # the formula before rounding
    whole: bool
    pad_before: int
    pad_after: int
    text: str  # the formula with the numbers filled in, and what Keras does with a fraction

    @property
    def pad_total(self) -> int:
        """Zeros added on both sides together (the formula's 2P)."""
        return self.pad_before + self.pad_after


def format_number(value: float) -> str:
    """A number as written in the lesson: integers plainly, others with up to four decimals."""
    text = f"{float(value):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def output_size(size: int, kernel: int, stride: int, padding: str) -> OutputSize:
    """Apply (W - F + 2P) / S + 1 to one axis and say what Keras does when it is not whole."""
    _check(size, kernel, stride, padding)
    total = _pad_total(size, kernel, stride, padding)
    before, after = total // 2, total - total // 2
    exact = (size - kernel + total) / stride + 1
    result = (size - kernel + total) // stride + 1
    two_p = f"2×{before}" if before == after else f"({before} + {after})"
    text = f"({size} − {kernel} + {two_p}) / {stride} + 1 = {format_number(exact)}"
    whole = (size - kernel + total) % stride == 0
    if not whole:
        unread = size + total - ((result - 1) * stride + kernel)
        text += (
            f", not a whole number: Keras rounds down (floor) to {result}. The window cannot take another "
            f"full step, so the last {unread} row(s)/column(s) are never read"
        )
    if padding == "same":
        text += f". With padding='same' Keras aims for ceil({size} / {stride}) = {math.ceil(size / stride)}"
        text += (
            f" and adds {total} zero(s): {before} before, {after} after" if total else " and adds no zeros"
        )
    text += "."
    return OutputSize(result, exact, whole, before, after, text)


@dataclass(frozen=True)
class Step:
    """One position of the window: where it is, what it multiplies, and the number it writes."""

    index: int
    row: int  # output cell
    column: int
    top: int  # window's top-left corner in padded coordinates
    left: int
    window: np.ndarray  # the pixels under the kernel (padding zeros included)
    products: np.ndarray
    total: float
    lines: tuple[str, ...]  # the written multiply-and-add, one kernel row per line, then the results

    @property
    def text(self) -> str:
        """The whole multiply-and-add on one line, as in the article."""
        return " + ".join(self.lines[: self.window.shape[0]]) + f" = {format_number(self.total)}"


def written_sum(window: np.ndarray, kernel: np.ndarray) -> tuple[str, ...]:
    """The article's written dot product: a line of "(pixel×weight)" terms per kernel row,
    then the products added, then the result."""
    lines = [
        " + ".join(
            f"({format_number(pixel)}×{format_number(weight)})"
            for pixel, weight in zip(pixels, weights, strict=True)
        )
        for pixels, weights in zip(window, kernel, strict=True)
    ]
    products = (np.asarray(window, dtype=float) * kernel).ravel()
    lines.append("= " + " + ".join(format_number(product) for product in products).replace("+ -", "− "))
    lines.append(f"= {format_number(products.sum())}")
    return tuple(lines)


def output_shape(
    shape: tuple[int, int], kernel_shape: tuple[int, int], stride: int, padding: str
) -> tuple[int, int]:
    """The feature map's (rows, columns)."""
    return (
        output_size(shape[0], kernel_shape[0], stride, padding).size,
        output_size(shape[1], kernel_shape[1], stride, padding).size,
    )


def step_count(shape: tuple[int, int], kernel_shape: tuple[int, int], stride: int, padding: str) -> int:
    """How many positions the window takes (one per output cell)."""
    rows, columns = output_shape(shape, kernel_shape, stride, padding)
    return rows * columns


def convolution_step(image: np.ndarray, kernel: np.ndarray, stride: int, padding: str, index: int) -> Step:
    """Step `index` (row by row, left to right) of sliding `kernel` over `image`."""
    kernel = np.asarray(kernel, dtype=float)
    rows, columns = output_shape(image.shape, kernel.shape, stride, padding)
    if not 0 <= index < rows * columns:
        raise LessonError(f"The step is 0 to {rows * columns - 1}; got {index}.")
    padded = pad(np.asarray(image, dtype=float), padding_amounts(image.shape, kernel.shape, stride, padding))
    row, column = divmod(index, columns)
    top, left = row * stride, column * stride
    window = padded[top : top + kernel.shape[0], left : left + kernel.shape[1]]
    products = window * kernel
    return Step(
        index, row, column, top, left, window, products, float(products.sum()), written_sum(window, kernel)
    )


def convolve(image: np.ndarray, kernel: np.ndarray, stride: int = 1, padding: str = "valid") -> np.ndarray:
    """The whole feature map at once (what every step writes), as floats."""
    kernel = np.asarray(kernel, dtype=float)
    padded = pad(np.asarray(image, dtype=float), padding_amounts(image.shape, kernel.shape, stride, padding))
    windows = sliding_window_view(padded, kernel.shape)[::stride, ::stride]
    feature_map: np.ndarray = np.einsum("ijkl,kl->ij", windows, kernel)
    return feature_map


def convolve_channels(
    inputs: np.ndarray,
    kernels: np.ndarray,
    bias: float,
    stride: int,
    padding: str,
    *,
    sum_channels: bool = True,
) -> np.ndarray:
    """One filter of a Conv2D layer on (height, width, channels) inputs with (F, F, channels) kernels.

    With `sum_channels` this is exactly what the layer computes before its activation: each input
    channel correlated with its own kernel slice, the results added, plus the bias. Without it,
    only the first channel and its slice (no bias): one readable piece of that sum.
    """
    if not sum_channels:
        return convolve(inputs[:, :, 0], kernels[:, :, 0], stride, padding)
    total = sum(
        convolve(inputs[:, :, channel], kernels[:, :, channel], stride, padding)
        for channel in range(inputs.shape[2])
    )
    return np.asarray(total) + bias


def relu(feature_map: np.ndarray) -> np.ndarray:
    """ReLU, f(x) = max(0, x): negatives become 0, the rest pass through."""
    rectified: np.ndarray = np.maximum(feature_map, 0)
    return rectified


def pool(feature_map: np.ndarray, size: int = 2, mode: str = "max", stride: int | None = None) -> np.ndarray:
    """Max or average pooling with a size x size window (stride defaults to size; 'valid', like Keras)."""
    stride = stride or size
    if mode not in ("max", "average"):
        raise LessonError(f"Pooling is 'max' or 'average'; got {mode!r}.")
    if min(feature_map.shape) < size:
        raise LessonError(
            f"A {size}x{size} pooling window does not fit in a {feature_map.shape} map. Use a smaller one."
        )
    windows = sliding_window_view(np.asarray(feature_map, dtype=float), (size, size))[::stride, ::stride]
    pooled: np.ndarray = windows.max(axis=(2, 3)) if mode == "max" else windows.mean(axis=(2, 3))
    return pooled


@dataclass(frozen=True)
class Box:
    """Rows top..bottom and columns left..right (inclusive) of the input, possibly beyond its edge."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        """Rows covered."""
        return self.bottom - self.top + 1

    @property
    def width(self) -> int:
        """Columns covered."""
        return self.right - self.left + 1

    def clipped(self, shape: tuple[int, int]) -> Box:
        """The part inside an image of `shape` (what the padding zeros leave of it)."""
        return Box(
            max(self.top, 0), max(self.left, 0), min(self.bottom, shape[0] - 1), min(self.right, shape[1] - 1)
        )


@dataclass(frozen=True)
class WindowLayer:
    """A layer that slides a window (convolution or pooling), for receptive fields."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad_before: tuple[int, int]  # (top, left) zeros


def window_layer(
    input_shape: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: str
) -> WindowLayer:
    """A Conv2D or pooling layer for receptive fields, with the zeros Keras pads before its input."""
    before = tuple(
        _pad_total(size, kernel_size, step, padding) // 2
        for size, kernel_size, step in zip(input_shape, kernel, stride, strict=True)
    )
    return WindowLayer(tuple(kernel), tuple(stride), before)  # type: ignore[arg-type]


def receptive_field(layers: Sequence[WindowLayer], row: int, column: int) -> Box:
    """The input pixels that output cell (row, column) of the last of `layers` depends on."""
    top, left, bottom, right = row, column, row, column
    for layer in reversed(layers):
        (kernel_rows, kernel_columns), (stride_rows, stride_columns) = layer.kernel, layer.stride
        pad_top, pad_left = layer.pad_before
        top, bottom = top * stride_rows - pad_top, bottom * stride_rows - pad_top + kernel_rows - 1
        left, right = left * stride_columns - pad_left, right * stride_columns - pad_left + kernel_columns - 1
    return Box(top, left, bottom, right)


def step_receptive_field(step: Step, kernel_shape: tuple[int, int], padding: Padding) -> Box:
    """The input pixels (unpadded coordinates) under the window at `step`."""
    return Box(
        step.top - padding.top,
        step.left - padding.left,
        step.top - padding.top + kernel_shape[0] - 1,
        step.left - padding.left + kernel_shape[1] - 1,
    )
