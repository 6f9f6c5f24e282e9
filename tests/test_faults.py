"""Faults lose nothing: a worker killed with SIGKILL in the middle of an epoch, and two processes
writing to one store at the same time.

The killed run keeps every metric it recorded, is `interrupted` with the reason the scheduler saw,
and Continue carries on from its last complete epoch with the optimizer's state (the optimizer's
step counter goes on from where the checkpoint left it, it does not start again at zero). The
store takes the records of two processes at once, the real `python -m cnnlab train` (its scheduler
and worker) and a process writing a live run's batch metrics, events and heartbeats as the server's
worker does, with no "database is locked" and no lost row. The Streamlit server's own restart is tested in the browser
(tests/e2e/test_server_restart.py).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import pandas as pd
import pytest
from waiting import DEADLINE_SECONDS, wait_until

from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# Digits upscaled to 16 pixels: an epoch lasts long enough to be killed in its middle.
DATA = specs.DataSettings(image_size=16)
BATCH_SIZE = 32


def _optimizer_steps(store: Store, run_id: str) -> int:
    """The optimizer's step counter saved in the run's latest checkpoint."""
    model = keras.models.load_model(store.checkpoint_path(run_id, "latest"))
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _in_an_early_batch_of_a_new_epoch(store: Store, run_id: str, steps_per_epoch: int) -> bool:
    """True once two epochs are recorded and the newest batch row is early in the next epoch."""
    run = store.get_run(run_id)
    latest = store.batch_metrics(run_id).tail(1)
    if run.last_epoch < 2 or latest.empty:
        return False
    row = latest.iloc[0]
    return int(row["epoch"]) == run.last_epoch + 1 and int(row["batch"]) <= steps_per_epoch // 3


def test_a_worker_killed_mid_epoch_loses_nothing_and_continues_with_its_optimizer_state(
    store: Store,
) -> None:
    spec = presets.adapt(presets.get("digits_default").spec, (16, 16, 1), 10)
    steps_per_epoch = math.ceil(len(datasets.load(DATA).y_train) / BATCH_SIZE)
    scheduler = Scheduler(
        store, LocalProcessExecutor(store.home, threads=1, warm=False), max_workers=1, poll_seconds=0.1
    ).start()
    try:
        run = scheduler.submit(
            RunRequest(
                spec=spec,
                data_settings=DATA,
                training_settings=specs.TrainingSettings(epochs=100, batch_size=BATCH_SIZE),
            )
        )
        wait_until(
            lambda: _in_an_early_batch_of_a_new_epoch(store, run.id, steps_per_epoch),
            "the worker to be early in its third or a later epoch",
        )
        worker_pid = store.get_run(run.id).worker_pid
        assert worker_pid is not None
        os.kill(worker_pid, signal.SIGKILL)
        wait_until(lambda: store.get_run(run.id).is_ended, "the scheduler to notice the killed worker")
        # What was recorded up to the kill (read after it: nothing more can arrive).
        killed = store.get_run(run.id)
        batches, epochs = store.batch_metrics(run.id), store.epoch_metrics(run.id)
        done = store.checkpoints(run.id)["latest"]

        # The status and reason say what happened, and the run can be continued.
        assert killed.status == Status.INTERRUPTED
        assert killed.reason == "The worker process died (killed by SIGKILL)."
        assert killed.hint is not None and "continue it from its last complete epoch" in killed.hint
        # Every metric is there: whole epochs 1..done, and the batches of the epoch it died in.
        assert done >= 2 and list(epochs["epoch"]) == list(range(1, done + 1))
        assert int(batches["epoch"].max()) == done + 1  # It died inside epoch done + 1.
        assert list(batches["step"]) == sorted(batches["step"])
        assert _optimizer_steps(store, run.id) == done * steps_per_epoch

        # Continue for one more epoch: from the last complete one, optimizer state included.
        continued = scheduler.continue_run(run.id, 1)
        assert continued.status in (Status.QUEUED, Status.STARTING)
        finished = scheduler.wait(run.id, timeout=DEADLINE_SECONDS)
        assert finished.status == Status.COMPLETED, finished.traceback
        assert list(store.epoch_metrics(run.id)["epoch"]) == list(range(1, done + 2))
        # The optimizer counted on from done epochs of steps; a restart would give one epoch of them.
        assert _optimizer_steps(store, run.id) == (done + 1) * steps_per_epoch
        # Nothing recorded before the kill was lost or rewritten.
        after = store.epoch_metrics(run.id)
        pd.testing.assert_frame_equal(
            after[after["epoch"] <= done].reset_index(drop=True)[list(epochs.columns)], epochs
        )
        before_rows = store.batch_metrics(run.id).iloc[: len(batches)].reset_index(drop=True)
        pd.testing.assert_frame_equal(before_rows, batches)
        messages = " ".join(store.events(run.id)["message"])
        assert f"continuing from the checkpoint of epoch {done}, optimizer state included" in messages
    finally:
        scheduler.shutdown(kill_workers=True)


# The server's side: a live run's worker writing batch rows, events and heartbeats until told to stop.
_SERVER_WRITER = """
import os
import sys
import time
from pathlib import Path
from cnnlab.store.run_store import Store

home, run_id, stop_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = Store(home)
index = 0
while not stop_file.exists():
    store.add_batch_metrics(run_id, [{"epoch": 1, "batch": index, "step": index, "loss": float(index)}])
    store.log_event(run_id, f"server {index}")
    if index % 25 == 0:
        store.heartbeat(run_id, os.getpid())
    index += 1
    time.sleep(0.02)  # Pacing, so the writer leaves the CLI's worker most of the two cores.
print(index)
"""


def test_the_cli_trains_while_the_server_writes_to_the_same_store_and_no_row_is_lost(tmp_path: Path) -> None:
    home = tmp_path / "shared-home"
    stop_file = tmp_path / "stop"
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CNNLAB_HOME": str(home),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    spec = specs.ModelSpec.from_dict(
        {"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]}
    )
    # The server's run is live, its worker (the writer) alive: the CLI's scheduler leaves it alone.
    server_run = (
        Store(home)
        .create_run(
            RunRequest(
                spec=spec, data_settings=specs.DataSettings(), training_settings=specs.TrainingSettings()
            ),
            status=Status.RUNNING,
        )
        .id
    )
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER_WRITER, str(home), server_run, str(stop_file)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(Store(home).batch_metrics(server_run)) > 0, "the server's first row")
        # The real CLI, with a slot beside the server's running run.
        cli = subprocess.run(
            [sys.executable, "-m", "cnnlab", "train", "digits_default", "--epochs", "1", "--subset", "200"],
            env={**environment, "CNNLAB_MAX_WORKERS": "2"},
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS,
        )
    finally:
        stop_file.touch()
        written, server_errors = server.communicate(timeout=DEADLINE_SECONDS)
    assert server.returncode == 0, server_errors
    assert cli.returncode == 0, cli.stderr
    assert "database is locked" not in server_errors + cli.stderr
    store = Store(home)

    # The CLI's run is whole: its one epoch, the first and last batches, its checkpoint and its log.
    summary = json.loads(cli.stdout.strip().splitlines()[-1])
    trained = store.get_run(summary["run_id"])
    assert (trained.status, summary["epochs"]) == (Status.COMPLETED, 1), trained.traceback
    assert list(store.epoch_metrics(trained.id)["epoch"]) == [1]
    batches = store.batch_metrics(trained.id)
    train_images = trained.train_images()
    assert train_images is not None
    steps_per_epoch = math.ceil(train_images / trained.training().batch_size)
    assert (batches["batch"].iloc[0], batches["batch"].iloc[-1]) == (1, steps_per_epoch)
    assert store.checkpoints(trained.id)["latest"] == 1
    messages = store.events(trained.id)["message"].tolist()
    assert messages[:2] == ["created (queued)", "queued -> starting"]
    assert any(message.startswith("loaded digits") for message in messages)

    # The server's run has every row it wrote, in order, and it kept writing while the CLI trained.
    rows = int(written)
    assert store.batch_metrics(server_run)["step"].tolist() == list(range(rows))
    events = store.events(server_run)
    server_events = events[events["message"].str.startswith("server ")]
    assert server_events["message"].tolist() == [f"server {index}" for index in range(rows)]
    assert trained.started_at is not None and trained.ended_at is not None
    during = server_events["time"].between(trained.started_at, trained.ended_at)
    assert during.sum() > 10
    assert store.get_run(server_run).status == Status.RUNNING


def test_two_processes_creating_one_store_at_once_both_succeed(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys; from cnnlab.store.run_store import Store; s = Store(sys.argv[1]); print(len(s.list_runs()))"
    for attempt in range(2):
        home = tmp_path / f"fresh-{attempt}"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(home)],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        for process in processes:
            output, errors = process.communicate(timeout=DEADLINE_SECONDS)
            assert process.returncode == 0 and output.strip() == "0", errors
