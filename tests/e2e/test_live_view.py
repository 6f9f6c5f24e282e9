"""The live view in Chromium costs little: only the open tab's charts exist, and Stop answers at once.

The followed run trains in a real worker process running the light job of tests/fake_jobs.py (it
records batches and obeys stop like training does, without starting TensorFlow), so the browser
checks take seconds. A Keras run's stop is followed end to end in test_journey.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.conftest import screenshot, wait_for_app
from tests.fake_jobs import RELEASE_FILE
from tests.test_pages import _recorded_run, new_run
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.light_jobs]

CHARTS = "document.querySelectorAll('.js-plotly-plot').length"


def chart_titles(page: Page) -> set[str]:
    """The titles of the plotly charts drawn in the page (the theme wraps them in <b> tags)."""
    script = """() => [...document.querySelectorAll('.js-plotly-plot')]
        .map(el => (el._fullLayout && el._fullLayout.title && el._fullLayout.title.text) || '')"""
    return {re.sub(r"</?b>", "", title) for title in page.evaluate(script)}


def wait_for_charts(page: Page, count: int) -> None:
    """Wait until the page holds exactly `count` plotly charts (drawing takes a while on a busy machine)."""
    page.wait_for_function(f"{CHARTS} === {count}", timeout=90_000)


def test_only_the_open_tab_is_drawn(app_url: str, app_home: Path, page: Page) -> None:
    run_id = _recorded_run(Store(app_home))
    page.goto(f"{app_url}/train?run={run_id}")
    # The first page of a new server takes longest (the Train page's imports): allow for a busy machine.
    page.get_by_text(re.compile(r"Stopped after epoch 2")).first.wait_for(timeout=120_000)
    wait_for_charts(page, 3)
    assert {"Loss", "Accuracy", "Learning rate"} == chart_titles(page)
    page.get_by_role("tab", name="Confusion and predictions").click()
    wait_for_app(page)
    page.get_by_text("Predictions on the sample panel").wait_for()
    # The curves are gone from the page, not hidden: two charts, the confusion matrix and predictions.
    wait_for_charts(page, 2)
    assert not {"Loss", "Accuracy", "Learning rate"} & chart_titles(page)
    page.get_by_role("tab", name="Event log").click()
    wait_for_app(page)
    wait_for_charts(page, 0)
    screenshot(page, "live_view_event_log_only")


def test_stop_is_acknowledged_at_once(app_url: str, app_home: Path, page: Page) -> None:
    store = Store(app_home)
    run = new_run(store, "followed live", epochs=500, status=Status.STARTING)
    # The worker's last batch lasts until the test releases it, so the acknowledgement is on screen
    # before the run can end, however busy the machine.
    worker = LocalProcessExecutor(app_home, entry="tests.fake_jobs:gated_stop_job", threads=1, warm=False)
    try:
        worker.submit(run.id)
        page.goto(f"{app_url}/train?run={run.id}")
        page.get_by_text(re.compile(r"^Training: epoch \d+ of 500")).first.wait_for()
        page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop", exact=True).click()
        # Said on screen in the rerun of the click, with the request already on its way to the worker.
        page.get_by_text(re.compile(r"^Stopping: the run ends after its current batch")).first.wait_for()
        stopping = page.get_by_role("button", name="Stopping…")
        assert stopping.count() == 0 or stopping.is_disabled()
        wait_until(lambda: store.get_run(run.id).control == "stop", "the stop request to reach the store")
        (store.run_folder(run.id) / RELEASE_FILE).touch()
        # The worker stops after its batch; a tick shows the run stopped, and the polling ends.
        page.get_by_text(re.compile(r"Stopped after epoch \d+")).first.wait_for()
        assert store.get_run(run.id).status == Status.STOPPED
        screenshot(page, "live_view_stopped")
    finally:
        worker.cancel(run.id)
