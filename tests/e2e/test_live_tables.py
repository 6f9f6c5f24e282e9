"""The Runs table follows a run live, without a reload, and a row opens its run (Chromium).

The test process plays the worker: it moves a run from starting to running and records epochs in
the store the server reads, so the test needs no TensorFlow and no timing assumptions beyond
"the table shows it within a few polls".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.conftest import ROWS_SCRIPT, screenshot, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.light_jobs]


def wait_for_row(page: Page, name: str, status: str, epochs: str) -> None:
    """Wait until the row of the run called `name` shows `status` and `epochs`, with no reload of the
    page (the table shows names; run ids wait behind its "Show ids" toggle)."""
    page.wait_for_function(
        f"""() => {{
            const rows = ({ROWS_SCRIPT})();
            return rows.some(row => row.includes({name!r}) && row.includes({status!r})
                && row.includes({epochs!r}));
        }}""",
        timeout=30_000,
    )


def test_the_runs_table_moves_with_the_run_and_a_row_opens_it(
    app_home: Path, app_url: str, page: Page
) -> None:
    store = Store(app_home)
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=DataSettings(),
            training_settings=TrainingSettings(epochs=3),
            name="table run",
        ),
        # Not queued first: the server's scheduler would claim a queued run while this sets it starting.
        status=Status.STARTING,
    )
    page.goto(f"{app_url}/runs")
    wait_for_app(page)
    wait_for_row(page, "table run", "starting", "0")
    page.evaluate("() => { window.notReloaded = true; }")

    store.set_status(run.id, Status.RUNNING)
    for epoch in (1, 2):
        store.add_epoch_metrics(run.id, {"epoch": epoch, "loss": 1 / epoch, "accuracy": 0.4 * epoch})
    wait_for_row(page, "table run", "running", "2")
    screenshot(page, "runs_table_live")
    store.add_epoch_metrics(run.id, {"epoch": 3, "loss": 0.3, "accuracy": 0.9})
    store.set_status(run.id, Status.COMPLETED)
    wait_for_row(page, "table run", "completed", "3")
    assert page.evaluate("() => window.notReloaded === true"), "the page was reloaded"
    wait_for_app(page)

    # The row's selection box sits in the grid's first column; the run is the only row.
    grid = page.get_by_test_id("stDataFrame").first.locator("canvas").first
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 17)
    page.wait_for_url(re.compile(rf"/train\?.*run={run.id}"))
    wait_for_app(page)
    page.get_by_text("Completed after 3 epochs").first.wait_for()
    page.get_by_role("heading", name=re.compile("table run")).first.wait_for()
    screenshot(page, "runs_table_row_opens_train")
