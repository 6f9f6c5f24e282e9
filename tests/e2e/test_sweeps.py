"""A sweep in Chromium: started from the Train page, followed live on the Runs page, its best run opened."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnnlab import share
from cnnlab.model import presets
from cnnlab.runs.queue import sweeps
from cnnlab.specs import DataSettings, TrainingSettings
from cnnlab.store.run_store import Store
from tests.e2e.conftest import screenshot, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The lines of each plotly chart as the browser drew them (Plotly 6 ships arrays as base64, so not `data`).
LINES_DRAWN = (
    "elements => elements.map(element => element._fullData.map(trace => [trace.type, trace._length]))"
)


@pytest.fixture(scope="module", autouse=True)
def two_workers() -> Iterator[None]:
    """The module's server trains two runs at once (the app server starts after this fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNNLAB_MAX_WORKERS", "2")
        yield


def tiny_setup_link() -> str:
    """A setup link: the digits CNN on 120 digits for one epoch."""
    setup = share.Setup(
        DataSettings(subset=120), presets.get("digits_default").spec, TrainingSettings(epochs=1)
    )
    return share.encode(setup)


def ended_count(page: Page) -> int:
    caption = page.get_by_text(re.compile(r"^\d+ of 4 runs ended")).first
    caption.wait_for()
    found = re.match(r"(\d+) of 4", caption.inner_text())
    assert found is not None
    return int(found.group(1))


def test_a_sweep_of_four_runs_from_the_train_page_to_its_best_run(
    app_home: Path, app_url: str, page: Page
) -> None:
    page.goto(f"{app_url}/train?setup={tiny_setup_link()}")
    wait_for_app(page)
    page.get_by_text("Sweep: train several settings at once").click()
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
    drawn = page.locator(".js-plotly-plot").evaluate_all(LINES_DRAWN)
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
    page.get_by_text(re.compile(r"^Completed after 1 epochs")).first.wait_for()
    screenshot(page, "sweep_best_run_on_train_page")
