"""The first-minute journey in Chromium: Home, Data, Model, Train, refresh.

The run started on Train is trained by the light job of tests/fake_jobs.py (its epochs and curves,
without TensorFlow); the Filters and Confusion tabs are then looked at on the module's seeded run, one
really trained for three epochs (`trained_app`). Real training from the pages is tests/e2e/test_main_path.py's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import go_to, screenshot, set_number, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.light_jobs]


def test_journey(trained_app: tuple[str, str], page: Page) -> None:
    app_url, trained_run = trained_app
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_text("Train a digits classifier").first.wait_for()
    screenshot(page, "journey_1_home")

    go_to(page, "Data")
    page.get_by_text("1,797 real handwritten digits").first.wait_for()
    page.get_by_test_id("stMetricValue").filter(has_text="1,259").wait_for()
    screenshot(page, "journey_2_data")

    go_to(page, "Model")
    page.get_by_text("Shapes and parameters").wait_for()
    page.get_by_test_id("stSelectbox").filter(has_text="Start from a preset").click()
    page.get_by_role("option", name="Minimal MNIST CNN", exact=True).click()
    page.get_by_role("button", name="Load preset").click()
    wait_for_app(page)
    # Fitted to the 8x8 digits, the MNIST model's last pooling layer gets a 1x1 input: its message shows.
    page.get_by_text("Layer 4 (MaxPooling2D 2x2) has a 1x1 input").first.wait_for()
    screenshot(page, "journey_3_model_broken_preset")

    page.get_by_test_id("stSelectbox").filter(has_text="Start from a preset").click()
    page.get_by_role("option", name="Digits CNN (default)").click()
    page.get_by_role("button", name="Load preset").click()
    wait_for_app(page)
    total = (
        page.get_by_test_id("stMetric").filter(has_text="Total parameters").get_by_test_id("stMetricValue")
    )
    total.filter(has_text="151,306").wait_for()
    page.get_by_text(re.compile(r"^1\. Conv2D 3x3")).click()
    set_number(page, "filters", 16)
    total.filter(has_text="141,930").wait_for()
    set_number(page, "kernel_size", 9)
    page.get_by_text(
        "Layer 1 (Conv2D 9x9, padding='same') has a 8x8 input, smaller than its 9x9 kernel"
    ).first.wait_for()
    screenshot(page, "journey_4_model_broken_layer")
    set_number(page, "kernel_size", 3)
    total.filter(has_text="141,930").wait_for()
    screenshot(page, "journey_5_model")

    go_to(page, "Train")
    set_number(page, "Epochs", 300)
    page.get_by_role("button", name="Start training").click()
    wait_for_app(page)
    page.get_by_text(re.compile(r"Training: epoch")).first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^([3-9]|[1-9]\d+) of 300 epochs")).first.wait_for(timeout=90_000)
    screenshot(page, "journey_6_train_curves")
    # Scoped to the page: Streamlit's own status widget has a "Stop" button while a script runs.
    page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
    page.get_by_text(re.compile(r"Stopped after epoch \d+")).first.wait_for(timeout=30_000)

    page.reload()
    wait_for_app(page)
    page.get_by_text(re.compile(r"Stopped after epoch \d+")).first.wait_for()
    assert "run=" in page.url
    screenshot(page, "journey_9_after_refresh")

    # A run trained for real shows what its network learned: its filters, feature maps and confusion.
    page.goto(f"{app_url}/train?run={trained_run}")
    wait_for_app(page)
    page.get_by_role("tab", name="Filters and feature maps").click()
    page.get_by_text("filters of conv2d_1").first.wait_for()
    page.get_by_text("channels of conv2d_1").first.wait_for()
    screenshot(page, "journey_7_train_filters")
    page.get_by_role("tab", name="Confusion and predictions").click()
    page.get_by_text("Confusion matrix").first.wait_for()
    screenshot(page, "journey_8_train_confusion")
