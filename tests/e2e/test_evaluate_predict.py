"""Evaluate and Predict in Chromium: open a trained run's confusion cells, download the model, predict a PNG.

The run is the session's digits run trained for three epochs, copied into the server's home
(`trained_app`); starting a run on the Train page and watching it finish is checked in
test_journey.py and test_training_explains.py.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from cnnlab.ui.pages.evaluate import evaluate_view
from tests.e2e.conftest import go_to, screenshot, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.light_jobs]
ROW_PIXELS = 35  # The height of a row of st.dataframe, and of its header.


def choose(page: Page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def digit_png(path: Path, index: int = 0) -> Path:
    """A real handwritten digit as a photo shows it: dark ink on white, 96 pixels."""
    pixels = 255 - (load_digits().images[index] * (255 / 16)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((96, 96), Image.Resampling.BILINEAR).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_evaluate_then_predict(trained_app: tuple[str, str], page: Page, tmp_path: Path) -> None:
    app_url, run_id = trained_app
    page.goto(f"{app_url}/train?run={run_id}")
    page.get_by_text(re.compile(r"Completed after 3 epochs")).first.wait_for()
    wait_for_app(page)

    go_to(page, "Evaluate")
    page.get_by_test_id("stMetricLabel").filter(has_text="Test accuracy").wait_for()
    page.get_by_text("Click a cell to see its images").first.wait_for()
    page.get_by_text("Most confident mistakes").first.wait_for()
    screenshot(page, "evaluate_1_overview")

    # The accessible pickers choose a cell; its images appear with their titles.
    choose(page, "True class", "7")
    choose(page, "Predicted class", "7")
    page.get_by_text(re.compile(r"\d+ correct image\(s\): true 7, predicted 7")).first.wait_for()
    page.get_by_text(re.compile(r"✓ 7→7 \d+%")).first.wait_for()
    # A click on a cell of the confusion table itself picks that cell too (true 3, predicted 3). The
    # table is drawn on a canvas: its rows are 35 pixels high under a 35-pixel header, its class columns
    # share the width right of the true classes' column.
    table = page.get_by_test_id("stDataFrame").first  # The confusion table, above the per-class one.
    box = table.bounding_box()
    assert box is not None
    columns_from = evaluate_view.INDEX_WIDTH
    column_width = (box["width"] - columns_from) / 10
    # The pointer crosses the table on its way to the cell, as a hand's does (the grid takes a click where
    # it saw the pointer move; Playwright's click alone jumps there).
    table.hover(position={"x": columns_from + 2.5 * column_width, "y": ROW_PIXELS * (1 + 2.5)})
    table.click(position={"x": columns_from + 3.5 * column_width, "y": ROW_PIXELS * (1 + 3.5)})
    wait_for_app(page)
    page.get_by_text(re.compile(r"\d+ correct image\(s\): true 3, predicted 3")).first.wait_for()
    page.get_by_text(re.compile(r"✓ 3→3 \d+%")).first.wait_for()
    page.set_viewport_size({"width": 1400, "height": 2600})
    screenshot(page, "evaluate_2_cell")
    page.set_viewport_size({"width": 1400, "height": 2000})

    # The model downloads as a .keras file that Keras loads back.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the model (.keras)").click()
    model_path = tmp_path / "downloaded.keras"
    download_info.value.save_as(model_path)
    import keras

    model = keras.models.load_model(model_path)
    assert tuple(model.input_shape) == (None, 8, 8, 1)
    assert tuple(model.output_shape) == (None, 10)

    go_to(page, "Predict")
    page.get_by_text("Add an image above").first.wait_for()
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Images (PNG")
    uploader.locator("input[type=file]").set_input_files(str(digit_png(tmp_path / "zero.png")))
    wait_for_app(page)
    # The answer, or the note that the model is unsure (a short run may be); never "not a digit".
    page.get_by_text(re.compile(r"^zero\.png: (\d|The model is unsure: perhaps \d)")).first.wait_for()
    page.get_by_text("Grad-CAM: where it looked").first.wait_for()
    page.get_by_text("saliency: pixels that matter").first.wait_for()
    page.get_by_text(re.compile(r"channels of conv2d_1")).first.wait_for()
    page.set_viewport_size({"width": 1400, "height": 3000})
    screenshot(page, "predict_1_upload")

    # A bad file gets the images module's message, not a traceback.
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    uploader.locator("input[type=file]").set_input_files([str(bad), str(tmp_path / "zero.png")])
    wait_for_app(page)
    page.get_by_text(re.compile(r"notes\.png: The file is not a supported image")).first.wait_for()
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, "predict_2_bad_file")
