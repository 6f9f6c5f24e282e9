"""The model's input in Chromium: edit the input row and see shapes and parameters follow; load a
28x28 preset on the 8x8 digits and fix it with the offered image size."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
from waiting import wait_until

from cnnlab.model import presets, shapes
from tests.e2e.conftest import go_to, screenshot, set_number, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.light_jobs]


def total_parameters(page: Page) -> Locator:
    metric = page.get_by_test_id("stMetric").filter(has_text="Total parameters")
    return metric.get_by_test_id("stMetricValue")


def test_the_input_row_edits_the_input_and_keeps_the_layers(app_url: str, page: Page) -> None:
    page.goto(app_url)
    wait_for_app(page)
    go_to(page, "Model")
    default = presets.get("digits_default").spec
    total_parameters(page).filter(has_text=f"{shapes.analyse(default).total_parameters:,}").wait_for()

    page.get_by_text("0. Input  →  8 × 8 × 1").click()
    set_number(page, "height", 12)
    taller = dataclasses.replace(default, input_shape=(12, 8, 1))
    analysis = shapes.analyse(taller)
    assert analysis.total_parameters != shapes.analyse(default).total_parameters
    total_parameters(page).filter(has_text=f"{analysis.total_parameters:,}").wait_for()
    page.get_by_text("0. Input  →  12 × 8 × 1").wait_for()
    first = analysis.rows[0].output_shape
    page.get_by_text(f"1. Conv2D 3x3, padding='same'  →  {' × '.join(map(str, first))}").wait_for()
    page.get_by_text("The model's input is 12x8x1 but the dataset gives 8x8x1").first.wait_for()
    screenshot(page, "model_input_1_edited")

    page.get_by_role("button", name="Use the data's 8 × 8 × 1").click()
    wait_for_app(page)
    total_parameters(page).filter(has_text=f"{shapes.analyse(default).total_parameters:,}").wait_for()
    page.get_by_text("0. Input  →  8 × 8 × 1").wait_for()


def test_a_preset_for_larger_images_is_fixed_with_the_offered_image_size(app_url: str, page: Page) -> None:
    page.goto(app_url)
    wait_for_app(page)
    go_to(page, "Model")
    page.get_by_test_id("stSelectbox").filter(has_text="Start from a preset").click()
    page.get_by_role("option", name="Minimal MNIST CNN", exact=True).click()
    wait_for_app(page)
    page.get_by_role("button", name="Load preset").click()
    wait_for_app(page)
    problem = page.get_by_text("Layer 4 (MaxPooling2D 2x2) has a 1x1 input")
    problem.first.wait_for()
    screenshot(page, "model_input_2_preset_too_small")

    page.get_by_role("button", name="Use image size 28 and load Minimal MNIST CNN").click()
    wait_for_app(page)
    minimal = presets.get("mnist_minimal").spec
    total_parameters(page).filter(has_text=f"{shapes.analyse(minimal).total_parameters:,}").wait_for()
    page.get_by_text("0. Input  →  28 × 28 × 1").wait_for()
    # Streamlit leaves the previous run's elements on the page, faded, until the rerun ends.
    wait_for_app(page)
    wait_until(lambda: problem.count() == 0, "the 1x1-input problem to leave the page")
    page.get_by_text("images 28×28×1").first.wait_for()
    screenshot(page, "model_input_3_preset_fixed")
