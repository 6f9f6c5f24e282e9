"""The Learn page in Chromium: the step slider moves the window and rewrites the sum; a screenshot per section."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import ARTIFACTS, SCREENSHOTS, screenshot, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.light_jobs]

WINDOW_STROKE = "rgb(255, 127, 14)"  # figures.learn.WINDOW_COLOR as the browser reports it.
# Streamlit 1.67 draws sliders with react-aria: the thumb is a visually hidden range input with the
# implicit role "slider"; older versions put role="slider" on the thumb itself. Either is accepted.
SLIDER_THUMB = '[data-testid="stSlider"] [role="slider"], [data-testid="stSlider"] input[type="range"]'


WINDOW_PATH_SCRIPT = """(stroke) => {
    const chart = document.querySelectorAll('[data-testid="stPlotlyChart"]')[0];
    const paths = chart ? [...chart.querySelectorAll('.shapelayer path')] : [];
    const window = paths.find((path) => path.style.stroke === stroke);
    return window ? window.getAttribute('d') : '';
}"""


def window_path(page: Page) -> str:
    """The SVG path of the orange window rectangle in the first chart (the worked example's input),
    once the chart has drawn it: plotly draws a chart again after the window is resized, and for a
    moment it has no shapes."""
    page.wait_for_function(WINDOW_PATH_SCRIPT, arg=WINDOW_STROKE, timeout=15_000)
    return str(page.evaluate(WINDOW_PATH_SCRIPT, WINDOW_STROKE))


def first_sum(page: Page) -> str:
    return page.locator('[data-testid="stCode"]').first.inner_text()


def settle(page: Page, changed: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until `changed()` is true (the rerun a click or key press started has shown its result),
    then until the script has finished; fail if nothing changed within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not changed():
        if time.monotonic() > deadline:
            pytest.fail(f"The page did not change within {timeout:g} s of the click or key press.")
        page.wait_for_timeout(200)  # Lets the browser work between two checks.
    wait_for_app(page)


def show_whole_page(page: Page) -> None:
    """Make the window as tall as the app: Streamlit scrolls inside its main block, which a
    full-page screenshot would otherwise cut at the window's height. Only when screenshots are taken."""
    if not SCREENSHOTS:
        return
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": int(min(height, 12000)) + 50})
    page.wait_for_timeout(800)  # Only for the screenshots: lets the charts redraw at the new size.
    wait_for_app(page)


def section_screenshot(page: Page, name: str, anchor: str, next_anchor: str | None) -> None:
    """Check that the section's header (and the next one's) are on the page, and save the part of
    the page between them as NAME_section.png when screenshots are taken."""
    top = page.locator(f"#{anchor}").bounding_box()
    assert top is not None, f"the section header #{anchor} is not on the page"
    scroll = float(page.evaluate("window.scrollY"))
    if next_anchor is None:
        bottom = float(page.evaluate("document.documentElement.scrollHeight"))
    else:
        following = page.locator(f"#{next_anchor}").bounding_box()
        assert following is not None, f"the section header #{next_anchor} is not on the page"
        bottom = following["y"] + scroll
    if not SCREENSHOTS:
        return
    y = top["y"] + scroll - 10
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(ARTIFACTS / f"{name}_section.png"),
        full_page=True,
        clip={"x": 0, "y": y, "width": 1400, "height": max(bottom - y, 50)},
    )


def test_slider_moves_the_window_and_rewrites_the_sum(app_url: str, page: Page) -> None:
    page.goto(f"{app_url}/learn")
    wait_for_app(page)
    page.wait_for_selector('[data-testid="stPlotlyChart"] .shapelayer path')
    assert "Learn" in page.locator("h1").first.inner_text()
    show_whole_page(page)
    screenshot(page, "learn_page")
    page.set_viewport_size({"width": 1400, "height": 1000})
    before_path, before_sum = window_path(page), first_sum(page)
    assert before_path and before_sum.endswith("= 0")

    thumb = page.locator(SLIDER_THUMB).first
    thumb.focus()
    page.keyboard.press("ArrowRight")
    settle(page, lambda: first_sum(page) != before_sum)
    after_path, after_sum = window_path(page), first_sum(page)
    assert after_sum != before_sum, "the written sum did not change"
    assert after_path and after_path != before_path, "the window did not move"
    assert (thumb.get_attribute("aria-valuenow") or thumb.get_attribute("aria-valuetext")) == "2"
    show_whole_page(page)
    screenshot(page, "learn_after_step")
    section_screenshot(page, "learn_example", "worked-example", "controls")
    section_screenshot(page, "learn_controls", "controls", "relu-pooling")
    section_screenshot(page, "learn_relu_pooling", "relu-pooling", "real-model")
    section_screenshot(page, "learn_real_model", "real-model", None)


def test_padding_same_and_presentation_mode(app_url: str, page: Page) -> None:
    page.goto(f"{app_url}/learn")
    wait_for_app(page)
    page.get_by_text("same", exact=True).click()
    settle(page, lambda: page.get_by_text("Keras aims for ceil").count() > 0)
    assert page.get_by_text("Keras aims for ceil(6 / 1) = 6").count() == 1
    # The zero border shows in the explore section's input chart.
    zero_padding = page.locator('[data-testid="stPlotlyChart"]').nth(3).get_by_text("grey: zero padding")
    zero_padding.wait_for()  # Plotly draws the chart's text after the script has finished.
    assert zero_padding.count() == 1
    show_whole_page(page)
    section_screenshot(page, "learn_padding_same", "controls", "relu-pooling")

    page.get_by_text("Presentation mode").click()
    settle(page, lambda: not page.locator('[data-testid="stSidebar"]').is_visible())
    assert not page.locator('[data-testid="stSidebar"]').is_visible()
    size = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('[data-testid=\"stMarkdownContainer\"] p')).fontSize)"
    )
    assert size >= 24
    show_whole_page(page)
    screenshot(page, "learn_presentation")

    page.get_by_text("Predict, then reveal").click()
    settle(page, lambda: page.get_by_text("Check my answer").count() > 0)
    show_whole_page(page)
    section_screenshot(page, "learn_predict", "controls", "relu-pooling")


def test_real_model_section_with_a_trained_run(app_url: str, app_home: Path, page: Page) -> None:
    import keras
    from sklearn.datasets import load_digits

    from cnnlab.run_request import RunRequest
    from cnnlab.specs import DataSettings, LayerSpec, ModelSpec, TrainingSettings
    from cnnlab.store.run_store import Store
    from cnnlab.store.statuses import Status

    digits = load_digits()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv_edges"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_shapes"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.images[..., None] / 16.0, digits.target, epochs=3, batch_size=64, verbose=0)
    store = Store(app_home)
    run = store.create_run(
        RunRequest(
            spec=ModelSpec((8, 8, 1), (LayerSpec("Flatten"),), name="digits"),
            data_settings=DataSettings(),
            training_settings=TrainingSettings(),
            name="digits cnn",
        ),
        status=Status.COMPLETED,
    )
    store.save_checkpoint(run.id, "latest", 3, model.save)

    page.goto(f"{app_url}/learn")
    wait_for_app(page, timeout=120_000)
    page.get_by_text("Digits sample").click()
    settle(page, lambda: page.get_by_text("Checked against Keras").count() > 0, timeout=120)
    assert page.get_by_text("Checked against Keras").count() == 1
    assert page.get_by_text("receptive field").count() >= 1
    show_whole_page(page)
    section_screenshot(page, "learn_real_model", "real-model", None)
    screenshot(page, "learn_real_model_page")
