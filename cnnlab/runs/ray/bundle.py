"""What a run takes to a cluster node that shares no disk with the server: its rows, its files, its data.

`pack_run` reads from the server's store what the job on the node will read: the run's row, its
epoch metrics, its `latest` and `best` checkpoints (a continue), its pinned probes and, for a
fork, the parent's weights of the epoch it forks from. `unpack_run` writes them into an empty,
node-local store, where the job finds them exactly as a local worker would find them in the
server's store.

A dataset that is a folder or a `.zip` on the server (the user's uploads) travels as `DatasetPayload`:
one archive of its bytes, keyed by its path, size and modification times so the executor ships
it once per dataset (through Ray's object store), not once per run. `materialise_dataset` puts
it on the node's disk once per key. Built-in datasets (digits, shapes, MNIST from the node's
Keras cache) load on the node and need no payload. This module imports neither Ray nor
TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.store import records
from cnnlab.store.run_store import Store

DATASET_CACHE_FOLDER = "cnnlab-ray-datasets"  # under the node's temporary folder


@dataclass(frozen=True)
class RunBundle:
    """A run's rows (table name to column-named rows) and files (path under the home to bytes)."""

    run_id: str
    rows: dict[str, list[dict[str, object]]]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The bytes of its files (the rows are small)."""
        return sum(len(content) for content in self.files.values())


@dataclass(frozen=True)
class DatasetPayload:
    """A folder or `.zip` of the user's images as one archive, with the key it is cached under."""

    key: str
    name: str  # the folder's or the archive's own name, kept on the node
    is_folder: bool
    archive: bytes


def pack_run(store: Store, run_id: str) -> RunBundle:
    """What the node needs of run `run_id`: its rows, checkpoints to continue from, probes, a fork's weights."""
    rows = store.export_run_rows(run_id)  # The `checkpoints` and `snapshots` rows bring their files along.
    for row in rows["runs"]:
        row["control"] = None  # Control requests reach the node through the executor, not this copy.
    files: dict[str, bytes] = {}
    for row in [*rows["checkpoints"], *rows["snapshots"]]:
        path = store.home / str(row["path"])
        if path.is_file():
            files[str(row["path"])] = path.read_bytes()
    run = store.get_run(run_id)
    if run.parent_id is not None and run.parent_epoch:
        parent_weights = store.checkpoint_path(run.parent_id, run.parent_epoch)
        if parent_weights.is_file():
            files[str(parent_weights.relative_to(store.home))] = parent_weights.read_bytes()
    return RunBundle(run_id, rows, files)


def unpack_run(bundle: RunBundle, home: Path, dataset_path: Path | None = None) -> None:
    """Write a bundle into the (new, empty) store at `home`; point the run at `dataset_path` if given."""
    store = Store(home)
    rows = {table: [dict(row) for row in table_rows] for table, table_rows in bundle.rows.items()}
    for values in rows.get("runs", []):
        if dataset_path is not None:
            data_settings = records.from_json(str(values["data_settings"]))
            if isinstance(data_settings, dict):
                data_settings["dataset"] = str(dataset_path)
                values["data_settings"] = records.to_json(data_settings)
    store.import_run_rows(rows)
    store.run_folder(bundle.run_id).mkdir(parents=True, exist_ok=True)
    for relative, content in bundle.files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    store.close()


def dataset_source(dataset: str) -> Path | None:
    """The folder or archive on this machine that `dataset` names, or None for a built-in set."""
    path = Path(dataset).expanduser()
    return path.resolve() if path.is_dir() or path.is_file() else None


def dataset_key(source: Path) -> str:
    """A key that changes when the folder's or archive's files change (path, names, sizes, times)."""
    digest = hashlib.sha256(str(source).encode())
    files = sorted(item for item in source.rglob("*") if item.is_file()) if source.is_dir() else [source]
    for item in files:
        status = item.stat()
        digest.update(f"{item.relative_to(source.parent)}:{status.st_size}:{status.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def pack_dataset(source: Path, key: str | None = None) -> DatasetPayload:
    """The folder (zipped without compression: images are compressed already) or the archive's bytes."""
    key = key or dataset_key(source)
    if source.is_file():
        return DatasetPayload(key, source.name, False, source.read_bytes())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for item in sorted(source.rglob("*")):
            if item.is_file():
                archive.write(item, item.relative_to(source).as_posix())
    return DatasetPayload(key, source.name, True, buffer.getvalue())


def materialise_dataset(payload: DatasetPayload, cache: Path | None = None) -> Path:
    """Put the dataset on this node's disk once per key; return the folder or archive the job loads."""
    cache = cache if cache is not None else Path(tempfile.gettempdir()) / DATASET_CACHE_FOLDER
    target_folder = cache / payload.key
    target = target_folder / payload.name
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    # Several runs may arrive at once: build in a private folder, then rename it into place.
    building = Path(tempfile.mkdtemp(prefix=f".{payload.key}-", dir=cache))
    try:
        if payload.is_folder:
            with zipfile.ZipFile(io.BytesIO(payload.archive)) as archive:
                archive.extractall(building / payload.name)
        else:
            (building / payload.name).write_bytes(payload.archive)
        with contextlib.suppress(OSError):  # Another run renamed its copy first: use that one.
            os.rename(building, target_folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
