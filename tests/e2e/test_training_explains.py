"""Training that explains itself, in Chromium: the learning-rate finder, a diagnosis, the Layer health tab.

Real Keras in the server's workers. The diverging run and the Layer health run train on 120 of the
digits (`tiny_setup_link`): what they check is on the page, and a few batches an epoch show it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import screenshot, set_number, wait_for_app
from tests.e2e.test_sweeps import tiny_setup_link

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def plotted_traces(page: Page, title: str) -> list[int]:
    """The number of points of each trace of the chart titled `title` (plotly 6 sends arrays as base64)."""
    script = """(title) => {
        const charts = [...document.querySelectorAll('.js-plotly-plot')];
        const chart = charts.find(el => (el._fullLayout?.title?.text || '').includes(title));
        return chart && chart._fullData ? chart._fullData.map(trace => trace._length || 0) : null;
    }"""
    page.wait_for_function(script, arg=title)
    return page.evaluate(script, title)


def test_the_finder_suggests_and_applies_a_learning_rate(app_url: str, page: Page) -> None:
    page.goto(f"{app_url}/train")
    wait_for_app(page)
    page.get_by_text("Not sure which learning rate? Find one").click()
    page.get_by_role("button", name="Find a learning rate").click()
    apply = page.get_by_role("button", name=re.compile(r"^Use the suggested learning rate"))
    apply.wait_for(timeout=120_000)
    suggestion = float(re.search(r"rate ([0-9.e+-]+) ", apply.inner_text()).group(1))  # type: ignore[union-attr]
    # The digits preset trains at 1e-3; the range test lands within a factor of ten of it.
    assert 1e-4 <= suggestion <= 1e-2
    assert sum(plotted_traces(page, "Learning-rate finder")) > 20
    screenshot(page, "explains_1_finder")
    apply.click()
    wait_for_app(page)
    page.get_by_text(re.compile(r"The learning rate is the suggested")).wait_for()
    value = float(page.get_by_label("Learning rate", exact=True).first.input_value())
    assert value == pytest.approx(suggestion, rel=1e-2)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_text("had its value set via the Session State API").count() == 0


def test_a_diverging_run_names_its_learning_rate(app_url: str, page: Page) -> None:
    page.goto(f"{app_url}/train?setup={tiny_setup_link()}")
    wait_for_app(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Optimizer").click()
    page.get_by_role("option", name="SGD", exact=True).click()
    wait_for_app(page)
    set_number(page, "Learning rate", 10)
    set_number(page, "Epochs", 5)
    page.get_by_role("button", name="Start training").click()
    wait_for_app(page)
    page.get_by_text(re.compile(r"^Diverged:")).first.wait_for(timeout=120_000)
    page.get_by_text(re.compile(r"learning rate 10 is probably too high")).first.wait_for()
    screenshot(page, "explains_2_diverged")


def test_layer_health_tab_shows_gradients_and_dead_units(app_url: str, page: Page) -> None:
    page.goto(f"{app_url}/train?setup={tiny_setup_link()}")
    wait_for_app(page)
    set_number(page, "Epochs", 3)
    page.get_by_role("button", name="Start training").click()
    wait_for_app(page)
    page.get_by_text(re.compile(r"^Completed after 3 epochs")).first.wait_for(timeout=120_000)
    # The stream says "Completed" first; the page then reruns once for the ended run (Continue and Fork
    # open up), drawing its tabs anew: click a tab after that rerun.
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')].some(b => b.innerText.trim().startsWith('Continue') && !b.disabled)",
        polling=100,
        timeout=60_000,
    )
    wait_for_app(page)
    page.get_by_role("tab", name="Layer health").click()
    wait_for_app(page)
    page.get_by_text("How strongly each layer's weights are pushed").wait_for()
    page.get_by_text("The share of each ReLU layer's units").wait_for()
    gradients = plotted_traces(page, "Gradient norm per layer")
    # One line per layer with weights (the digits CNN has two convolutions and two dense layers), with a
    # point before training (epoch 0) and after each of the 3 epochs.
    assert len(gradients) == 4 and all(points == 4 for points in gradients)
    assert plotted_traces(page, "Dead ReLU units")
    screenshot(page, "explains_3_layer_health")
