"""A sweep in Chromium: started from the Train page, followed live on the Runs page, its best run opened.

The server's workers run the light sweep trial of tests/fake_jobs.py (`sweep_trial_job`: an epoch in
0.6 s, its validation accuracy set by its learning rate, no TensorFlow): the pages are what is checked
here. A sweep trained by Keras through the scheduler is tests/test_sweeps.py's real sweep.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnnlab import share
from cnnlab.errors import RunError
from cnnlab.model import presets
from cnnlab.runs.queue import studies, sweep_plan, sweep_watcher, sweeps, trials
from cnnlab.runs.queue.studies import Search
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.conftest import TRACES_DRAWN, screenshot, wait_for_app
from tests.e2e.test_live_stream import ScriptRuns
from tests.made_runs import make_run
from tests.test_sweep_search import Queued, learning_rates, template, trained
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


# Long enough for two reruns of a view that polled every second (POLL_SECONDS), as the sweep's did.
QUIET_MS = 2500
GRID_EPOCHS = 8  # Each of the grid's runs lasts about 5 s: still live when the Runs page opens.


@pytest.fixture(scope="module", autouse=True)
def two_light_workers() -> Iterator[None]:
    """The module's server runs two light sweep trials at once (the app server starts after this fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_MAX_WORKERS", "2")
        patch.setenv("CNNLAB_WORKER_ENTRY", "tests.fake_jobs:sweep_trial_job")
        yield


# The rows of every table on the page, as lists of cell texts (the grid's accessible copy of its cells).
EVERY_ROW = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] tr')].map(
    row => [...row.querySelectorAll('td, th')].map(cell => cell.textContent.trim()))"""


def tiny_setup_link(epochs: int = 1) -> str:
    """A setup link: the digits CNN on 120 digits for `epochs` epochs."""
    setup = share.Setup(
        DataSettings(subset=120), presets.get("digits_default").spec, TrainingSettings(epochs=epochs)
    )
    return share.encode(setup)


def open_default_search(page: Page) -> Locator:
    """On the Train page, open the sweep form and check that its recommended search is chosen, planned
    as 12 settings of the learning rate on a log range: that plan's summary."""
    page.get_by_text("Sweep: train several settings at once").click()
    recommended = page.get_by_role(
        "radio", name="Try settings for me and stop the losing ones early (recommended)"
    )
    assert recommended.is_checked()
    summary = page.get_by_text(re.compile(r"^12 settings of learning_rate in 0.0001..0.01 log")).first
    summary.wait_for()
    return summary


def ended_count(page: Page) -> int:
    caption = page.get_by_text(re.compile(r"^\d+ of 4 runs ended")).first
    caption.wait_for()
    found = re.match(r"(\d+) of 4", caption.inner_text())
    assert found is not None
    return int(found.group(1))


def test_a_sweep_of_four_runs_from_the_train_page_to_its_best_run(
    app_home: Path, app_url: str, page: Page
) -> None:
    page.goto(f"{app_url}/train?setup={tiny_setup_link(GRID_EPOCHS)}")
    wait_for_app(page)
    page.get_by_text("Sweep: train several settings at once").click()
    page.get_by_text("Every combination of the values I list").click()
    wait_for_app(page)
    for label, values in (("Learning rates", "1e-3, 1e-2"), ("Batch sizes", "16, 32")):
        field = page.get_by_label(label, exact=True)
        field.fill(values)
        field.press("Enter")
        wait_for_app(page)
    page.get_by_text("4 runs will be planned (2 x 2).").wait_for()
    screenshot(page, "sweep_form_on_train_page")
    page.get_by_role("button", name="Start sweep").click()
    page.get_by_text("Sweep “sweep” queued 4 runs.").wait_for()
    (sweep,) = sweeps.Sweeps(Store(app_home)).list_sweeps()
    page.get_by_role("link", name="Follow the sweep on the Runs page").click()
    page.wait_for_url(re.compile(f"/runs\\?sweep={sweep.id}"))
    wait_for_app(page)

    # Live: the rows change while the runs train, without a reload.
    assert ended_count(page) < 4
    page.get_by_text("4 of 4 runs ended").wait_for(timeout=240_000)
    page.get_by_text("learning_rate (log scale)").first.wait_for()
    wait_for_app(page)
    drawn = page.locator(".js-plotly-plot").evaluate_all(TRACES_DRAWN)
    assert [["parcoords", 4]] in drawn, drawn
    runs = sweeps.Sweeps(Store(app_home)).runs(sweep.id)
    assert len(runs) == 4 and all(item.best_val_accuracy is not None for item in runs)
    best = sweeps.best(runs)
    assert best is not None
    page.get_by_text(f"Best run: {best.run.name}").wait_for()
    screenshot(page, "sweep_runs_page")

    page.get_by_role("button", name="Open on the Train page").click()
    page.wait_for_url(re.compile(f"/train\\?run={best.run.id}"))
    wait_for_app(page)
    page.get_by_text(re.compile(rf"^Completed after {GRID_EPOCHS} epochs")).first.wait_for()
    screenshot(page, "sweep_best_run_on_train_page")


@contextlib.contextmanager
def both_slots_held(store: Store) -> Iterator[None]:
    """Two runs that hold the server's two slots (starting, a sleeping process as their live worker), so
    the sweep's trials stay queued and nothing trains; they end when the block does."""
    # The scheduler takes a process whose command line names CNN Lab for a live worker.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "cnnlab-slot-holder"])
    blockers = [make_run(store, name=f"slot {number}", status=Status.STARTING) for number in (1, 2)]
    stopping = threading.Event()

    def beat() -> None:
        while True:
            for blocker in blockers:
                store.heartbeat(blocker.id, holder.pid)
            if stopping.wait(2.0):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join()
        holder.kill()
        holder.wait()
        for blocker in blockers:
            with contextlib.suppress(RunError):
                store.set_status(blocker.id, Status.STOPPED)


def finished_search(store: Store) -> sweeps.SweepRecord:
    """A search of four recorded trials (no training): three finished, the fourth pruned at epoch 2."""
    search = Search(sampler="tpe", pruner="median", trials=4, parallel=4, ranges=(learning_rates(),))
    book = sweeps.Sweeps(store)
    sweep, queued = trials.start(
        template(), [sweep_plan.axis("batch_size", "16,32")], search, Queued(store), book, name="recorded"
    )
    with studies.turn(store.home, wait=True):  # The server's watcher follows the same sweep: take turns.
        for run, last in zip(queued[:3], (0.7, 0.9, 0.8), strict=True):
            trained(store, run.id, [0.5, 0.6, 0.65, last])
        trained(store, queued[3].id, [0.1, 0.2], Status.RUNNING)
        sweep_watcher.advance(book, book.get(sweep.id))
        trained(store, queued[3].id, [], Status.PRUNED)
        studies.store_importances(studies.read(store.home, sweep.id))  # As the server's watcher does.
    return book.get(sweep.id)


def test_the_default_search_starts_from_the_train_page_and_a_pruned_trial_says_why(
    app_home: Path, app_url: str, page: Page, new_page: Callable[[], Page]
) -> None:
    store = Store(app_home)
    script_runs = ScriptRuns(page)
    with both_slots_held(store):
        page.goto(f"{app_url}/train?setup={tiny_setup_link()}")
        wait_for_app(page)
        open_default_search(page)
        screenshot(page, "search_form_on_train_page")
        page.get_by_role("button", name="Start sweep").click()
        page.get_by_text(
            "its first 2 trial(s) are queued; the others follow as they end, 12 in all."
        ).wait_for()
        started = next(item for item in sweeps.Sweeps(store).list_sweeps() if item.search is not None)
        page.get_by_role("link", name="Follow the sweep on the Runs page").click()
        page.wait_for_url(re.compile(f"/runs\\?sweep={started.id}"))
        wait_for_app(page)
        page.get_by_text(
            re.compile(r"0 of 12 settings tried .*2 queued or training\); 10 more to come")
        ).wait_for()
        # While its trials wait nothing changes: the view follows the class stream and does not rerun.
        mark = script_runs.since(0)
        page.wait_for_timeout(QUIET_MS)
        assert script_runs.since(mark) == 0
        page.get_by_role("button", name=re.compile(r"^Stop the sweep")).dispatch_event("click")
        page.get_by_text(re.compile(r"the sweep was stopped\.")).first.wait_for()
        assert [item.run.status for item in sweeps.Sweeps(store).runs(started.id)] == [Status.STOPPED] * 2, [
            (run.name, run.status, run.reason) for run in store.list_runs()
        ]
        recorded = finished_search(store)  # While the slots are held, so the server trains none of it.

    page = new_page()  # A session of its own: the link opens the recorded search.
    page.goto(f"{app_url}/runs?sweep={recorded.id}")
    wait_for_app(page)
    page.get_by_text(re.compile(r"4 of 4 settings tried \(1 stopped early as losing")).wait_for()

    def pruned_row() -> bool:
        return any(
            "pruned" in row and any(cell.startswith("Pruned at epoch 2: below the median") for cell in row)
            for row in page.evaluate(EVERY_ROW)
        )

    wait_until(
        pruned_row, "the pruned trial's row with its reason"
    )  # The grid draws its rows after the script.

    def charts_drawn() -> bool:
        drawn = page.locator(".js-plotly-plot").evaluate_all(TRACES_DRAWN)
        return [["bar", 2]] in drawn and any(traces and traces[0][0] == "scatter" for traces in drawn)

    wait_until(charts_drawn, "the importance bars and the history of the search")
    screenshot(page, "search_runs_page")
