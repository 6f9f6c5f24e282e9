"""When to say "this does not look like what the model knows": thresholds measured on held-out data.

Two measurements, both made once per checkpoint on the run's own data:

- the confidence threshold: the top probability below which the model is unsure. It is the 2nd
  percentile of the top probability over the held-out images the model got right (clipped to
  [0.4, 0.8]: real drawings are answered less surely than the test split), so 98% of right
  answers on the test split are above it;
- the training images' principal components (PCA, up to 32, 90% of the variance): an image the
  components cannot rebuild (its residual is far above the held-out images' 99th percentile) is
  unlike anything the model was trained on, however confident the model is. Images larger than
  `MAX_DIMENSIONS` values (64x64 RGB and up) are averaged over square blocks first (`pooled`), so
  the check works on any dataset's images, not only small ones;
- two signals any dataset has, with limits from the held-out images' own quantiles: the contrast
  (the standard deviation of an image's values over its pixels), below which an image is blank, and the roughness
  (the mean difference between neighbouring pixels), above which it is grainy like noise. Without
  them random noise passed as "glyph_A" at 99.97% on a user's five classes of 64x64 renders
  (issue 23), where the images were too large for the PCA check.

`for_checkpoint` keeps the measurement in a file beside the checkpoint, so it is made once per
checkpoint version; `to_bytes`/`from_bytes` let a downloaded model file carry it. numpy only.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnLabError

__all__ = [
    "Calibration",
    "CalibrationError",
    "calibrate",
    "contrasts",
    "for_checkpoint",
    "kept",
    "pool_for",
    "pooled",
    "residuals",
    "roughness",
    "typical_residual",
]

MAX_COMPONENTS = 32
EXPLAINED_VARIANCE = 0.9
MAX_DIMENSIONS = 4096  # larger images are pooled down to this many values for the PCA check
# How far above the held-out images' 99th percentile a residual is unlike them (benchmarks/flag_rates.py).
# Real handwriting by other writers (MNIST, tests/real_sets.py) prepared for the 8x8 digits reaches 3
# times the held-out percentile (at 1.6, 20-35% of it was flagged); an image whose ink fills the frame
# (salt-and-pepper noise, textures) reaches 4. Photographs prepared to 8x8 overlap the digits here, so
# the ink rules in `cnnlab.trained.prediction` catch them.
RESIDUAL_MARGIN = 3.0
# An image is blank below this share of the held-out images' 1st percentile of contrast, and grainy
# like noise above this multiple of their 99th percentile of roughness. Uniform noise is 5-20 times
# rougher than any held-out digit, shape or render; a blank image has a contrast of about 0.
CONTRAST_MARGIN = 0.3
ROUGHNESS_MARGIN = 1.5
SUFFIX = ".calibration.npz"
METHOD_VERSION = 6  # raise when the measurement changes, so kept calibrations are measured again


class CalibrationError(CnnLabError):
    """A calibration cannot be made or read (no held-out images, or a damaged file)."""


@dataclass(frozen=True)
class Calibration:
    """Thresholds for an unsure or unlike-the-training-data prediction, measured on held-out images."""

    confidence_threshold: float
    residual_threshold: float | None = None  # None when there is no PCA check
    mean: np.ndarray | None = None  # (dimensions,) mean training image
    basis: np.ndarray | None = None  # (components, dimensions) principal components
    measured_on: str = "test"  # the split the thresholds were measured on
    pool: int = 1  # the PCA check averages square blocks of this many pixels a side first
    contrast_threshold: float | None = None  # below it an image is blank; None when not measured
    roughness_threshold: float | None = None  # above it an image is grainy like noise

    def to_bytes(self) -> bytes:
        """The calibration as a small `.npz` file (no pickles)."""
        buffer = io.BytesIO()
        arrays: dict[str, np.ndarray] = {
            "confidence_threshold": np.array(self.confidence_threshold, np.float64),
            "measured_on": np.array(self.measured_on),
        }
        if self.residual_threshold is not None and self.mean is not None and self.basis is not None:
            arrays |= {
                "residual_threshold": np.array(self.residual_threshold, np.float64),
                "mean": self.mean.astype(np.float32),
                "basis": self.basis.astype(np.float32),
                "pool": np.array(self.pool, np.int64),
            }
        if self.contrast_threshold is not None and self.roughness_threshold is not None:
            arrays |= {
                "contrast_threshold": np.array(self.contrast_threshold, np.float64),
                "roughness_threshold": np.array(self.roughness_threshold, np.float64),
            }
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub wants positional arrays
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Calibration:
        """Read `to_bytes`'s output; CalibrationError when it is not one."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                threshold = float(stored["confidence_threshold"])
                measured_on = str(stored["measured_on"])
                contrast, rough = (
                    float(stored[name]) if name in stored else None
                    for name in ("contrast_threshold", "roughness_threshold")
                )
                if "basis" not in stored:
                    return cls(
                        threshold,
                        measured_on=measured_on,
                        contrast_threshold=contrast,
                        roughness_threshold=rough,
                    )
                return cls(
                    threshold,
                    float(stored["residual_threshold"]),
                    np.asarray(stored["mean"], np.float32),
                    np.asarray(stored["basis"], np.float32),
                    measured_on,
                    int(stored["pool"]) if "pool" in stored else 1,
                    contrast,
                    rough,
                )
        except (OSError, ValueError, KeyError) as error:
            raise CalibrationError(
                f"The calibration data is damaged ({error}); it is measured again."
            ) from None


def _flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32).reshape(len(images), -1)


def pool_for(shape: tuple[int, ...]) -> int:
    """The block size that brings an image of `shape` (height, width, channels) to at most
    `MAX_DIMENSIONS` values: 1 for 64x64 grey, 2 for 64x64 RGB, 3 for 96x96 RGB."""
    height, width, channels = (*tuple(shape), 1, 1, 1)[:3]
    pool = 1
    while (height // pool) * (width // pool) * channels > MAX_DIMENSIONS and pool < min(height, width):
        pool += 1
    return pool


def pooled(images: np.ndarray, pool: int) -> np.ndarray:
    """`images` (N, H, W[, C]) averaged over `pool` x `pool` blocks (the rows and columns that do not
    fill a block are left out), flattened to one row per image."""
    array = np.asarray(images, np.float32)
    if pool <= 1 or array.ndim < 3:
        return _flat(array)
    if array.ndim == 3:
        array = array[..., None]
    count, height, width, channels = array.shape
    rows, columns = height // pool, width // pool
    blocks = array[:, : rows * pool, : columns * pool].reshape(count, rows, pool, columns, pool, channels)
    averaged: np.ndarray = blocks.mean(axis=(2, 4)).reshape(count, -1)
    return averaged


def contrasts(images: np.ndarray) -> np.ndarray:
    """Each image's contrast: the standard deviation of each channel's values over the pixels,
    averaged over the channels (0 for a blank image of any one colour)."""
    array = np.asarray(images, np.float32)
    if array.ndim == 3:
        array = array[..., None]
    values: np.ndarray = array.reshape(len(array), -1, array.shape[-1]).std(axis=1).mean(axis=1)
    return values


def roughness(images: np.ndarray) -> np.ndarray:
    """Each image's roughness: the mean absolute difference between horizontally and vertically
    neighbouring pixels (about 0.33 for uniform noise; smooth strokes and shapes far less)."""
    array = np.asarray(images, np.float32)
    if array.ndim == 3:
        array = array[..., None]
    across = np.abs(np.diff(array, axis=2)).reshape(len(array), -1)
    down = np.abs(np.diff(array, axis=1)).reshape(len(array), -1)
    total = across.sum(axis=1) + down.sum(axis=1)
    return np.asarray(total / max(across.shape[1] + down.shape[1], 1), np.float32)


def residuals(calibration: Calibration, images: np.ndarray) -> np.ndarray | None:
    """How far each image is from the training images' principal components; None without a PCA check."""
    if calibration.mean is None or calibration.basis is None:
        return None
    centred = pooled(images, calibration.pool) - calibration.mean
    if centred.shape[1] != calibration.mean.shape[0]:
        return None
    rebuilt = (centred @ calibration.basis.T) @ calibration.basis
    distances: np.ndarray = np.linalg.norm(centred - rebuilt, axis=1)
    return distances


def typical_residual(calibration: Calibration) -> float | None:
    """The residual 99% of the held-out images stay under (the limit without its margin); None
    without a PCA check."""
    if calibration.residual_threshold is None:
        return None
    return calibration.residual_threshold / RESIDUAL_MARGIN


def calibrate(
    probabilities: np.ndarray,
    labels: np.ndarray,
    training_images: np.ndarray,
    held_out_images: np.ndarray,
    measured_on: str = "test",
) -> Calibration:
    """Measure the thresholds from a model's `probabilities` on held-out images with their `labels`,
    and the principal components of `training_images`."""
    if len(labels) == 0:
        raise CalibrationError(
            "There are no held-out images to calibrate on (the run has no test or validation split). "
            "Train with a test or validation fraction above 0."
        )
    full = probabilities if probabilities.shape[-1] > 1 else np.hstack([1 - probabilities, probabilities])
    right = full.argmax(axis=1) == np.asarray(labels)
    confidences = full.max(axis=1)[right] if right.any() else full.max(axis=1)
    threshold = float(np.clip(np.percentile(confidences, 2), 0.4, 0.8))
    contrast = float(np.percentile(contrasts(held_out_images), 1)) * CONTRAST_MARGIN
    rough = float(np.percentile(roughness(held_out_images), 99)) * ROUGHNESS_MARGIN
    pool = pool_for(np.shape(training_images)[1:])
    flat = pooled(training_images, pool)
    if len(flat) < 10:
        return Calibration(
            threshold, measured_on=measured_on, contrast_threshold=contrast, roughness_threshold=rough
        )
    mean = flat.mean(axis=0)
    _, singular, vectors = np.linalg.svd(flat - mean, full_matrices=False)
    explained = np.cumsum(singular**2) / max(float((singular**2).sum()), 1e-12)
    count = min(MAX_COMPONENTS, int(np.searchsorted(explained, EXPLAINED_VARIANCE)) + 1)
    basis = vectors[:count].astype(np.float32)
    calibration = Calibration(threshold, None, mean, basis, measured_on, pool)
    held_out = residuals(calibration, held_out_images)
    assert held_out is not None  # The basis was just made from images of this size.
    limit = float(np.percentile(held_out, 99)) * RESIDUAL_MARGIN
    return Calibration(threshold, limit, mean.astype(np.float32), basis, measured_on, pool, contrast, rough)


def _kept_paths(checkpoint_path: Path) -> tuple[Path, Path, str]:
    path = checkpoint_path.with_name(checkpoint_path.name + SUFFIX)
    version = f"{METHOD_VERSION}:{checkpoint_path.stat().st_mtime_ns}"
    return path, path.with_name(path.name + ".version"), version


def kept(checkpoint_path: Path) -> Calibration | None:
    """The calibration kept beside this version of the checkpoint, or None when it was not measured
    yet (or is damaged, or belongs to an older version of the file); measures nothing."""
    path, marker, version = _kept_paths(checkpoint_path)
    if path.is_file() and marker.is_file() and marker.read_text(encoding="utf-8") == version:
        try:
            return Calibration.from_bytes(path.read_bytes())
        except CalibrationError:
            return None
    return None


def for_checkpoint(checkpoint_path: Path, measure: Callable[[], Calibration]) -> Calibration:
    """The calibration of a checkpoint, measured once per version of its file by calling `measure()`
    and kept beside it."""
    found = kept(checkpoint_path)
    if found is not None:
        return found
    path, marker, version = _kept_paths(checkpoint_path)
    calibration = measure()
    for target, content in ((path, calibration.to_bytes()), (marker, version.encode("utf-8"))):
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".calibration_")
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, target)
    return calibration
