"""The run store's files: per-epoch telemetry snapshots and model checkpoints.

The store holds one `RunArtifacts` (`store.artifacts`) and hands its methods on, so callers write
`store.write_snapshot(...)`. Files live in the run folder, `runs/<run_id>/`, and are indexed in
SQLite: `snapshots/<kind>/epoch_0003.npz` (compressed, floats as float16, bools as uint8,
bounded in size) and checkpoints: `checkpoints/{latest,best}.keras` (whole models with optimizer
state) and `checkpoints/epoch_0003.weights.npz` (layer weights, enough to fork from; not every
epoch keeps them, see `cnnlab.store.retention`). Every file
is written to a temporary name in the same folder and renamed into place, so a reader never sees
half a file.
"""

from __future__ import annotations

import io
import os
import secrets
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeAlias

import numpy as np

from cnnlab.errors import RunError
from cnnlab.store import records
from cnnlab.store.database import Database

MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024  # after conversion to float16 / uint8, before compression

# numpy's array type carries Any for its shape and dtype; the modules checked without explicit Any
# (store, scheduler, reader) name arrays through these aliases.
SnapshotArrays: TypeAlias = dict[str, np.ndarray]
NamedArrays: TypeAlias = Mapping[str, np.ndarray]
OptionalArray: TypeAlias = np.ndarray | None


class RunArtifacts:
    """The files of the runs under `home`: snapshots and checkpoints, indexed in `database`."""

    def __init__(self, home: Path, database: Database) -> None:
        self.home = home
        self.database = database

    def run_folder(self, run_id: str) -> Path:
        """The folder holding the run's checkpoints and snapshots (RunError for an id that is not one)."""
        if not run_id or not all(character in records.ID_ALPHABET + "-_" for character in run_id):
            raise RunError(f"A run id is letters, digits, '-' and '_'; got {run_id!r}.")
        return self.home / "runs" / run_id

    def write_snapshot(self, run_id: str, epoch: int, kind: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Store named arrays for one epoch as compressed `.npz` (floats become float16, bools uint8)."""
        if not kind.isidentifier():
            raise RunError(f"A snapshot kind is a plain identifier like 'kernels'; got {kind!r}.")
        converted: dict[str, np.ndarray] = {}
        for name, array in arrays.items():
            array = np.asarray(array)
            if array.dtype.kind == "f":
                array = np.clip(array, -65000, 65000).astype(np.float16)
            elif array.dtype.kind == "b":
                array = array.astype(np.uint8)
            converted[name] = array
        size = sum(array.nbytes for array in converted.values())
        if size > MAX_SNAPSHOT_BYTES:
            raise RunError(
                f"Snapshot {kind!r} of epoch {epoch} holds {size} bytes; the limit is {MAX_SNAPSHOT_BYTES}."
            )
        buffer = io.BytesIO()
        # Like np.savez_compressed, at zlib's fastest level: several times faster, nearly as small.
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name, array in converted.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
        path = self.snapshot_path(run_id, epoch, kind)
        self._write_atomically(path, lambda temporary: temporary.write_bytes(buffer.getvalue()))
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                (run_id, epoch, kind, str(path.relative_to(self.home))),
            )
        return path

    def snapshot_path(self, run_id: str, epoch: int, kind: str) -> Path:
        """Where the snapshot of `kind` for `epoch` is written (it may not exist)."""
        return self.run_folder(run_id) / "snapshots" / kind / f"epoch_{epoch:04d}.npz"

    def read_snapshot(self, run_id: str, epoch: int, kind: str) -> dict[str, np.ndarray]:
        """The arrays of one snapshot; RunError if it was not recorded."""
        row = (
            self.database.connection()
            .execute(
                "SELECT path FROM snapshots WHERE run_id = ? AND epoch = ? AND kind = ?",
                (run_id, epoch, kind),
            )
            .fetchone()
        )
        if row is None:
            raise RunError(f"Run {run_id} has no {kind!r} snapshot for epoch {epoch}.")
        with np.load(self.home / row["path"]) as archive:
            return {name: archive[name] for name in archive.files}

    def snapshot_epochs(self, run_id: str, kind: str) -> list[int]:
        """The epochs that have a snapshot of this kind, in order."""
        rows = (
            self.database.connection()
            .execute(
                "SELECT epoch FROM snapshots WHERE run_id = ? AND kind = ? ORDER BY epoch", (run_id, kind)
            )
            .fetchall()
        )
        return [row["epoch"] for row in rows]

    def checkpoint_path(self, run_id: str, which: str | int = "latest") -> Path:
        """Where checkpoint `which` lives (it may not exist yet).

        "latest" and "best" are whole models with their optimizer state (`.keras`); an epoch
        number names that epoch's layer weights alone (`epoch_0003.weights.npz`, arrays named
        `<layer name>/<index>`), enough to fork from.
        """
        if isinstance(which, str) and which.startswith("epoch_") and which[6:].isdigit():
            which = int(which[6:])  # The names `checkpoints()` returns work too.
        if isinstance(which, int) and not isinstance(which, bool):
            return self.run_folder(run_id) / "checkpoints" / f"epoch_{which:04d}.weights.npz"
        if which not in ("latest", "best"):
            raise RunError(f"A checkpoint is 'latest', 'best' or an epoch number; got {which!r}.")
        return self.run_folder(run_id) / "checkpoints" / f"{which}.keras"

    def save_checkpoint(
        self, run_id: str, which: str | int, epoch: int, write: Callable[[Path], object]
    ) -> Path:
        """Write a checkpoint atomically: `write(temporary_path)` (e.g. `model.save`), then rename.

        The temporary path sits in the same folder and ends like the final one (`.keras`,
        `.weights.npz`), as Keras and numpy require.
        """
        path = self.checkpoint_path(run_id, which)
        self._write_atomically(path, write)
        name = which if isinstance(which, str) else f"epoch_{which:04d}"
        with self.database.transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?)",
                (run_id, name, epoch, str(path.relative_to(self.home)), time.time()),
            )
        return path

    def delete_epoch_weights(self, run_id: str, epoch: int) -> None:
        """Forget an epoch's layer weights: its row, then its file (a missing one is no error)."""
        path = self.checkpoint_path(run_id, epoch)
        with self.database.transaction() as connection:
            connection.execute(
                "DELETE FROM checkpoints WHERE run_id = ? AND which = ?", (run_id, f"epoch_{epoch:04d}")
            )
        path.unlink(missing_ok=True)

    def checkpoints(self, run_id: str) -> dict[str, int]:
        """The checkpoints written so far: name ("latest", "best", "epoch_0003") to epoch."""
        rows = (
            self.database.connection()
            .execute("SELECT which, epoch FROM checkpoints WHERE run_id = ? ORDER BY epoch, which", (run_id,))
            .fetchall()
        )
        return {row["which"]: row["epoch"] for row in rows}

    def _write_atomically(self, path: Path, write: Callable[[Path], object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        stem, dot, suffixes = path.name.partition(".")
        temporary = path.with_name(f".{stem}.{os.getpid()}.{secrets.token_hex(3)}.tmp{dot}{suffixes}")
        try:
            write(temporary)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
