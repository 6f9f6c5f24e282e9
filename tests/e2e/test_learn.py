"""The Learn page in Chromium: the step slider moves the window and rewrites the sum; a screenshot per section."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, screenshot, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WINDOW_STROKE = "rgb(255, 127, 14)"  # figures.learn.WINDOW_COLOR as the browser reports it.
# Streamlit 1.67 draws sliders with react-aria: the thumb is a visually hidden range input with the
# implicit role "slider"; older versions put role="slider" on the thumb itself. Either is accepted.
SLIDER_THUMB = '[data-testid="stSlider"] [role="slider"], [data-testid="stSlider"] input[type="range"]'


def window_path(page: object) -> str:
    """The SVG path of the orange window rectangle in the first chart (the worked example's input)."""
    return page.evaluate(  # type: ignore[attr-defined]
        """(stroke) => {
            const chart = document.querySelectorAll('[data-testid="stPlotlyChart"]')[0];
            const paths = [...chart.querySelectorAll('.shapelayer path')];
            const window = paths.find((path) => path.style.stroke === stroke);
            return window ? window.getAttribute('d') : '';
        }""",
        WINDOW_STROKE,
    )


def first_sum(page: object) -> str:
    return page.locator('[data-testid="stCode"]').first.inner_text()  # type: ignore[attr-defined]


def settle(page: object, changed: object = None, timeout: float = 30.0) -> None:
    """Wait for the rerun a key press started, then until `changed()` is true (when given)."""
    page.wait_for_timeout(400)  # type: ignore[attr-defined]
    wait_for_app(page)
    deadline = time.monotonic() + timeout
    while changed is not None and not changed() and time.monotonic() < deadline:  # type: ignore[operator]
        page.wait_for_timeout(200)  # type: ignore[attr-defined]
    wait_for_app(page)


def show_whole_page(page: object) -> None:
    """Make the window as tall as the app: Streamlit scrolls inside its main block, which a
    full-page screenshot would otherwise cut at the window's height."""
    height = page.evaluate(  # type: ignore[attr-defined]
        "document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
    )
    page.set_viewport_size({"width": 1400, "height": int(min(height, 12000)) + 50})  # type: ignore[attr-defined]
    page.wait_for_timeout(800)  # type: ignore[attr-defined]
    wait_for_app(page)


def section_screenshot(page: object, name: str, anchor: str, next_anchor: str | None) -> None:
    """Save the part of the page from one section's header to the next one's as NAME_section.png."""
    top = page.locator(f"#{anchor}").bounding_box()  # type: ignore[attr-defined]
    scroll = page.evaluate("window.scrollY")  # type: ignore[attr-defined]
    if next_anchor is None:
        bottom = page.evaluate("document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    else:
        bottom = page.locator(f"#{next_anchor}").bounding_box()["y"] + scroll  # type: ignore[attr-defined]
    y = top["y"] + scroll - 10
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(  # type: ignore[attr-defined]
        path=str(ARTIFACTS / f"{name}_section.png"), full_page=True,
        clip={"x": 0, "y": y, "width": 1400, "height": max(bottom - y, 50)},
    )  # fmt: skip


def test_slider_moves_the_window_and_rewrites_the_sum(app_url: str, page: object) -> None:
    page.goto(f"{app_url}/learn")  # type: ignore[attr-defined]
    wait_for_app(page)
    page.wait_for_selector('[data-testid="stPlotlyChart"] .shapelayer path')  # type: ignore[attr-defined]
    assert "Learn" in page.locator("h1").first.inner_text()  # type: ignore[attr-defined]
    show_whole_page(page)
    screenshot(page, "learn_page")
    page.set_viewport_size({"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    before_path, before_sum = window_path(page), first_sum(page)
    assert before_path and before_sum.endswith("= 0")

    thumb = page.locator(SLIDER_THUMB).first  # type: ignore[attr-defined]
    thumb.focus()
    page.keyboard.press("ArrowRight")  # type: ignore[attr-defined]
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


def test_padding_same_and_presentation_mode(app_url: str, page: object) -> None:
    page.goto(f"{app_url}/learn")  # type: ignore[attr-defined]
    wait_for_app(page)
    page.get_by_text("same", exact=True).click()  # type: ignore[attr-defined]
    settle(page, lambda: page.get_by_text("Keras aims for ceil").count() > 0)  # type: ignore[attr-defined]
    assert page.get_by_text("Keras aims for ceil(6 / 1) = 6").count() == 1  # type: ignore[attr-defined]
    # The zero border shows in the explore section's input chart.
    assert page.locator('[data-testid="stPlotlyChart"]').nth(3).get_by_text("grey: zero padding").count() == 1  # type: ignore[attr-defined]
    show_whole_page(page)
    section_screenshot(page, "learn_padding_same", "controls", "relu-pooling")

    page.get_by_text("Presentation mode").click()  # type: ignore[attr-defined]
    settle(page, lambda: not page.locator('[data-testid="stSidebar"]').is_visible())  # type: ignore[attr-defined]
    assert not page.locator('[data-testid="stSidebar"]').is_visible()  # type: ignore[attr-defined]
    size = page.evaluate(  # type: ignore[attr-defined]
        "parseFloat(getComputedStyle(document.querySelector('[data-testid=\"stMarkdownContainer\"] p')).fontSize)"
    )
    assert size >= 24
    show_whole_page(page)
    screenshot(page, "learn_presentation")

    page.get_by_text("Predict, then reveal").click()  # type: ignore[attr-defined]
    settle(page, lambda: page.get_by_text("Check my answer").count() > 0)  # type: ignore[attr-defined]
    show_whole_page(page)
    section_screenshot(page, "learn_predict", "controls", "relu-pooling")


def _server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CNNLAB_HOME of this module's server: the newest `cnnlab_home*` folder (app_url makes it)."""
    homes = sorted(tmp_path_factory.getbasetemp().glob("cnnlab_home*"), key=lambda path: path.stat().st_mtime)
    return homes[-1]


def test_real_model_section_with_a_trained_run(
    app_url: str, page: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import keras
    from sklearn.datasets import load_digits

    from cnnlab.runs.store import Store

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
    store = Store(_server_home(tmp_path_factory))
    run = store.create_run(
        spec={"name": "digits"}, data_settings={}, training_settings={}, name="digits cnn", status="completed"
    )
    store.save_checkpoint(run.id, "latest", 3, model.save)

    page.goto(f"{app_url}/learn")  # type: ignore[attr-defined]
    wait_for_app(page, timeout=120_000)
    page.get_by_text("Digits sample").click()  # type: ignore[attr-defined]
    settle(page, lambda: page.get_by_text("Checked against Keras").count() > 0, timeout=120)  # type: ignore[attr-defined]
    assert page.get_by_text("Checked against Keras").count() == 1  # type: ignore[attr-defined]
    assert page.get_by_text("receptive field").count() >= 1  # type: ignore[attr-defined]
    show_whole_page(page)
    section_screenshot(page, "learn_real_model", "real-model", None)
    screenshot(page, "learn_real_model_page")
