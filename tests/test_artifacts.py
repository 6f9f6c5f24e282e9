"""A run's files on their own: `RunArtifacts` over a database, without a `Store` around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnlab.errors import RunError
from cnnlab.store.artifacts import MAX_SNAPSHOT_BYTES, RunArtifacts
from cnnlab.store.database import Database
from cnnlab.store.run_store import Store

RUN_ID = "0abc"


def _add_run(database: Database, run_id: str = RUN_ID) -> None:
    """A bare run row: the files' index rows refer to their run (a foreign key), so the run must exist."""
    with database.transaction() as connection:
        connection.execute(
            "INSERT INTO runs (id, name, owner, status, created_at, spec, data_settings, training_settings) "
            "VALUES (?, 'files', 'local', 'completed', 0, '{}', '{}', '{}')",
            (run_id,),
        )


@pytest.fixture
def artifacts(tmp_path: Path) -> RunArtifacts:
    home = tmp_path / "home"
    home.mkdir()
    database = Database(home / "runs.sqlite3")
    _add_run(database)
    return RunArtifacts(home, database)


def test_files_keep_the_layout_under_the_home_folder(artifacts: RunArtifacts) -> None:
    home = artifacts.home
    assert artifacts.run_folder("0abc") == home / "runs" / "0abc"
    assert (
        artifacts.snapshot_path("0abc", 3, "kernels") == home / "runs/0abc/snapshots/kernels/epoch_0003.npz"
    )
    assert artifacts.checkpoint_path("0abc") == home / "runs/0abc/checkpoints/latest.keras"
    assert artifacts.checkpoint_path("0abc", "best") == home / "runs/0abc/checkpoints/best.keras"
    assert artifacts.checkpoint_path("0abc", 12) == home / "runs/0abc/checkpoints/epoch_0012.weights.npz"


@pytest.mark.parametrize("run_id", ["", "../escape", "a/b", "ab cd"])
def test_a_run_id_cannot_leave_the_runs_folder(artifacts: RunArtifacts, run_id: str) -> None:
    with pytest.raises(RunError, match="A run id is letters, digits"):
        artifacts.run_folder(run_id)


def test_snapshots_round_trip_small_and_refuse_huge_ones(artifacts: RunArtifacts) -> None:
    weights = np.linspace(-1, 1, 24, dtype=np.float64).reshape(2, 3, 4)
    path = artifacts.write_snapshot("0abc", 2, "kernels", {"conv": weights, "alive": np.array([True])})
    assert path.exists()
    read = artifacts.read_snapshot("0abc", 2, "kernels")
    np.testing.assert_allclose(read["conv"], weights, atol=1e-3)
    assert read["alive"].tolist() == [1]
    assert artifacts.snapshot_epochs("0abc", "kernels") == [2]
    too_many = MAX_SNAPSHOT_BYTES // 2 + 1  # float16 halves float32, so this is just over the limit.
    with pytest.raises(RunError, match=f"the limit is {MAX_SNAPSHOT_BYTES}"):
        artifacts.write_snapshot("0abc", 3, "huge", {"x": np.zeros(too_many, np.float32)})
    assert artifacts.snapshot_epochs("0abc", "huge") == []


def test_a_failed_checkpoint_write_leaves_the_previous_file(artifacts: RunArtifacts) -> None:
    artifacts.save_checkpoint("0abc", "best", 1, lambda path: path.write_text("epoch 1"))

    def crash(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        artifacts.save_checkpoint("0abc", "best", 2, crash)
    assert artifacts.checkpoint_path("0abc", "best").read_text() == "epoch 1"
    assert artifacts.checkpoints("0abc") == {"best": 1}


def test_the_store_hands_its_file_methods_to_its_artifacts(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    assert isinstance(store.artifacts, RunArtifacts) and store.artifacts.database is store.database
    _add_run(store.database)
    store.artifacts.save_checkpoint("0abc", 4, 4, lambda path: path.write_bytes(b"w"))
    assert store.checkpoints("0abc") == {"epoch_0004": 4}
    assert store.checkpoint_path("0abc", "epoch_0004") == store.artifacts.checkpoint_path("0abc", 4)
    # A second store over the same home (another process, a restarted server) sees the same files.
    assert Store(tmp_path / "home").checkpoints("0abc") == {"epoch_0004": 4}
