"""A search with TPE and median pruning started from the Train page's form and trained by the server's
own workers: a losing trial is pruned as its epochs arrive, the page says why, its slot goes to the
next trial, and the Runs page shows which settings mattered.

The server's workers run `tests.fake_jobs.sweep_trial_job` (no TensorFlow): a trial's validation
accuracy is set by its learning rate alone, so the pruned trials are known to be the losing ones. The
pruning itself is the product's: the server's scheduler runs the sweep watcher, which reports each
epoch to Optuna and asks the worker to stop a trial below the median.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnnlab.runs.queue import studies, sweeps
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests import fake_jobs
from tests.e2e.conftest import TRACES_DRAWN, screenshot, wait_for_app
from tests.e2e.test_sweeps import open_default_search, tiny_setup_link
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EPOCHS = 5
# The cells of every table on the page, each table scrolled to its right end first: the grid's accessible
# copy holds the columns in view only, and a sweep's reasons are its last column.
RIGHTMOST_CELLS = """() => {
    for (const scroller of document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')) {
        scroller.scrollLeft = scroller.scrollWidth;
    }
    return [...document.querySelectorAll('[data-testid="stDataFrame"] td')].map(cell => cell.textContent.trim());
}"""


@pytest.fixture(scope="module", autouse=True)
def light_trials() -> Iterator[None]:
    """The module's server trains two trials at once with the light trial job (set before it starts)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_MAX_WORKERS", "2")
        patch.setenv("CNNLAB_WORKER_ENTRY", "tests.fake_jobs:sweep_trial_job")
        yield


def first_pruned(book: sweeps.Sweeps, sweep_id: str) -> RunRecord | None:
    """The sweep's first trial to end pruned, once one has."""
    return next((item.run for item in book.runs(sweep_id) if item.run.status == Status.PRUNED), None)


def test_a_search_from_the_train_page_prunes_a_losing_trial_says_why_and_goes_on(
    app_home: Path, app_url: str, page: Page
) -> None:
    page.goto(f"{app_url}/train?setup={tiny_setup_link(EPOCHS)}")
    wait_for_app(page)
    summary = open_default_search(page)
    assert "(TPE: each picked from what earlier trials scored)" in summary.inner_text()
    assert "a trial below the median of earlier trials after 2 epochs stops early" in summary.inner_text()
    wait_for_app(page)
    page.get_by_role("button", name="Start sweep").click()
    wait_for_app(page)
    page.get_by_text("its first 2 trial(s) are queued; the others follow as they end, 12 in all.").wait_for()
    book = sweeps.Sweeps(Store(app_home))
    (sweep,) = book.list_sweeps()
    assert sweep.search is not None and (sweep.search.sampler, sweep.search.pruner) == ("tpe", "median")
    page.get_by_role("link", name="Follow the sweep on the Runs page").click()
    # The Runs page's live view reruns every second while trials train: the checks below poll the page.
    page.wait_for_url(re.compile(f"/runs\\?sweep={sweep.id}"))

    # The server's watcher prunes a trial from the epochs its worker records.
    pruned = wait_until(lambda: first_pruned(book, sweep.id), "a trial pruned by the server's sweep watcher")
    assert isinstance(pruned, RunRecord) and pruned.reason is not None and pruned.ended_at is not None
    found = re.match(r"Pruned at epoch (\d+): below the median of earlier trials", pruned.reason)
    assert found is not None, pruned.reason
    assert 2 <= int(found.group(1)) < EPOCHS and pruned.last_epoch < EPOCHS
    # It was losing: trials that finished had better learning rates (the job's known accuracy).
    finished = [item.run for item in book.runs(sweep.id) if item.run.status == Status.COMPLETED]
    assert finished and fake_jobs.trial_quality(pruned.training().learning_rate) < max(
        fake_jobs.trial_quality(run.training().learning_rate) for run in finished
    )

    def row_says_why() -> bool:
        return pruned.reason in page.evaluate(RIGHTMOST_CELLS)

    wait_until(row_says_why, "the pruned trial's row with its reason on the Runs page")

    # The sweep goes on: its freed slot runs a trial asked for after the pruned one ended.
    def next_trial_runs() -> bool:
        return any(
            item.run.queued_at is not None
            and item.run.queued_at >= pruned.ended_at
            and item.run.started_at is not None
            for item in book.runs(sweep.id)
        )

    wait_until(next_trial_runs, "a trial asked after the pruned one ended, started in its slot")

    # The importances of the swept settings, computed by the server's watcher, drawn beside the history.
    def importances_drawn() -> bool:
        drawn = page.locator(".js-plotly-plot").evaluate_all(TRACES_DRAWN)
        return [["bar", len(sweep.settings)]] in drawn and any(
            traces and traces[0][0] == "scatter" for traces in drawn
        )

    wait_until(importances_drawn, "the importance bars and the history of the search")
    seen, found_importances = studies.stored_importances(studies.read(app_home, sweep.id))
    assert seen >= 2 and set(found_importances) == set(sweep.settings)
    screenshot(page, "sweep_pruning_runs_page")
