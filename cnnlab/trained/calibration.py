"""When to say "this does not look like what the model knows": thresholds measured on held-out data.

Two measurements, both made once per checkpoint on the run's own data:

- the confidence threshold: the top probability below which the model is unsure. It is the 2nd
  percentile of the top probability over the held-out images the model got right (clipped to
  [0.4, 0.8]: real drawings are answered less surely than the test split), so 98% of right
  answers on the test split are above it;
- the training images' principal components (PCA, up to 32, 90% of the variance): an image the
  components cannot rebuild (its residual is far above the held-out images' 99th percentile) is
  unlike anything the model was trained on, however confident the model is.

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

__all__ = ["Calibration", "CalibrationError", "calibrate", "for_checkpoint", "kept", "residuals"]

MAX_COMPONENTS = 32
EXPLAINED_VARIANCE = 0.9
MAX_DIMENSIONS = 4096  # larger images get no PCA check (the basis would be too large to carry)
# How far above the held-out images' 99th percentile a residual is unlike them (benchmarks/flag_rates.py).
RESIDUAL_MARGIN = 1.6
SUFFIX = ".calibration.npz"
METHOD_VERSION = 4  # raise when the measurement changes, so kept calibrations are measured again


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
                if "basis" not in stored:
                    return cls(threshold, measured_on=measured_on)
                return cls(
                    threshold,
                    float(stored["residual_threshold"]),
                    np.asarray(stored["mean"], np.float32),
                    np.asarray(stored["basis"], np.float32),
                    measured_on,
                )
        except (OSError, ValueError, KeyError) as error:
            raise CalibrationError(
                f"The calibration data is damaged ({error}); it is measured again."
            ) from None


def _flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32).reshape(len(images), -1)


def residuals(calibration: Calibration, images: np.ndarray) -> np.ndarray | None:
    """How far each image is from the training images' principal components; None without a PCA check."""
    if calibration.mean is None or calibration.basis is None:
        return None
    centred = _flat(images) - calibration.mean
    if centred.shape[1] != calibration.mean.shape[0]:
        return None
    rebuilt = (centred @ calibration.basis.T) @ calibration.basis
    distances: np.ndarray = np.linalg.norm(centred - rebuilt, axis=1)
    return distances


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
    flat = _flat(training_images)
    if flat.shape[1] > MAX_DIMENSIONS or len(flat) < 10:
        return Calibration(threshold, measured_on=measured_on)
    mean = flat.mean(axis=0)
    _, singular, vectors = np.linalg.svd(flat - mean, full_matrices=False)
    explained = np.cumsum(singular**2) / max(float((singular**2).sum()), 1e-12)
    count = min(MAX_COMPONENTS, int(np.searchsorted(explained, EXPLAINED_VARIANCE)) + 1)
    calibration = Calibration(threshold, None, mean, vectors[:count].astype(np.float32), measured_on)
    held_out = residuals(calibration, held_out_images)
    assert held_out is not None  # The basis was just made from images of this size.
    limit = float(np.percentile(held_out, 99)) * RESIDUAL_MARGIN
    return Calibration(threshold, limit, mean.astype(np.float32), calibration.basis, measured_on)


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
