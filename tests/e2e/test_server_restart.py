"""The Streamlit server killed and started again in the middle of a run, in Chromium.

The server is started here (like `app_url` in conftest.py, with a private CNNLAB_HOME) so the test
can kill it. Training workers run in their own session, so a worker outlives the server that
started it: after a restart the run is still `running`, its metrics keep coming and none recorded
before is lost. A worker that died while the server was down is found gone at start-up and the run
shows as `interrupted` with that reason; Continue in the browser trains one more epoch from the last
complete one, optimizer state included, after the epochs recorded before, which are unchanged.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from waiting import wait_until

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue.executor import process_alive
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from cnnlab.ui.pages.train import live_run
from tests.app_pages import read_back
from tests.e2e.app_servers import end_workers, start_app
from tests.e2e.conftest import screenshot, set_number, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS = 400  # Far more than the test waits for: the run is still training when the server comes back.


class Server:
    """One `streamlit run app.py` process on a home (`app_servers.start_app`), which the test can kill
    and start again."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the server on a free port; its URL."""
        url, self.process = start_app({"CNNLAB_HOME": str(self.home)})
        return url

    def kill(self) -> None:
        """End the server at once (SIGKILL: no clean shutdown, as in a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "cnnlab_home"
    home.mkdir()
    running = Server(home)
    try:
        yield running
    finally:
        running.kill()
        end_workers(home)


def _open_run(page: Page, url: str, run_id: str) -> None:
    page.goto(f"{url}/train?run={run_id}")
    wait_for_app(page)


def _early_in_a_new_epoch(store: Store, run_id: str) -> bool:
    """True when the newest batch row is in the first third of the epoch after the last recorded one.

    A worker killed then has its last complete epoch both checkpointed and recorded (the checkpoint
    is written before the epoch's row), so Continue carries on right after the recorded epochs.
    """
    batches = store.batch_metrics(run_id)
    recorded = store.epoch_metrics(run_id)
    if recorded.empty or batches.empty:
        return False
    # The first and the last batch of every epoch are always written: epoch 1's last is its length.
    steps_per_epoch = int(batches[batches["epoch"] == 1]["batch"].max())
    newest = batches.iloc[-1]
    return (
        int(newest["epoch"]) == int(recorded["epoch"].max()) + 1
        and int(newest["batch"]) <= steps_per_epoch // 3
        and store.checkpoints(run_id).get("latest") == int(recorded["epoch"].max())
    )


def test_a_run_survives_a_server_restart_and_a_lost_worker_shows_as_interrupted(
    server: Server, page: Page
) -> None:
    store = Store(server.home)
    url = server.start()
    # A run queued in the store is started by the server's scheduler, as one from the Train page is.
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(epochs=EPOCHS),
            name="restart test",
        )
    )
    _open_run(page, url, run.id)  # The server's scheduler starts with the first page shown.
    wait_until(lambda: store.get_run(run.id).last_epoch >= 2, "two epochs trained under the first server")
    page.get_by_text(re.compile(rf"Training: epoch \d+ of {EPOCHS}")).first.wait_for()

    # The server dies; its worker carries on and keeps recording.
    server.kill()
    before = store.epoch_metrics(run.id)
    worker_pid = store.get_run(run.id).worker_pid
    assert worker_pid is not None and process_alive(worker_pid)
    wait_until(lambda: store.get_run(run.id).last_epoch > len(before), "an epoch recorded with no server")

    # Started again on the same home, the server shows the run still training, nothing lost.
    url = server.start()
    _open_run(page, url, run.id)
    page.get_by_text("restart test").first.wait_for()
    page.get_by_text(re.compile(rf"Training: epoch \d+ of {EPOCHS}")).first.wait_for()
    screenshot(page, "server_restart_running")
    assert store.get_run(run.id).status == Status.RUNNING
    after = store.epoch_metrics(run.id)
    assert after.iloc[: len(before)].equals(before)  # Every epoch recorded before the kill is still there.
    assert list(after["epoch"]) == list(range(1, len(after) + 1))

    # The server dies again and, while it is down, so does the worker: the restart finds it gone.
    server.kill()
    wait_until(lambda: _early_in_a_new_epoch(store, run.id), "the worker to be early in a new epoch")
    os.kill(worker_pid, signal.SIGKILL)
    wait_until(lambda: not process_alive(worker_pid), "the worker to be gone")
    recorded = store.epoch_metrics(run.id)
    url = server.start()
    _open_run(page, url, run.id)
    wait_until(lambda: store.get_run(run.id).is_ended, "the restarted server to find the worker gone")
    interrupted = store.get_run(run.id)
    assert interrupted.status == Status.INTERRUPTED
    assert interrupted.reason == "The worker process was gone when CNN Lab restarted."
    page.get_by_text(read_back(live_run.status_message(interrupted, EPOCHS))).first.wait_for()
    continue_popover = page.get_by_role("button", name=re.compile("Continue"))
    continue_popover.first.wait_for()
    screenshot(page, "server_restart_interrupted")
    assert store.epoch_metrics(run.id).equals(recorded)  # No metric lost.
    done = store.checkpoints(run.id)["latest"]
    assert list(recorded["epoch"]) == list(range(1, done + 1))

    # Continue, in the browser, for one more epoch: from the last complete one, optimizer state included.
    continue_popover.first.click()
    set_number(page, "More epochs", 1)
    page.get_by_role("button", name="Continue training").click()
    wait_until(lambda: store.get_run(run.id).status != Status.INTERRUPTED, "the run to be queued again")
    wait_until(lambda: store.get_run(run.id).is_ended, "the continued run to end")
    finished = store.get_run(run.id)
    assert finished.status == Status.COMPLETED, finished.traceback
    page.get_by_text(read_back(live_run.status_message(finished, done + 1))).first.wait_for()
    continued = store.epoch_metrics(run.id)
    assert continued.iloc[: len(recorded)].equals(recorded)  # The epochs before the kill are unchanged,
    assert list(continued["epoch"]) == list(range(1, done + 2))  # and one new epoch follows them.
    messages = store.events(run.id)["message"].tolist()
    assert f"continuing from the checkpoint of epoch {done}, optimizer state included" in messages
