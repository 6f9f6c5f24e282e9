"""The learner's main path at 1280x720 (a classroom projector), in Chromium, with a real one-click run.

Home's one-click run trains the default digits CNN in the server's worker. The Train page shows its
status, its controls and its first curve without scrolling (at 1400x900 too); once the run has saved
a checkpoint it is stopped, so that the rest of the walk is quick. It stays followed through Model
(where an import with an unknown layer says so under the Import button) and back to Train; Evaluate
shows it (a clicked confusion cell's images on screen), Predict explains a digit drawn with the
mouse, and Learn applies its real kernels.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

from cnnlab.model import presets
from cnnlab.store.run_store import Store
from cnnlab.ui.pages.evaluate import evaluate_view
from tests.e2e.conftest import go_to, screenshot, wait_for_app
from tests.e2e.test_canvas import stroke
from tests.e2e.test_evaluate_predict import ROW_PIXELS
from tests.waiting import wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROJECTOR = {"width": 1280, "height": 720}
LAPTOP = {"width": 1400, "height": 900}
TRAINING = re.compile(r"^Training: epoch \d+ of \d+")
# True when the select box labelled `label` shows the run (its choices name the run's id).
PICKED_SCRIPT = """([label, run]) => [...document.querySelectorAll('[data-testid="stSelectbox"]')].some(
    box => box.innerText.includes(label)
        && (box.innerText.includes(run) || [...box.querySelectorAll('input')].some(i => i.value.includes(run))))"""
# The Loss chart: drawn in the browser from the run's stream while it trains, by Streamlit once it ended.
LOSS_CHART = (
    ".cnnlab-chart[data-metric='loss'].js-plotly-plot:visible, .st-key-loss_curve .js-plotly-plot:visible"
)
ACCURACY_CHART = ".cnnlab-chart[data-metric='accuracy'].js-plotly-plot:visible, .st-key-accuracy_curve .js-plotly-plot:visible"
FITS_SCRIPT = """element => { const box = element.getBoundingClientRect();
    return box.height > 0 && box.left >= 0 && box.right <= window.innerWidth; }"""
STOPPED = re.compile(r"^Stopped after epoch \d+")
FOLLOWS_SCRIPT = "(run) => new URL(location.href).searchParams.get('run') === run"


@pytest.fixture
def projector(page: Page) -> Page:
    """A page as a classroom projector shows it: 1280x720."""
    page.set_viewport_size(PROJECTOR)
    return page


def url_run(page: Page) -> str | None:
    """The run id the page's address names, if any."""
    values = parse_qs(urlparse(page.url).query).get("run")
    return values[-1] if values else None


def on_screen(page: Page, element: Locator) -> None:
    """Fail unless the element lies wholly within the window as the page is (no scrolling).

    Measured in the page in one step: the live view redraws its charts at every tick, so an element
    found first and measured after may be gone in between. A chart being laid out again (after a
    resize of the window) is 0 px tall for a moment: the element is measured once it is drawn.
    """

    def drawn_box() -> dict[str, float] | None:
        box: dict[str, float] = element.evaluate(
            "e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; }"
        )
        return box if box["width"] > 0 and box["height"] > 0 else None

    box = wait_until(drawn_box, "the element to be drawn (more than 0 px wide and tall)", deadline_seconds=15)
    assert isinstance(box, dict)
    size = page.viewport_size
    assert size is not None
    assert box["x"] >= 0 and box["y"] >= 0, box
    assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"], box


def import_with_an_unknown_layer(page: Page) -> None:
    """On the Model page: import JSON with a layer CNN Lab does not know; the result is said under the
    Import button, on screen, and the JSON tab stays open."""
    spec = presets.get("digits_default").spec.to_dict()
    spec["layers"].insert(1, {"type": "Lambda", "function": "x * 2"})
    json_tab = page.get_by_role("tab", name="JSON")
    json_tab.click()
    field = page.get_by_label("Import a model (paste its JSON)")
    field.fill(json.dumps(spec))
    button = page.get_by_role("button", name="Import", exact=True)
    # The hardest place for feedback: the button at the bottom edge of the window, the result under it.
    button.evaluate("button => button.scrollIntoView({block: 'end'})")
    button.click()
    wait_for_app(page)
    result = page.get_by_test_id("stAlert").filter(has_text="Layer 2 was left out")
    result.wait_for()
    # Right under the button (not at the top of the page), and scrolled into sight.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stAlert]')].some(alert =>"
        " alert.innerText.includes('Layer 2 was left out') && alert.getBoundingClientRect().bottom <= innerHeight)",
        polling=50,
        timeout=10_000,
    )
    on_screen(page, result)
    assert json_tab.get_attribute("aria-selected") == "true"
    screenshot(page, "main_path_3_model_import", full_page=False)


def click_a_confusion_cell(page: Page) -> None:
    """On Evaluate: click the confusion table's cell (true 3, predicted 3); its images are on screen."""
    table = page.get_by_test_id("stDataFrame").first
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    assert box is not None
    column_width = (box["width"] - evaluate_view.INDEX_WIDTH) / 10
    # The pointer crosses the table on its way to the cell, as a hand's does (the grid takes a click where
    # it saw the pointer move).
    table.hover(position={"x": evaluate_view.INDEX_WIDTH + 2.5 * column_width, "y": ROW_PIXELS * 3.5})
    table.click(position={"x": evaluate_view.INDEX_WIDTH + 3.5 * column_width, "y": ROW_PIXELS * 4.5})
    wait_for_app(page)
    page.get_by_text(re.compile(r"\d+ correct image\(s\): true 3, predicted 3")).first.wait_for()
    on_screen(page, page.locator(".st-key-evaluate_cell_images img").first)


def test_the_main_path_on_a_projector(app_url: str, app_home: Path, projector: Page) -> None:
    page = projector
    store = Store(app_home)
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("button", name="Train a digits classifier").click()
    wait_until(lambda: len(store.list_runs()) == 1, "the one-click run to be recorded")
    run_id = store.list_runs()[0].id
    page.wait_for_function(FOLLOWS_SCRIPT, arg=run_id)  # The Train page follows the one-click run.
    status = page.get_by_text(TRAINING).first
    status.wait_for(timeout=60_000)
    # While the run trains, the Loss chart is drawn in the browser from the run's stream.
    loss = page.locator(LOSS_CHART).first
    loss.wait_for()
    wait_for_app(page)
    screenshot(page, "main_path_1_train", full_page=False)
    on_screen(page, status)
    for control in ("Stop", "Pause", "Continue", "Fork"):
        on_screen(page, page.get_by_role("button", name=control, exact=True).first)
    on_screen(page, loss)
    # Its neighbour fits its column too (drawn before its first point, it kept plotly's 700 px), once
    # the charts have settled after their first points.
    accuracy = page.locator(ACCURACY_CHART).first
    page.wait_for_function(FITS_SCRIPT, arg=accuracy.element_handle(), timeout=15_000)
    on_screen(page, accuracy)
    page.set_viewport_size(LAPTOP)  # And on a laptop's 1400x900.
    for element in (status, page.get_by_role("button", name="Fork", exact=True).first, loss, accuracy):
        on_screen(page, element)
    page.set_viewport_size(PROJECTOR)

    # Stopped once it has saved a checkpoint, so that the rest of the walk is quick.
    wait_until(lambda: store.get_run(run_id).last_epoch >= 1, "the run's first epoch")
    page.get_by_role("button", name="Stop", exact=True).first.click()
    page.get_by_text(STOPPED).first.wait_for()
    wait_for_app(page)
    screenshot(page, "main_path_2_stopped", full_page=False)

    go_to(page, "Model")
    assert url_run(page) == run_id
    import_with_an_unknown_layer(page)
    go_to(page, "Train")
    assert url_run(page) == run_id
    page.get_by_text(STOPPED).first.wait_for()  # The same run's live view, not "Start a run".
    page.locator(LOSS_CHART).first.wait_for()
    screenshot(page, "main_path_4_train_again", full_page=False)

    go_to(page, "Evaluate")
    assert url_run(page) == run_id
    page.wait_for_function(PICKED_SCRIPT, arg=["Run", run_id])  # The followed run, not the newest one.
    page.get_by_test_id("stMetric").filter(has_text="accuracy").first.wait_for()
    click_a_confusion_cell(page)
    screenshot(page, "main_path_5_evaluate", full_page=False)

    go_to(page, "Predict")
    assert url_run(page) == run_id
    page.get_by_text("Add an image above").first.wait_for()
    page.get_by_role("tab", name="Draw").click()
    page.get_by_text(re.compile(r"Draw one digit, large")).first.wait_for()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for()
    canvas.scroll_into_view_if_needed()  # The mouse draws only on what the window shows.
    stroke(page, canvas, [(0.25, 0.2), (0.5, 0.2), (0.75, 0.2)])
    stroke(page, canvas, [(0.75, 0.2), (0.6, 0.5), (0.42, 0.85)])
    page.get_by_role("heading", name=re.compile(r"^drawing: ")).first.wait_for()
    page.get_by_text("Grad-CAM: where it looked").first.wait_for()
    page.get_by_role("heading", name=re.compile(r"^drawing: ")).first.scroll_into_view_if_needed()
    screenshot(page, "main_path_6_predict", full_page=False)

    go_to(page, "Learn")
    page.wait_for_function(PICKED_SCRIPT, arg=["Run and checkpoint", run_id])  # The followed run's kernels.
    checked = page.get_by_text(re.compile(r"^Checked against Keras' own output of this layer")).first
    checked.wait_for()
    checked.scroll_into_view_if_needed()
    screenshot(page, "main_path_7_learn", full_page=False)
