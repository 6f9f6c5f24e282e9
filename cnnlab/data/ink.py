"""Finding the ink of a drawn, photographed or screenshotted digit: light ink on a dark background.

`find_ink` takes a grey image whose ink is already light (inverted if it was dark on light) and
returns the ink alone: the uneven background of a photo flattened away, thin straight lines that
span the image (a plot's frame and axes) removed, and only the largest blob of ink kept with the
pieces near it (a "5"'s loose top bar, a broken stroke), never the tick labels or specks of noise.
Its `InkStatistics` say how digit-like the image was: how much of it is ink, how much of the ink
the chosen blob holds, how much of the border is ink, and how cleanly its grey levels split into
ink and background (a photo's textures do not). numpy and scipy.ndimage only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FoundInk", "InkStatistics", "find_ink", "otsu_separation", "otsu_threshold"]

# A line spanning at least this much of the image's width (or height), at most this thick, is a
# frame or an axis; two of them (a box, or axes) are removed. One alone may be a digit's stroke.
LINE_SPAN = 0.8
LINE_THICKNESS = 0.02
# Images at least this large get their background flattened (an opening as wide as a fifth of the
# image removes the strokes and leaves the lighting, which is subtracted).
FLATTEN_FROM = 24
# A blob joins the largest one when it holds this share of its ink and lies near its box.
NEAR_SHARE = 0.08
# Images at least this large on their short side get their grey levels' separation measured. Smaller
# ones are dataset-sized digits (8x8, 28x28) whose intermediate grey levels are antialiasing, not texture.
SEPARATION_FROM = 64


@dataclass(frozen=True)
class InkStatistics:
    """How the ink of an image looked: the figures an out-of-distribution check reads."""

    coverage: float  # share of the image's pixels that are ink (after removing lines)
    chosen_share: float  # share of the ink pixels in the chosen blobs
    border_ink: float  # share of the outermost ring of pixels that is ink (after removing lines)
    blobs: int  # how many separate blobs of ink there were
    lines_removed: int  # how many frame or axis lines were removed
    # How cleanly the grey levels split into ink and background (`otsu_separation`, 1.0 for two pure
    # levels), or None for an image under SEPARATION_FROM pixels, too small to show a texture.
    separation: float | None = None
    # Share of the ink that lies on the outermost ring: high for a speck or a stroke cut from a larger
    # picture, near 0 for a digit even when it touches the edge.
    edge_share: float = 0.0


@dataclass(frozen=True)
class FoundInk:
    """The ink of an image: its values with everything else zero, its box, and statistics."""

    ink: np.ndarray  # (height, width) float32 in [0, 1]: the chosen ink only
    flattened: np.ndarray | None  # the image after flattening its background, when it was flattened
    box: tuple[int, int, int, int] | None  # (top, left, bottom, right), bottom and right exclusive
    statistics: InkStatistics


def otsu_threshold(values: np.ndarray) -> float:
    """The threshold between two groups of values in [0, 1] that maximises the between-group variance."""
    histogram, edges = np.histogram(values, bins=64, range=(0.0, 1.0))
    weights = histogram.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    above = weights.sum() - below
    mean_below = np.cumsum(weights * centres) / np.maximum(below, 1e-9)
    mean_above = (np.sum(weights * centres) - np.cumsum(weights * centres)) / np.maximum(above, 1e-9)
    variance = below * above * (mean_below - mean_above) ** 2
    return float(edges[int(np.argmax(variance)) + 1])


def otsu_separation(values: np.ndarray) -> float:
    """How cleanly values in [0, 1] split into two groups: the between-group variance at Otsu's
    threshold over the total variance (1.0 for two pure levels, lower for a spread of grey levels)."""
    histogram, edges = np.histogram(values, bins=64, range=(0.0, 1.0))
    weights = histogram.astype(np.float64) / max(1, histogram.sum())
    centres = (edges[:-1] + edges[1:]) / 2
    mean = float(np.sum(weights * centres))
    total = float(np.sum(weights * (centres - mean) ** 2))
    if total <= 0:
        return 1.0
    below = np.cumsum(weights)
    partial_mean = np.cumsum(weights * centres)
    between = (mean * below - partial_mean) ** 2 / np.maximum(below * (1 - below), 1e-12)
    return float(min(1.0, between.max() / total))


def _flatten_background(plane: np.ndarray) -> np.ndarray | None:
    """The image minus its background (lighting, paper), or None when the image is small."""
    from scipy import ndimage  # Here, so a page that prepares no image (Evaluate) opens sooner.

    if min(plane.shape) < FLATTEN_FROM:
        return None
    size = max(3, round(min(plane.shape) / 5))
    background = ndimage.grey_opening(plane, size=(size, size))
    background = ndimage.uniform_filter(background, size=size)
    flattened: np.ndarray = np.clip(plane - background, 0.0, 1.0).astype(np.float32)
    return flattened


def _bands(long: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Runs of consecutive True indices at most `limit` long: (start, stop)."""
    bands, start = [], None
    for index, value in enumerate([*long.tolist(), False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            if index - start <= limit:
                bands.append((start, index))
            start = None
    return bands


def _longest_runs(mask: np.ndarray) -> np.ndarray:
    """For each row of a boolean image, the length of its longest run of True."""
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    changes = np.diff(padded, axis=1)
    longest = np.zeros(mask.shape[0], dtype=np.int64)
    for row in np.flatnonzero(mask.any(axis=1)):
        starts = np.flatnonzero(changes[row] == 1)
        stops = np.flatnonzero(changes[row] == -1)
        longest[row] = int((stops - starts).max())
    return longest


def _remove_lines(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The mask without thin lines spanning the image (frames, axes) when there are two or more."""
    height, width = mask.shape
    rows = _bands(_longest_runs(mask) >= LINE_SPAN * width, max(2, round(LINE_THICKNESS * height)))
    columns = _bands(_longest_runs(mask.T) >= LINE_SPAN * height, max(2, round(LINE_THICKNESS * width)))
    if len(rows) + len(columns) < 2:
        return mask, 0
    cleaned = mask.copy()
    for start, stop in rows:
        cleaned[max(0, start - 1) : stop + 1, :] = False
    for start, stop in columns:
        cleaned[:, max(0, start - 1) : stop + 1] = False
    return cleaned, len(rows) + len(columns)


def _choose_blobs(mask: np.ndarray) -> tuple[np.ndarray, int, float]:
    """The largest blob of ink and the sizeable blobs near it; (chosen mask, blob count, share)."""
    from scipy import ndimage  # Here, so a page that prepares no image (Evaluate) opens sooner.

    # Close small gaps first so a stroke broken by noise or lighting stays one blob.
    radius = max(1, round(min(mask.shape) / 60))
    joined = ndimage.binary_dilation(mask, iterations=radius) if min(mask.shape) >= FLATTEN_FROM else mask
    labels, count = ndimage.label(joined, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask, 0, 0.0
    sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    largest = int(np.argmax(sizes)) + 1
    boxes = ndimage.find_objects(labels)
    top, left = boxes[largest - 1][0].start, boxes[largest - 1][1].start
    bottom, right = boxes[largest - 1][0].stop, boxes[largest - 1][1].stop
    reach_rows, reach_columns = (bottom - top) // 2, (right - left) // 2
    chosen = labels == largest
    for label in range(1, count + 1):
        if label == largest or sizes[label - 1] < NEAR_SHARE * sizes[largest - 1]:
            continue
        rows, columns = boxes[label - 1]
        near_rows = rows.start < bottom + reach_rows and rows.stop > top - reach_rows
        near_columns = columns.start < right + reach_columns and columns.stop > left - reach_columns
        if near_rows and near_columns:
            chosen |= labels == label
    chosen &= mask
    return chosen, count, float(chosen.sum() / max(1, mask.sum()))


def find_ink(grey: np.ndarray) -> FoundInk:
    """The ink of a (height, width) grey image in [0, 1] with light ink on a dark background."""
    from scipy import ndimage  # Here, so a page that prepares no image (Evaluate) opens sooner.

    flattened = _flatten_background(grey)
    plane = grey if flattened is None else flattened
    background = float(np.median(np.concatenate([plane[0], plane[-1], plane[:, 0], plane[:, -1]])))
    # The brightest ink, with single noisy pixels filtered out (a percentile would miss a tiny digit).
    peak = float(ndimage.median_filter(plane, size=3).max()) if plane.size >= 400 else float(plane.max())
    if peak - background < 0.05:
        empty = InkStatistics(coverage=0.0, chosen_share=0.0, border_ink=0.0, blobs=0, lines_removed=0)
        return FoundInk(ink=np.zeros_like(grey), flattened=flattened, box=None, statistics=empty)
    scaled = np.clip((plane - background) / (peak - background), 0.0, 1.0)
    threshold = min(0.5, max(0.2, otsu_threshold(scaled)))
    mask, lines = _remove_lines(scaled > threshold)
    chosen, blobs, share = _choose_blobs(mask)
    ring = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    statistics = InkStatistics(
        coverage=float(mask.mean()),
        chosen_share=share,
        border_ink=float(ring.mean()),
        blobs=blobs,
        lines_removed=lines,
        separation=otsu_separation(scaled) if min(scaled.shape) >= SEPARATION_FROM else None,
        edge_share=float(ring.sum() / max(1, mask.sum())),
    )
    if not chosen.any():
        return FoundInk(ink=np.zeros_like(grey), flattened=flattened, box=None, statistics=statistics)
    # Keep the faint antialiased edge of the chosen strokes, not only the pixels above the threshold.
    region = ndimage.binary_dilation(chosen, iterations=1)
    ink = np.where(region, scaled, 0.0).astype(np.float32)
    rows, columns = np.flatnonzero(chosen.any(axis=1)), np.flatnonzero(chosen.any(axis=0))
    box = (int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1)
    return FoundInk(ink=ink, flattened=flattened, box=box, statistics=statistics)
