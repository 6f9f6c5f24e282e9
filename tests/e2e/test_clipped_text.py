"""Nothing clipped at 1280x720, a classroom projector's size: every page, in Chromium.

Before, the layer editor's buttons read "Move...", "Dupli...", "Rem...", the runs table hid its
duration and Model's table its receptive fields behind a sideways scroll, and the Data page's Shapes
selector showed one shape. One server and one browser session visit every page (the run-dependent
ones following a run recorded straight into the store, with curves, results and events, one of them
long) and collect each button, tab, metric or multiselect whose text is wider than its box, each
data frame header wider than its column, and each column past a data frame's right edge. The test
fails naming every one: page, element, text, and the widths.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnnlab import share, specs
from cnnlab.model import presets
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.e2e.conftest import go_to, screenshot, wait_for_app
from tests.made_runs import make_run, reached

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.light_jobs]

VIEWPORT = {"width": 1280, "height": 720}
SHAPES = specs.DataSettings(dataset="shapes", options={"count_per_class": 10})

# Every visible label whose text is wider than its box, and every data frame header wider than its
# column or past the frame's right edge. A label's box is the button, tab or tag, or any element
# inside it (the text's own element clips with an ellipsis). Data frames draw on a canvas: their
# columns (title, width) are read from the grid's React props and the titles measured in its font.
OVERFLOW_SCRIPT = """async () => {
    await document.fonts.ready;
    const problems = [];
    const visible = element => element.offsetParent !== null && element.getClientRects().length > 0;
    // Not an icon (a ligature in an icon font) nor a 1-pixel text for screen readers.
    const clipped = element => element.clientWidth > 1 && element.scrollWidth > element.clientWidth + 1
        && !element.closest('[data-testid="stIconMaterial"]');
    const labels = {
        "button": "button",
        "tab": '[role="tab"]',
        "multiselect's choices": '[data-testid="stMultiSelectTagsContainer"]',
        "metric": '[data-testid="stMetric"]',
    };
    for (const [kind, selector] of Object.entries(labels)) {
        for (const box of document.querySelectorAll(selector)) {
            const text = box.innerText.trim();
            if (!text || !visible(box)) continue;
            const inner = [box, ...box.querySelectorAll("*")].find(clipped);
            if (inner) problems.push({kind, text, shown: inner.clientWidth, needs: inner.scrollWidth});
        }
    }
    for (const frame of document.querySelectorAll('[data-testid="stDataFrame"]')) {
        const canvas = frame.querySelector('canvas[data-testid="data-grid-canvas"]');
        if (!visible(frame) || !canvas) continue;
        let fiber = canvas[Object.keys(canvas).find(key => key.startsWith("__reactFiber"))];
        while (fiber && !(fiber.memoizedProps && Array.isArray(fiber.memoizedProps.columns))) fiber = fiber.return;
        if (!fiber) {
            problems.push({kind: "data frame", text: "its columns could not be read", shown: 0, needs: 0});
            continue;
        }
        const style = getComputedStyle(frame.querySelector(".stDataFrameGlideDataEditor"));
        const font = style.getPropertyValue("--gdg-header-font-style") + " " + style.getPropertyValue("--gdg-font-family");
        const measure = document.createElement("canvas").getContext("2d");
        measure.font = font;
        const padding = 2 * parseFloat(style.getPropertyValue("--gdg-cell-horizontal-padding"));
        const shown = frame.querySelector(".dvn-scroller").clientWidth;
        let right = 0;
        for (const column of fiber.memoizedProps.columns) {
            right += column.width;
            if (!column.title) continue;  // The row marker.
            const needs = Math.ceil(measure.measureText(column.title).width + padding);
            if (needs > column.width) {
                problems.push({kind: "table header", text: column.title, shown: column.width, needs});
            }
            if (right > shown + 1) {
                problems.push({kind: "table column past the right edge", text: column.title, shown, needs: right});
            }
        }
    }
    return problems;
}"""


# True once no element on the page is still a skeleton waiting for its code.
LOADED_SCRIPT = """() => document.querySelectorAll('[data-testid="stSkeleton"]').length === 0"""


@pytest.fixture(scope="module")
def followed_run(app_home: Path) -> str:
    """A finished run recorded in the app's store before its server starts: three epochs of curves,
    a best validation accuracy and events, so the Home, Train and Runs pages show their tables."""
    store = Store(app_home)
    run = make_run(store, name="Recorded digits run", epochs=3)
    reached(store, run.id, Status.RUNNING)
    for epoch in (1, 2, 3):
        store.add_epoch_metrics(
            run.id,
            {
                "epoch": epoch,
                "loss": 1.0 / epoch,
                "accuracy": 0.3 * epoch,
                "val_loss": 1.2 / epoch,
                "val_accuracy": 0.32 * epoch,
                "learning_rate": 0.001,
                "epoch_seconds": 0.5,
            },
        )
    store.log_event(run.id, "Training finished after 3 epochs.")
    store.log_event(
        run.id,
        "Stopped by the user after 3 epochs; the best weights were kept from epoch 2 and the learning "
        "rate had been lowered twice by the schedule before the validation loss stopped improving.",
    )
    store.set_results(run.id, {"best_val_accuracy": 0.96})
    store.set_status(run.id, Status.COMPLETED)
    return run.id


def overflows(page: Page, name: str) -> list[str]:
    """What overflows its box on `page` now, one line each: page, element, text, widths."""
    # Streamlit draws a skeleton until an element's code has loaded (data frames, widgets), and data
    # frames draw their grid once scrolled into view: wait for both.
    page.wait_for_function(LOADED_SCRIPT, polling=100)
    for frame in page.get_by_test_id("stDataFrame").all():
        if frame.is_visible():
            frame.scroll_into_view_if_needed()
            frame.locator('canvas[data-testid="data-grid-canvas"]').wait_for()
    return [
        f"{name}: {found['kind']} {found['text']!r} needs {found['needs']} px, has {found['shown']} px"
        for found in page.evaluate(OVERFLOW_SCRIPT)
    ]


def test_no_label_or_header_is_clipped_at_1280_by_720(followed_run: str, app_url: str, page: Page) -> None:
    page.set_viewport_size(VIEWPORT)
    found: list[str] = []
    # One session throughout: the sidebar's links keep the followed run, and no page reloads the app.
    page.goto(f"{app_url}/train?run={followed_run}")
    page.get_by_role("tab", name="Event log").wait_for()
    wait_for_app(page)
    found += overflows(page, "Train")
    page.get_by_role("tab", name="Event log").click()
    wait_for_app(page)
    page.get_by_test_id("stDataFrame").filter(has_text="Training finished").wait_for(state="attached")
    found += overflows(page, "Train, event log")
    screenshot(page, "clipped_train_event_log")

    for name in ("Home", "Evaluate", "Predict", "Runs", "Learn"):
        go_to(page, name)
        found += overflows(page, name)

    go_to(page, "Model")
    layer = page.get_by_test_id("stExpander").filter(has_text="1. Conv2D")
    layer.locator("summary").click()
    layer.get_by_role("button").first.wait_for()
    found += overflows(page, "Model, a layer open")
    screenshot(page, "clipped_model")

    # The generated shapes (few of them, quick to draw), whose Shapes selector lists every chosen shape:
    # opened from a setup link, as a teacher would share it.
    shapes = share.Setup(SHAPES, presets.get("digits_default").spec, specs.TrainingSettings())
    page.goto(f"{app_url}/data?setup={share.encode(shapes)}")
    page.get_by_test_id("stMultiSelect").filter(has_text="Shapes").wait_for()
    wait_for_app(page)
    found += overflows(page, "Data (shapes)")
    page.get_by_role("tab", name="Class balance").click()
    found += overflows(page, "Data, class balance")
    screenshot(page, "clipped_data")

    assert not found, "Text overflows its box at 1280x720:\n" + "\n".join(found)
