"""The run store: SQLite on disk in a temporary CNNLAB_HOME, real processes for concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from made_runs import make_run, reached

from cnnlab import specs
from cnnlab.errors import RunError, SpecError
from cnnlab.run_request import RunRequest
from cnnlab.store import database, statuses
from cnnlab.store.diagnoses import OVERFITTING, PLATEAU, Diagnosis
from cnnlab.store.records import RunRecord, new_run_id
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

SPEC_JSON = {
    "name": "tiny",
    "input_shape": [8, 8, 1],
    "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}],
}
SPEC = specs.ModelSpec.from_dict(SPEC_JSON)


def _create(store: Store, **changes: object) -> RunRecord:
    return make_run(store, spec=SPEC, epochs=2, **changes)  # type: ignore[arg-type]


def _move_to(store: Store, run_id: str, target: Status) -> None:
    reached(store, run_id, target)


def test_home_comes_from_the_environment_and_the_run_gets_a_folder(cnnlab_home: Path) -> None:
    store = Store()
    run = _create(store, name="first", owner="ada")
    assert store.home == cnnlab_home
    assert (cnnlab_home / "runs.sqlite3").exists()
    assert store.run_folder(run.id).is_dir()
    assert (run.name, run.owner, run.status, run.queue_position) == ("first", "ada", "queued", 1)
    assert run.spec == SPEC_JSON
    assert run.training() == specs.TrainingSettings(epochs=2)
    assert run.data() == specs.DataSettings()
    assert run.model_spec() == SPEC
    assert run.status is Status.QUEUED
    journal = sqlite3.connect(store.database_path).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"


def test_run_ids_are_short_url_safe_and_sort_by_creation() -> None:
    identifiers = [new_run_id(1_700_000_000 + step) for step in range(50)]
    assert identifiers == sorted(identifiers)
    assert all(
        len(identifier) == 13 and identifier.isalnum() and identifier.islower() for identifier in identifiers
    )
    assert len(set(new_run_id(1_700_000_000) for _ in range(100))) == 100


def test_status_changes_set_timestamps_reasons_and_events(store: Store) -> None:
    run = _create(store)
    _move_to(store, run.id, Status.RUNNING)
    started = store.get_run(run.id).started_at
    assert started is not None
    store.set_status(run.id, Status.PAUSED)
    store.set_status(run.id, Status.RUNNING)
    assert store.get_run(run.id).started_at == started
    failed = store.set_status(
        run.id, Status.FAILED, reason="boom", hint="lower it", traceback="Traceback ..."
    )
    assert (failed.reason, failed.hint, failed.traceback) == ("boom", "lower it", "Traceback ...")
    assert failed.ended_at is not None and failed.is_ended and not failed.is_active
    messages = list(store.events(run.id)["message"])
    assert messages[-1] == "running -> failed: boom"
    assert "queued -> starting" in messages
    with pytest.raises(RunError, match="Unknown run status"):
        store.set_status(run.id, "exploded")


def test_expected_status_guards_against_a_race(store: Store) -> None:
    run = _create(store)
    _move_to(store, run.id, Status.RUNNING)
    with pytest.raises(RunError, match="is 'running', not 'starting' as expected; another process"):
        store.set_status(run.id, Status.FAILED, expected=Status.STARTING)
    store.set_status(run.id, Status.FAILED, expected=statuses.LIVE)


def test_continue_requeues_and_clears_the_previous_ending(store: Store) -> None:
    run = _create(store)
    _move_to(store, run.id, Status.RUNNING)
    store.set_status(run.id, Status.STOPPED, reason="stopped by the user")
    again = store.set_status(run.id, Status.QUEUED)
    assert again.ended_at is None and again.reason is None and again.queue_position == 1


def test_queue_positions_and_claims_respect_the_limit(store: Store) -> None:
    runs = [_create(store, name=f"run {index}") for index in range(3)]
    assert [store.get_run(run.id).queue_position for run in runs] == [1, 2, 3]
    assert [run.id for run in store.queued_runs()] == [run.id for run in runs]
    claimed = store.claim_next_queued(max_occupying=1)
    assert claimed is not None and claimed.id == runs[0].id and claimed.status == Status.STARTING
    assert claimed.queue_position is None
    assert store.claim_next_queued(max_occupying=1) is None
    assert [store.get_run(run.id).queue_position for run in runs[1:]] == [1, 2]
    # A paused run holds no slot.
    store.set_status(claimed.id, Status.RUNNING)
    store.set_status(claimed.id, Status.PAUSED)
    second = store.claim_next_queued(max_occupying=1)
    assert second is not None and second.id == runs[1].id


def test_lookup_listing_renaming_and_prefixes(store: Store) -> None:
    first = _create(store, owner="ada")
    second = _create(store, owner="bob")
    assert [run.id for run in store.list_runs()] == [second.id, first.id]
    assert [run.id for run in store.list_runs(owner="ada")] == [first.id]
    assert store.list_runs(status="running") == []
    assert len(store.list_runs(status=["queued", "running"], limit=1)) == 1
    assert store.get_run(first.id[:-1]).id == first.id
    with pytest.raises(RunError, match="matches no run"):
        store.get_run("zzzzzzzz")
    with pytest.raises(RunError, match="matches no run"):  # "_" and case are taken literally
        store.get_run(first.id[:-2].upper() + "_")
    assert store.count_runs(["queued"]) == 2 and store.count_runs(["running", "failed"]) == 0
    store.rename_run(first.id, "  better name ")
    assert store.get_run(first.id).name == "better name"
    with pytest.raises(RunError):
        store.rename_run(first.id, " ")
    with pytest.raises(RunError):
        store.run_folder("../escape")


def test_control_requests_are_answered_once(store: Store) -> None:
    run = _create(store)
    with pytest.raises(RunError, match="only a starting, running or paused run"):
        store.request_control(run.id, "stop")
    _move_to(store, run.id, Status.RUNNING)
    assert store.pending_control(run.id) is None
    store.request_control(run.id, "pause")
    assert store.pending_control(run.id) == "pause"
    store.request_control(run.id, "stop")
    store.clear_control(run.id, "pause")  # A newer request survives an older acknowledgement.
    assert store.pending_control(run.id) == "stop"
    store.clear_control(run.id, "stop")
    assert store.pending_control(run.id) is None
    with pytest.raises(RunError, match="Unknown control"):
        store.request_control(run.id, "explode")
    store.request_control(run.id, "stop")
    store.set_status(run.id, Status.STOPPED)
    assert store.pending_control(run.id) is None


def test_metrics_round_trip_as_tables(store: Store) -> None:
    run = _create(store)
    rows = [
        {
            "epoch": 1,
            "batch": batch,
            "step": batch,
            "loss": 2.0 - batch / 10,
            "accuracy": batch / 10,
            "learning_rate": 0.01,
        }
        for batch in range(5)
    ]
    store.add_batch_metrics(run.id, rows)
    table = store.batch_metrics(run.id)
    assert list(table.columns) == ["epoch", "batch", "step", "loss", "accuracy", "learning_rate", "time"]
    assert list(table["step"]) == [0, 1, 2, 3, 4]
    assert table["loss"].iloc[-1] == pytest.approx(1.6)
    assert list(store.batch_metrics(run.id, after_step=2)["step"]) == [3, 4]
    store.add_epoch_metrics(
        run.id, {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.2, "top_class": "cat"}
    )
    store.add_epoch_metrics(run.id, {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.9})
    store.add_epoch_metrics(run.id, {"epoch": 2, "loss": 0.4, "accuracy": 0.9, "val_loss": 0.8})
    epochs = store.epoch_metrics(run.id)
    assert list(epochs["epoch"]) == [1, 2]
    assert list(epochs["loss"]) == [1.0, 0.4]
    assert np.isnan(epochs["val_accuracy"]).all()
    assert epochs["top_class"].iloc[0] == "cat"
    assert store.get_run(run.id).last_epoch == 2


def test_dataset_summary_and_results_are_kept(store: Store) -> None:
    run = _create(store)
    store.set_dataset_summary(run.id, pd.DataFrame({"split": ["train", "test"], "images": [10, 4]}))
    store.set_results(run.id, {"test_accuracy": np.float32(0.5)})
    stored = store.get_run(run.id)
    assert stored.dataset_summary == [{"split": "train", "images": 10}, {"split": "test", "images": 4}]
    assert stored.results == {"test_accuracy": 0.5}


def test_snapshots_are_compressed_bounded_and_indexed(store: Store) -> None:
    run = _create(store)
    kernels = np.random.default_rng(0).normal(size=(3, 3, 1, 8))
    path = store.write_snapshot(run.id, 3, "kernels", {"conv_1": kernels, "mask": np.array([True, False])})
    assert path == store.run_folder(run.id) / "snapshots" / "kernels" / "epoch_0003.npz"
    store.write_snapshot(run.id, 1, "kernels", {"conv_1": kernels})
    arrays = store.read_snapshot(run.id, 3, "kernels")
    assert arrays["conv_1"].dtype == np.float16 and arrays["mask"].dtype == np.uint8
    np.testing.assert_allclose(arrays["conv_1"], kernels, atol=1e-2)
    assert store.snapshot_epochs(run.id, "kernels") == [1, 3]
    assert store.snapshot_epochs(run.id, "feature_maps") == []
    with pytest.raises(RunError, match="no 'kernels' snapshot for epoch 2"):
        store.read_snapshot(run.id, 2, "kernels")
    with pytest.raises(RunError, match="limit"):
        store.write_snapshot(run.id, 4, "huge", {"x": np.zeros((4000, 4000), np.float32)})
    with pytest.raises(RunError, match="identifier"):
        store.write_snapshot(run.id, 4, "../x", {})
    assert not list(path.parent.glob(".*"))  # No temporary files are left behind.


def test_checkpoints_are_written_atomically(store: Store) -> None:
    run = _create(store)
    assert store.checkpoint_path(run.id).name == "latest.keras"
    assert store.checkpoint_path(run.id, 7).name == "epoch_0007.weights.npz"
    assert store.checkpoint_path(run.id, "epoch_0007") == store.checkpoint_path(run.id, 7)
    with pytest.raises(RunError):
        store.checkpoint_path(run.id, "newest")
    path = store.save_checkpoint(run.id, "latest", 1, lambda temporary: temporary.write_text("one"))
    assert path.read_text() == "one"

    def half_written(temporary: Path) -> None:
        assert temporary.parent == path.parent and temporary.name.endswith(".tmp.keras")
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.save_checkpoint(run.id, "latest", 2, half_written)
    assert path.read_text() == "one"
    assert [item.name for item in path.parent.iterdir()] == ["latest.keras"]
    weights = store.save_checkpoint(run.id, 2, 2, lambda temporary: temporary.write_text("two"))
    assert weights.name == "epoch_0002.weights.npz" and weights.read_text() == "two"
    assert store.checkpoints(run.id) == {"latest": 1, "epoch_0002": 2}


def test_delete_removes_everything_but_refuses_a_live_run(store: Store) -> None:
    run = _create(store)
    store.add_batch_metrics(run.id, [{"epoch": 1, "batch": 0, "step": 0, "loss": 1.0}])
    store.write_snapshot(run.id, 1, "kernels", {"x": np.ones(3)})
    _move_to(store, run.id, Status.RUNNING)
    with pytest.raises(RunError, match="stop it before deleting"):
        store.delete_run(run.id)
    store.set_status(run.id, Status.COMPLETED)
    store.delete_run(run.id)
    assert not store.run_folder(run.id).exists()
    assert store.list_runs() == []
    assert store.batch_metrics(run.id).empty and store.events(run.id).empty


def _write_from_another_process(home: str, run_id: str, first_step: int, count: int) -> None:
    store = Store(home)
    for step in range(first_step, first_step + count):
        store.add_batch_metrics(run_id, [{"epoch": 1, "batch": step, "step": step, "loss": 1.0}])
        store.heartbeat(run_id, os.getpid())
        store.log_event(run_id, f"step {step}")


def test_several_processes_write_while_this_one_reads(store: Store) -> None:
    run = _create(store)
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_write_from_another_process, args=(str(store.home), run.id, start, 150))
        for start in (0, 1000)
    ]
    for writer in writers:
        writer.start()
    reads = 0
    while any(writer.is_alive() for writer in writers):
        store.batch_metrics(run.id)
        reads += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert len(store.batch_metrics(run.id)) == 300
    assert reads > 0
    # A new Store (a restarted server) sees the same data.
    assert len(Store(store.home).events(run.id)) == 301


# The schema before versions were kept (user_version 0, no foreign keys), as CNN Lab wrote it
# up to commit 725308e. Its first release lacked the three run columns at the end of `runs`.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, queued_at REAL, started_at REAL, ended_at REAL, heartbeat_at REAL,
    spec TEXT NOT NULL, data_settings TEXT NOT NULL, training_settings TEXT NOT NULL,
    dataset_summary TEXT, results TEXT, parent_id TEXT, parent_epoch INTEGER,
    worker_pid INTEGER, worker_host TEXT, control TEXT, reason TEXT, hint TEXT, traceback TEXT{added});
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, queued_at);
CREATE INDEX IF NOT EXISTS runs_by_owner ON runs (owner, status);
CREATE TABLE IF NOT EXISTS batch_metrics (
    run_id TEXT NOT NULL, epoch INTEGER, batch INTEGER, step INTEGER, loss REAL, accuracy REAL,
    learning_rate REAL, time REAL);
CREATE INDEX IF NOT EXISTS batch_metrics_by_run ON batch_metrics (run_id, step);
CREATE TABLE IF NOT EXISTS epoch_metrics (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, loss REAL, accuracy REAL, val_loss REAL,
    val_accuracy REAL, learning_rate REAL, epoch_seconds REAL, extras TEXT, time REAL,
    PRIMARY KEY (run_id, epoch));
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, time REAL NOT NULL,
    level TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, epoch));
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL, which TEXT NOT NULL, epoch INTEGER NOT NULL, path TEXT NOT NULL,
    time REAL NOT NULL, PRIMARY KEY (run_id, which));
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, created_at REAL NOT NULL,
    axes TEXT NOT NULL, sample INTEGER, seed INTEGER);
"""
OLD_ADDED_COLUMNS = ",\n    shared INTEGER NOT NULL DEFAULT 0, exercise TEXT, sweep TEXT"
DIAGNOSIS_LINE = "[overfitting, epoch 3] The validation loss rose. Fix: Add Dropout."


def _old_database(home: Path, *, added_columns: bool) -> None:
    """A database as the previous schema made it: one completed run with metrics, events and a checkpoint row,
    a diagnosis only as its event line, and rows of a run deleted long ago that the old delete left behind."""
    home.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(home / "runs.sqlite3")
    connection.executescript(OLD_SCHEMA.format(added=OLD_ADDED_COLUMNS if added_columns else ""))
    settings = (SPEC.to_dict(), specs.DataSettings().to_dict(), specs.TrainingSettings(epochs=2).to_dict())
    connection.execute(
        "INSERT INTO runs (id, name, owner, status, created_at, queued_at, started_at, ended_at, spec, "
        "data_settings, training_settings) VALUES ('oldrun', 'old run', 'ada', 'completed', 1, 1, 2, 3, ?, ?, ?)",
        [json.dumps(value) for value in settings],
    )
    for epoch in (1, 2):
        connection.execute(
            "INSERT INTO epoch_metrics (run_id, epoch, loss, val_accuracy, extras, time) VALUES (?, ?, ?, ?, '{}', ?)",
            ("oldrun", epoch, 1.0 / epoch, 0.5 + epoch / 10, 10.0 + epoch),
        )
        connection.execute(
            "INSERT INTO batch_metrics VALUES ('oldrun', ?, 0, ?, ?, 0.5, 0.01, 1.0)",
            (epoch, epoch, 1.0 / epoch),
        )
    connection.execute(
        "INSERT INTO events (run_id, time, level, message) VALUES ('oldrun', 5, 'info', 'created')"
    )
    connection.execute(
        "INSERT INTO events (run_id, time, level, message) VALUES ('oldrun', 6, 'warning', ?)",
        (DIAGNOSIS_LINE,),
    )
    connection.execute(
        "INSERT INTO checkpoints VALUES ('oldrun', 'latest', 2, 'runs/oldrun/checkpoints/latest.keras', 7)"
    )
    connection.execute("INSERT INTO batch_metrics (run_id, step, loss) VALUES ('gone', 1, 1.0)")  # an orphan
    connection.commit()
    connection.close()


def _referencing_rows(store: Store, run_id: str) -> dict[str, int]:
    """For every table with a `run_id` column, how many of its rows name `run_id` (read with a plain connection)."""
    connection = sqlite3.connect(store.database_path)
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    counts = {}
    for table in tables:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        if "run_id" in columns:
            counts[table] = connection.execute(
                f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
    counts["runs"] = connection.execute("SELECT COUNT(*) FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    connection.close()
    return counts


def test_deleting_a_run_leaves_no_row_that_refers_to_it(store: Store) -> None:
    run, kept = _create(store), _create(store)
    for target in (run, kept):
        store.add_batch_metrics(target.id, [{"epoch": 1, "batch": 0, "step": 0, "loss": 1.0}])
        store.add_epoch_metrics(target.id, {"epoch": 1, "loss": 1.0})
        store.write_snapshot(target.id, 1, "kernels", {"x": np.ones(3)})
        store.save_checkpoint(target.id, "latest", 1, lambda path: path.write_text("model"))
        store.add_diagnosis(target.id, Diagnosis(PLATEAU, 1, "The loss stopped falling.", "Raise the rate."))
    store.set_status(run.id, Status.STOPPED)
    before = _referencing_rows(store, run.id)
    assert set(before) >= {
        "runs",
        "batch_metrics",
        "epoch_metrics",
        "events",
        "snapshots",
        "checkpoints",
        "diagnoses",
    }
    assert all(count > 0 for count in before.values()), before
    store.delete_run(run.id)
    assert set(_referencing_rows(store, run.id).values()) == {0}
    assert not store.run_folder(run.id).exists()
    assert all(
        count > 0 for count in _referencing_rows(store, kept.id).values()
    )  # The other run keeps its rows.


def test_foreign_keys_hold_and_a_write_for_a_missing_run_says_so(store: Store) -> None:
    run = _create(store)
    assert store.database.connection().execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(RunError, match="names a run that is not in the store"):
        store.add_epoch_metrics("no-such-run", {"epoch": 1, "loss": 1.0})
    assert store.epoch_metrics("no-such-run").empty
    store.add_epoch_metrics(run.id, {"epoch": 1, "loss": 1.0})  # A run that exists takes rows.


@pytest.mark.parametrize("added_columns", [False, True], ids=["first release", "previous release"])
def test_an_old_database_is_migrated_in_place_keeping_its_runs(tmp_path: Path, added_columns: bool) -> None:
    _old_database(tmp_path, added_columns=added_columns)
    store = Store(tmp_path)
    assert store.database.connection().execute("PRAGMA user_version").fetchone()[0] == database.SCHEMA_VERSION
    old = store.get_run("oldrun")
    assert (old.name, old.owner, old.status, old.last_epoch) == ("old run", "ada", Status.COMPLETED, 2)
    assert (old.shared, old.exercise, old.sweep) == (False, None, None)
    assert list(store.epoch_metrics("oldrun")["epoch"]) == [1, 2]
    assert len(store.batch_metrics("oldrun")) == 2
    assert list(store.events("oldrun")["message"]) == ["created", DIAGNOSIS_LINE]  # The log reads as before.
    assert store.checkpoints("oldrun") == {"latest": 2}
    assert store.diagnoses("oldrun") == [
        Diagnosis(OVERFITTING, 3, "The validation loss rose.", "Add Dropout.")
    ]
    assert _referencing_rows(store, "gone")["batch_metrics"] == 0  # The old delete's leftovers are gone.
    # New columns work, and the foreign keys now hold: deleting the old run takes all of it.
    store.set_shared("oldrun", True)
    tagged = _create(store, exercise="edges", sweep="sweep-1")
    assert store.get_run("oldrun").shared is True
    assert (store.get_run(tagged.id).exercise, store.get_run(tagged.id).sweep) == ("edges", "sweep-1")
    with pytest.raises(RunError, match="not in the store"):
        store.add_batch_metrics("gone", [{"epoch": 1, "batch": 0, "step": 0, "loss": 1.0}])
    store.delete_run("oldrun")
    assert set(_referencing_rows(store, "oldrun").values()) == {0}


def test_a_database_of_the_previous_version_gets_the_exercise_controls_column(tmp_path: Path) -> None:
    _old_database(tmp_path, added_columns=True)
    Store(tmp_path).close()  # Migrated to the current version; now made one of the version before:
    connection = sqlite3.connect(tmp_path / "runs.sqlite3")
    connection.execute("ALTER TABLE runs DROP COLUMN exercise_controls")
    connection.execute(f"PRAGMA user_version = {database.SCHEMA_VERSION - 1}")
    connection.close()
    store = Store(tmp_path)
    assert store.get_run("oldrun").exercise_controls is None
    run = store.create_run(RunRequest(spec=SPEC, exercise="edges", exercise_locked=frozenset({"epochs"})))
    assert run.exercise_control_names("locked") == {"epochs"} and run.exercise == "edges"
    store.leave_exercise(run.id, "continued past its epochs")
    left = store.get_run(run.id)
    assert left.exercise is None and left.exercise_control_names("locked") == {"epochs"}
    assert "left the exercise 'edges': continued past its epochs" in list(store.events(run.id)["message"])


def test_a_version_3_database_gets_the_sweep_columns_of_searches_on_optuna(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.sweeps.create("old grid", "local", [("learning_rate", [0.001, 0.01])])
    store.close()
    connection = sqlite3.connect(tmp_path / "runs.sqlite3")
    connection.execute("ALTER TABLE sweeps DROP COLUMN search")
    connection.execute("ALTER TABLE sweeps DROP COLUMN closed")
    connection.execute("PRAGMA user_version = 3")
    connection.close()
    store = Store(tmp_path)
    (old,) = store.sweeps.list_sweeps()
    assert (old.name, old.search, old.closed) == ("old grid", None, False)
    assert store.sweeps.open_searches() == []
    searched = store.sweeps.create("search", "local", [], search={"sampler": "tpe", "trials": 4})
    assert [item.id for item in store.sweeps.open_searches()] == [searched.id]
    store.sweeps.set_search(searched.id, {"sampler": "tpe", "trials": 4}, closed=True)
    assert store.sweeps.open_searches() == [] and store.sweeps.get(searched.id).closed


def _open_and_read(home: str) -> None:
    assert Store(home).get_run("oldrun").name == "old run"


def test_processes_that_open_an_old_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    _old_database(tmp_path, added_columns=False)
    context = multiprocessing.get_context("spawn")
    openers = [context.Process(target=_open_and_read, args=(str(tmp_path),)) for _ in range(3)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join()
        assert opener.exitcode == 0
    store = Store(tmp_path)
    assert store.diagnoses("oldrun") == [
        Diagnosis(OVERFITTING, 3, "The validation loss rose.", "Add Dropout.")
    ]
    assert len(store.epoch_metrics("oldrun")) == 2


def test_the_schema_is_migrated_once_not_on_every_open(store: Store) -> None:
    run = _create(store)
    store.close()
    # Were the schema applied on every open, the next Store would make this table again.
    connection = sqlite3.connect(store.database_path)
    connection.execute("DROP TABLE sweeps")
    connection.close()
    reopened = Store(store.home)
    tables = {row[0] for row in reopened.database.connection().execute("SELECT name FROM sqlite_master")}
    assert "sweeps" not in tables and "runs" in tables
    assert reopened.get_run(run.id).id == run.id


def test_a_database_from_a_newer_cnn_lab_is_refused_with_what_to_do(tmp_path: Path) -> None:
    Store(tmp_path).close()
    connection = sqlite3.connect(tmp_path / "runs.sqlite3")
    connection.execute(f"PRAGMA user_version = {database.SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(RunError, match=r"newer than the \d+ this CNN Lab knows; upgrade CNN Lab"):
        Store(tmp_path)


def test_settings_recorded_outside_todays_ranges_still_open_and_new_ones_are_checked(store: Store) -> None:
    """A run an earlier release recorded with 600 epochs and a 0.7 rotation (allowed then) opens as
    recorded; settings made from it for a continue or a fork are checked against today's ranges."""
    run = _create(store)
    recorded = {**specs.TrainingSettings().to_dict(), "epochs": 600}
    recorded["augmentation"] = {**recorded["augmentation"], "rotation": 0.7}
    with sqlite3.connect(store.database_path) as connection:
        connection.execute(
            "UPDATE runs SET training_settings = ? WHERE id = ?", (json.dumps(recorded), run.id)
        )
    settings = store.get_run(run.id).training()
    assert settings.epochs == 600 and settings.augmentation.rotation == 0.7
    with pytest.raises(SpecError, match=r"rotation must be a number in \[0, 0.5\]; got 0.7"):
        specs.TrainingSettings.from_dict(settings.to_dict())
    broken = {**recorded, "epochs": "many"}
    with sqlite3.connect(store.database_path) as connection:
        connection.execute("UPDATE runs SET training_settings = ? WHERE id = ?", (json.dumps(broken), run.id))
    with pytest.raises(SpecError, match="epochs"):
        store.get_run(run.id).training()
