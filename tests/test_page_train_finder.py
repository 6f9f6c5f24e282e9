"""The Train page's learning-rate finder panel shows what the range test found (AppTest): a suggestion
with the reason and one click to use it, or, when the loss never fell, the reason and no button.

The curves are the real suggestion code's answers to known losses (`learning_rate_range.suggest`),
put where the panel keeps a finished test's result, so no worker process runs here; the worker's own
tests are in tests/test_lr_finder.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnlab.runs.queue import learning_rate_range
from cnnlab.ui.pages.train import learning_rate_finder
from cnnlab.ui.session import state
from tests.app_pages import open_page, read_back

pytestmark = pytest.mark.usefixtures("cnnlab_home")

CURVES = Path(__file__).resolve().parent / "data" / "finder_curves.json"


def finished_test(
    losses: np.ndarray, rates: np.ndarray | None = None, classes: int = 0
) -> learning_rate_range.FinderResult:
    """A range test's result for `losses` (over `rates`, by default the usual 100 from 1e-7 to 10) for
    a model of `classes` (0: unknown), suggested by the real rule."""
    rates = np.logspace(-7, 1, len(losses)) if rates is None else rates
    smoothed = learning_rate_range.smooth_curve(losses.tolist())
    found = learning_rate_range.suggest(rates, losses, smoothed, classes)
    return learning_rate_range.FinderResult(
        learning_rates=tuple(float(rate) for rate in rates),
        losses=tuple(float(loss) for loss in losses),
        smoothed_losses=tuple(float(loss) for loss in smoothed),
        suggestion=found.learning_rate,
        minimum_learning_rate=found.minimum_learning_rate,
        steepest_learning_rate=found.steepest_learning_rate,
        stopped_early=False,
        seconds=20.0,
        reason=found.reason,
        classes=classes,
    )


def train_page_after(result: learning_rate_range.FinderResult) -> AppTest:
    """The Train page with the default setup, as it shows once `result` came back for it."""
    app = open_page("train")
    app.session_state[learning_rate_finder.RESULT_KEY] = (
        learning_rate_finder.setup_key(state.default_setup()),
        result,
    )
    return app.run()


def test_no_descent_shows_the_reason_and_no_button_to_use_it() -> None:
    """The recorded curve of issue 23 (tests/data/finder_curves.json): a loss that falls only towards
    guessing. The page says why nothing is suggested and what to try."""
    curve = json.loads(CURVES.read_text(encoding="utf-8"))["curves"]["glyphs_batchnorm_64"]
    rates, losses = np.asarray(curve["learning_rates"]), np.asarray(curve["losses"])
    app = train_page_after(finished_test(losses, rates, int(curve["classes"])))
    assert not app.exception, app.exception
    warnings = [read_back(element.value) for element in app.warning]
    assert any(
        text.startswith("No learning rate suggested: the loss started at 3.64, above the loss of guessing")
        and "try a larger batch size" in text
        for text in warnings
    ), warnings
    assert not [button for button in app.button if button.key == "apply_learning_rate"]
    assert not any("dashed line" in element.value for element in app.caption)  # No line to point at.


def test_a_suggestion_comes_with_its_reason_and_one_click_applies_it() -> None:
    rates = np.logspace(-7, 1, 100)
    falling = (
        2.3 - 1.5 * np.clip(np.log10(rates / 1e-4) / 2, 0.0, 1.0) + np.maximum(0.0, np.log10(rates) + 1) * 8
    )
    result = finished_test(falling)
    assert result.suggestion is not None
    app = train_page_after(result)
    assert any(element.value.startswith("Why this one: a tenth of") for element in app.caption)
    assert any("The dashed line is the suggestion" in element.value for element in app.caption)
    app.button(key="apply_learning_rate").click().run()
    assert not app.exception, app.exception
    assert app.number_input(key="learning_rate").value == pytest.approx(result.suggestion)
    assert any(element.value.startswith("The learning rate is the suggested") for element in app.success)
