"""The run a learner follows stays followed across pages, a refresh, and until another one starts (Chromium).

Before, visiting Model and clicking Train in the sidebar dropped `?run=` from the address: Train said
"Start a run to watch..." while the run was still training, and Evaluate opened the newest run. The
followed run trains in a real worker process running the light job of tests/fake_jobs.py (it records
batches until stopped, without TensorFlow); the second run is started with Train's own button.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

from cnnlab.runs.queue.executor import LocalProcessExecutor
from cnnlab.store import statuses
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.conftest import go_to, screenshot, wait_for_app
from tests.fake_jobs import RELEASE_FILE
from tests.test_pages import new_run
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.e2e]

TRAINING = re.compile(r"^Training: epoch \d+ of 500")


def url_run(page: Page) -> str | None:
    """The run id the page's address names, if any."""
    values = parse_qs(urlparse(page.url).query).get("run")
    return values[-1] if values else None


def sidebar_card(page: Page) -> Locator:
    """The sidebar card of the followed run."""
    return page.get_by_test_id("stSidebar").locator(".st-key-followed_run_card")


def test_the_followed_run_stays_until_another_starts(app_url: str, app_home: Path, page: Page) -> None:
    store = Store(app_home)
    run = new_run(store, "Followed digits run", epochs=500, status=Status.STARTING)
    worker = LocalProcessExecutor(app_home, entry="tests.fake_jobs:gated_stop_job", threads=1, warm=False)
    try:
        worker.submit(run.id)
        # A shared link opens the run it names, which becomes the followed one.
        page.goto(f"{app_url}/train?run={run.id}")
        page.get_by_text(TRAINING).first.wait_for(timeout=120_000)
        wait_for_app(page)

        go_to(page, "Model")
        assert url_run(page) == run.id  # Page links keep the run.
        sidebar_card(page).get_by_text("Followed digits run").wait_for()
        # The card follows the run on a page that does not: its epoch moves on by itself.
        progress = sidebar_card(page).get_by_text(re.compile(r"^Running · epoch \d+ of 500"))
        before = progress.inner_text()
        wait_until(lambda: progress.inner_text() != before, "the sidebar card to show a later epoch")
        screenshot(page, "followed_run_model")

        go_to(page, "Train")
        page.get_by_text(TRAINING).first.wait_for()
        assert page.get_by_text("Start a run to watch").count() == 0
        assert url_run(page) == run.id
        # There the live view follows the run's stream, and the card says its status without polling.
        sidebar_card(page).get_by_text("Running", exact=True).wait_for()
        screenshot(page, "followed_run_train_again")

        # Evaluate names the same run: it has saved no model yet, and no other run is opened instead.
        go_to(page, "Evaluate")
        page.get_by_text(re.compile(r"Followed digits run.*has not saved a model yet")).first.wait_for()
        assert url_run(page) == run.id
        screenshot(page, "followed_run_evaluate")

        # A refresh keeps it: the address names it.
        page.reload()
        wait_for_app(page)
        page.get_by_text(re.compile(r"Followed digits run.*has not saved a model yet")).first.wait_for()
        sidebar_card(page).get_by_text("Followed digits run").wait_for()

        # The card's link goes back to the live view.
        sidebar_card(page).get_by_role("link", name="Watch it live").click()
        wait_for_app(page)
        page.get_by_text(TRAINING).first.wait_for()
        assert url_run(page) == run.id

        # A second run started on Train becomes the followed one (the settings are folded meanwhile).
        page.get_by_role("button", name="Edit settings").click()
        page.get_by_role("button", name="Start training").click()
        wait_until(lambda: len(store.list_runs()) == 2, "the second run to be recorded")
        second = next(other for other in store.list_runs() if other.id != run.id)
        wait_for_app(page)
        wait_until(lambda: url_run(page) == second.id, "the address to name the second run")
        sidebar_card(page).get_by_text(second.name, exact=True).wait_for()
        screenshot(page, "followed_run_second")
        go_to(page, "Data")
        assert url_run(page) == second.id
    finally:
        for recorded in store.list_runs(status=statuses.LIVE):
            store.request_control(recorded.id, "stop")  # The second run trains Keras: end it.
        (store.run_folder(run.id) / RELEASE_FILE).touch()
        worker.cancel(run.id)
