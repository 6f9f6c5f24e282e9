"""Probe images pinned on the Predict page, shown live on the Train page by the runs started after.

The pins are server-wide and live in the store's home as one small file, `probes.npz`, written
to a temporary name and renamed into place so a reader never sees half a file. Each probe is the
prepared image the model saw, float32 (height, width, channels) in [0, 1]. A new run gets them as
its `probes` snapshot (epoch 0, `{"images": ...}`), converted to the run's input shape, which
`cnnlab.runs.worker.training` hands to `cnnlab.runs.worker.telemetry`. This module imports neither TensorFlow nor streamlit.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data import prepare
from cnnlab.errors import CnnLabError
from cnnlab.store.reader import RunReader

MAX_PROBES = 4  # `cnnlab.runs.worker.telemetry.MAX_PROBES`: telemetry follows at most this many.
FILE_NAME = "probes.npz"
_LOCK = threading.Lock()
logger = logging.getLogger(__name__)


class ProbeError(CnnLabError):
    """A probe cannot be pinned or removed as asked."""


def probes_path(store: RunReader) -> Path:
    """Where the pinned probes of this store live."""
    return store.home / FILE_NAME


def unreadable(store: RunReader) -> str | None:
    """Why the pinned probes file cannot be read (what to do included), or None when it reads or is absent."""
    path = probes_path(store)
    if not path.exists():
        return None
    try:
        _read(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        return (
            f"The pinned probes file {path} cannot be read ({type(error).__name__}: {error}), so new runs "
            "follow no probes. Pin an image again on the Predict page to replace it."
        )
    return None


def _read(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        names = sorted(archive.files, key=lambda name: int(name.rsplit("_", 1)[-1]))
        return [archive[name].astype(np.float32) for name in names]


def pinned(store: RunReader) -> list[np.ndarray]:
    """The pinned probes, oldest first; an empty list when none are pinned.

    An unreadable file also gives an empty list (a damaged pin must not stop a run from starting),
    but not silently: a warning is logged, and `unreadable(store)` says why for a page to show.
    """
    path = probes_path(store)
    if not path.exists():
        return []
    try:
        return _read(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        logger.warning("The pinned probes file %s cannot be read (%s); no probes are followed.", path, error)
        return []


def _write(store: RunReader, probes: Sequence[np.ndarray]) -> None:
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {f"probe_{index}": probe for index, probe in enumerate(probes)}
    np.savez_compressed(buffer, **arrays)
    path = probes_path(store)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(3)}.tmp.npz")
    try:
        temporary.write_bytes(buffer.getvalue())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _checked(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if (
        array.ndim != 3
        or array.shape[2] not in (1, 3)
        or min(array.shape[:2]) < 1
        or max(array.shape[:2]) > 512
    ):
        raise ProbeError(
            f"A probe is one prepared image (height, width, 1 or 3 channels, at most 512 pixels a side); "
            f"got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ProbeError("A probe image must have finite pixel values; got NaN or infinity.")
    return np.clip(array, 0.0, 1.0)


def pin(store: RunReader, image: np.ndarray) -> int:
    """Pin one prepared image as a probe; returns how many are pinned. ProbeError when full."""
    probe = _checked(image)
    with _LOCK:
        current = pinned(store)
        if any(
            existing.shape == probe.shape and np.allclose(existing, probe, atol=1e-3) for existing in current
        ):
            return len(current)
        if len(current) >= MAX_PROBES:
            raise ProbeError(
                f"{len(current)} probes are pinned already, the most a run follows is {MAX_PROBES}. "
                "Unpin one first."
            )
        _write(store, [*current, probe])
        return len(current) + 1


def unpin(store: RunReader, index: int) -> None:
    """Remove the probe at position `index` (0 is the oldest)."""
    with _LOCK:
        current = pinned(store)
        if not 0 <= index < len(current):
            raise ProbeError(f"There is no pinned probe {index + 1}; {len(current)} are pinned.")
        remaining = current[:index] + current[index + 1 :]
        if remaining:
            _write(store, remaining)
        else:
            probes_path(store).unlink(missing_ok=True)


def for_input_shape(store: RunReader, input_shape: Sequence[int]) -> np.ndarray | None:
    """The pinned probes converted to a model's (height, width, channels) input, or None when none are pinned."""
    height, width, channels = (int(size) for size in input_shape)
    current = pinned(store)
    if not current:
        return None
    converted = [
        prepare.resize_array(prepare.to_channels(probe, channels), height, width) for probe in current
    ]
    return np.stack(converted).astype(np.float32)
