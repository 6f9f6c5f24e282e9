"""One run's live tables read once for every viewer and only as far as they are new (a real store).

The oracle: after every change a worker can make, what `LiveFrames` holds equals a full read of
the store, though it read only the new rows.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.views import diagnosis
from cnnlab.runs.views.live_frames import Frames, LiveFrames, read_version
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

BATCHES = 7


def running_run(store: Store) -> str:
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=DataSettings(),
            training_settings=TrainingSettings(epochs=5),
            name="followed",
        )
    )
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    return run.id


def train_epoch(store: Store, run_id: str, epoch: int, batches: range = range(BATCHES)) -> None:
    """What a worker records for (part of) an epoch: batch rows, then the epoch row and a checkpoint."""
    for batch in batches:
        step = (epoch - 1) * BATCHES + batch
        row = {"epoch": epoch, "batch": batch, "step": step, "loss": 2.0 / (step + 1), "accuracy": step / 100}
        store.add_batch_metrics(run_id, [{**row, "learning_rate": 0.01, "time": float(step)}])
    if batches.stop == BATCHES:
        end_epoch(store, run_id, epoch)


def end_epoch(store: Store, run_id: str, epoch: int, *, checkpoint: bool = True) -> None:
    store.add_epoch_metrics(run_id, {"epoch": epoch, "loss": 1.0 / epoch, "val_loss": 1.1 / epoch})
    if checkpoint:
        store.save_checkpoint(run_id, f"epoch_{epoch:04d}", epoch, lambda path: path.write_text("weights"))


def assert_full_read(frames: Frames, store: Store, run_id: str) -> None:
    """The frames equal what reading every table of the run again gives."""
    pd.testing.assert_frame_equal(frames.batches.reset_index(drop=True), store.batch_metrics(run_id))
    pd.testing.assert_frame_equal(frames.epochs, store.epoch_metrics(run_id))
    pd.testing.assert_frame_equal(frames.events, store.events(run_id))
    assert list(frames.diagnoses) == diagnosis.read(store, run_id)
    assert frames.checkpoints == store.checkpoints(run_id)
    assert frames.version == read_version(store, run_id)


def test_incremental_reads_equal_a_full_read_after_every_change(store: Store) -> None:
    run_id = running_run(store)
    live = LiveFrames(store, run_id, min_seconds=0)
    assert_full_read(live.current(), store, run_id)
    train_epoch(store, run_id, 1, range(3))  # part of an epoch
    assert_full_read(live.current(), store, run_id)
    train_epoch(store, run_id, 1, range(3, BATCHES - 1))  # more batches
    assert_full_read(live.current(), store, run_id)
    train_epoch(store, run_id, 1, range(BATCHES - 1, BATCHES - 1))  # no new batch: nothing new
    end_epoch(store, run_id, 1, checkpoint=False)  # the epoch's row alone
    assert_full_read(live.current(), store, run_id)
    store.save_checkpoint(run_id, "epoch_0001", 1, lambda path: path.write_text("weights"))  # then its file
    assert_full_read(live.current(), store, run_id)
    train_epoch(store, run_id, 2, range(0))
    end_epoch(store, run_id, 1, checkpoint=False)  # the same epoch recorded again replaces its row
    assert_full_read(live.current(), store, run_id)
    plateau = diagnosis.Diagnosis(diagnosis.PLATEAU, 1, "The loss stopped falling.", "Raise the rate.")
    store.add_diagnosis(run_id, plateau)
    held = live.current()
    assert_full_read(held, store, run_id)
    assert [found.kind for found in held.diagnoses] == [diagnosis.PLATEAU]
    store.request_control(run_id, "stop")
    assert_full_read(live.current(), store, run_id)
    train_epoch(store, run_id, 1, range(BATCHES - 1, BATCHES))
    train_epoch(store, run_id, 2)
    store.set_status(run_id, Status.STOPPED, reason="Stopped by the user.")
    assert_full_read(live.current(), store, run_id)
    # A continue records again from the last checkpoint, rewriting steps already held.
    store.set_status(run_id, Status.QUEUED)
    store.set_status(run_id, Status.STARTING)
    store.set_status(run_id, Status.RUNNING)
    train_epoch(store, run_id, 2)
    train_epoch(store, run_id, 3, range(2))
    assert_full_read(live.current(), store, run_id)


def test_nothing_is_read_again_while_nothing_changed(store: Store) -> None:
    run_id = running_run(store)
    train_epoch(store, run_id, 1)
    live = LiveFrames(store, run_id, min_seconds=0)
    first = live.current()
    reads = live.reads
    for _ in range(5):
        assert live.current() is first
    assert live.reads == reads
    train_epoch(store, run_id, 2, range(1))
    assert live.current() is not first and live.reads == reads + 1


def test_sessions_within_the_interval_share_one_read(store: Store) -> None:
    run_id = running_run(store)
    live = LiveFrames(store, run_id, min_seconds=3600)
    first = live.current()
    train_epoch(store, run_id, 1, range(2))
    # Within the interval the new batches wait for the next check: every session gets the same frames.
    results: list[Frames] = []
    threads = [threading.Thread(target=lambda: results.append(live.current())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(frames is first for frames in results) and live.reads == 1
    # A session whose own record shows another status (here, a stop was asked) is never shown older frames.
    store.request_control(run_id, "stop")
    fresh = live.current(status="running", control="stop")
    assert fresh.version is not None and fresh.version.control == "stop"
    assert_full_read(fresh, store, run_id)


def test_a_value_built_from_one_version_is_built_once(store: Store) -> None:
    run_id = running_run(store)
    live = LiveFrames(store, run_id, min_seconds=0)
    builds: list[int] = []

    def build() -> int:
        builds.append(1)
        return len(builds)

    frames = live.current()
    assert live.memo(frames.version, ("loss",), build) == 1
    assert live.memo(frames.version, ("loss",), build) == 1
    assert live.memo(frames.version, ("accuracy",), build) == 2
    train_epoch(store, run_id, 1, range(1))
    newer = live.current()
    assert live.memo(newer.version, ("loss",), build) == 3


def test_a_missing_run_has_no_version(store: Store) -> None:
    assert read_version(store, "no-such-run") is None


class WorkerWritesWhileRead(Store):
    """A real store whose worker records one more batch just before each batch read (the race of a live run)."""

    step = 100

    def batch_metrics(self, run_id: str, *, after_step: int | None = None) -> pd.DataFrame:
        WorkerWritesWhileRead.step += 1
        row = {"epoch": 1, "batch": self.step, "step": self.step, "loss": 0.5, "time": 0.0}
        self.add_batch_metrics(run_id, [row])
        return super().batch_metrics(run_id, after_step=after_step)


def test_rows_written_during_a_read_are_held_once(tmp_path: Path) -> None:
    store = WorkerWritesWhileRead(tmp_path / "home")
    run_id = running_run(store)
    train_epoch(store, run_id, 1, range(2))
    live = LiveFrames(store, run_id, min_seconds=0)
    for _ in range(4):
        store.add_batch_metrics(run_id, [{"epoch": 1, "batch": 0, "step": store.step + 1, "loss": 1.0}])
        WorkerWritesWhileRead.step += 1
        held = live.current().batches
        # No step twice, none missing: the steps held are those in the store when the read ended.
        assert held["step"].is_unique and held["step"].is_monotonic_increasing
        assert set(held["step"]) <= set(Store.batch_metrics(store, run_id)["step"])
        assert held["step"].iloc[-1] == store.step
