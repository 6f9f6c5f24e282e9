"""The Runs page and the Home page's one-click run, in Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cnnlab.store.run_store import Store
from tests.e2e.conftest import screenshot, wait_for_app
from tests.test_exports import recorded_run

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.light_jobs]


def test_compare_two_runs(app_home: Path, app_url: str, page: Page) -> None:
    store = Store(app_home)
    recorded_run(store, learning_rate=0.001)
    recorded_run(store, learning_rate=0.01)
    page.goto(f"{app_url}/runs")
    wait_for_app(page)
    field = page.get_by_test_id("stMultiSelect").locator("input")
    for _ in range(2):
        field.click()
        field.fill("tiny run")
        # Clicked, not Enter: an Enter pressed before the list has filtered picks nothing.
        page.get_by_role("option", name=re.compile(r"^tiny run \(")).first.click()
        wait_for_app(page)
    page.keyboard.press("Escape")
    page.get_by_text("Comparing 2 runs").wait_for()
    page.get_by_text("training.learning_rate").first.wait_for(state="attached")  # a canvas grid cell
    page.get_by_text("tiny run (", exact=False).first.wait_for()
    screenshot(page, "runs_compare")


def test_one_click_reaches_live_curves_within_a_minute(app_url: str, page: Page) -> None:
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_role("button", name="Train a digits classifier").click()
    page.get_by_text(re.compile(r"^\d+ of 40 epochs")).first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^[1-9]\d* of 40 epochs")).first.wait_for(timeout=60_000)
    assert "run=" in page.url
    page.get_by_text("Loss").first.wait_for()
    screenshot(page, "home_one_click_live")


def test_delete_asks_first_and_deletes_only_on_the_confirmation(
    app_home: Path, app_url: str, page: Page
) -> None:
    store = Store(app_home)
    run_id = recorded_run(store)
    store.rename_run(run_id, "doomed run")
    page.goto(f"{app_url}/runs")
    wait_for_app(page)
    field = page.get_by_test_id("stMultiSelect").locator("input")
    field.click()
    field.fill("doomed run")
    page.get_by_role("option", name=re.compile(r"^doomed run \(")).click()
    page.keyboard.press("Escape")
    wait_for_app(page)
    page.get_by_role("heading", name="doomed run").wait_for()
    page.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("button", name="Yes, delete it")
    confirm.wait_for()
    wait_for_app(page)
    assert store.get_run(run_id).name == "doomed run"  # The first click only asked.
    assert store.run_folder(run_id).exists()
    screenshot(page, "runs_delete_confirmation")
    confirm.click()
    page.get_by_role("heading", name="doomed run").wait_for(state="detached")
    wait_for_app(page)
    assert run_id not in {run.id for run in store.list_runs()}
    assert not store.run_folder(run_id).exists()
