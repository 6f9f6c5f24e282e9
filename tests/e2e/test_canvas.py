"""The Predict page's drawing canvas in Chromium: after an uploaded photo of noise (said first to be
unlike a digit), draw a digit with the mouse and see the drawing explained, undo a stroke and clear
the canvas."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import go_to, screenshot, wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.light_jobs]

# The drawing's headline: its answer, or "The model is unsure: perhaps 7 (55%)", or "This does not
# look like a digit; the model's guess would be 7" (a lone bar may well be).
PREDICTION = re.compile(
    r"^drawing: (\d+ \(\d+%\)|The model is unsure: perhaps \d|This does not look like a digit)"
)
# A preprocessing step's title ends with its size: the ink's box of a flat bar (wide, under 100
# pixels high) or of a whole digit (100 to 279 pixels high, less than the 280-pixel canvas).
FLAT_INK = re.compile(r"\(\d{3}×\d{2}\)$")
TALL_INK = re.compile(r"\(\d{2,3}×(1\d\d|2[0-7]\d)\)$")


def stroke(page: Page, canvas: Locator, points: list[tuple[float, float]]) -> None:
    """One pen stroke through `points`, given as fractions of the canvas's width and height."""
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
    page.mouse.up()
    wait_for_app(page)


def test_drawing_a_digit_predicts_it(trained_app: tuple[str, str], page: Page) -> None:
    page.goto(trained_app[0])
    wait_for_app(page)
    go_to(page, "Predict")
    page.get_by_text("Add an image above").first.wait_for()
    # First an upload, a photo of noise: said first to be unlike a digit, with no confidence bar.
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    page.locator("input[type=file]").first.set_input_files(
        files=[{"name": "noise.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    wait_for_app(page)
    page.get_by_role(
        "heading",
        name=re.compile(r"^noise\.png: This does not look like a digit; the model's guess would be \d$"),
    ).first.wait_for()
    page.get_by_text("How this was decided").first.wait_for()
    screenshot(page, "canvas_0_noise_upload")
    page.get_by_role("tab", name="Draw").click()
    page.get_by_text(re.compile(r"Draw one digit, large")).first.wait_for()
    # Fabric.js draws on a lower canvas and takes the pointer on the upper one, on top of it.
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for()

    # A "7": the top bar, predicted when the pen lifts; then the diagonal down to the bottom left,
    # after which the prediction is of both strokes (the ink found is as tall as the digit).
    stroke(page, canvas, [(0.25, 0.2), (0.5, 0.2), (0.75, 0.2)])
    heading = page.get_by_role("heading", name=PREDICTION)
    heading.first.wait_for()
    page.get_by_text(FLAT_INK).first.wait_for()
    stroke(page, canvas, [(0.75, 0.2), (0.6, 0.5), (0.42, 0.85)])
    page.get_by_text(TALL_INK).first.wait_for()
    heading.first.wait_for()
    page.get_by_text("Grad-CAM: where it looked").first.wait_for()
    assert page.get_by_test_id("stException").count() == 0
    table = page.get_by_test_id("stDataFrame").first
    table.wait_for()
    screenshot(page, "canvas_1_seven")
    seven = heading.first.inner_text()
    # The newest input, the drawing, is the one explained, not the upload before it.
    assert page.get_by_role("heading", name=re.compile(r"^noise\.png: ")).count() == 0

    # Undo takes the last stroke away: the prediction is of the top bar alone again.
    page.get_by_role("button", name="Undo").first.click()
    page.get_by_text(FLAT_INK).first.wait_for()
    heading.first.wait_for()
    # Clearing the canvas removes the drawing and its prediction.
    page.get_by_role("button", name="Reset canvas & history").first.click()
    wait_for_app(page)
    page.get_by_role("heading", name=re.compile(r"^noise\.png: ")).first.wait_for()  # The upload remains.
    # The rerun the reset started may still show the old prediction, faded: wait for it to go.
    page.get_by_role("heading", name=PREDICTION).first.wait_for(state="detached")
    screenshot(page, "canvas_2_cleared")
    assert seven.startswith("drawing: ")
