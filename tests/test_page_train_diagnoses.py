"""The Train page says why a run went wrong: the worker's diagnoses, and the finder's panel (AppTest)."""

from __future__ import annotations

import pytest

from cnnlab.runs.views import diagnosis
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.app_pages import open_page
from tests.test_pages import new_run

pytestmark = pytest.mark.usefixtures("cnnlab_home")


def ended_run(store: Store, status: Status, findings: list[diagnosis.Diagnosis], reason: str) -> str:
    """A run that ended in `status`, with `findings` recorded as the worker records them."""
    run = new_run(store, "diagnosed run")
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    for finding in findings:
        store.add_diagnosis(run.id, finding)
    store.set_status(run.id, status, reason=reason)
    return run.id


def test_a_warning_shows_its_cause_and_fix(home_store: Store) -> None:
    overfitting = diagnosis.Diagnosis(
        kind=diagnosis.OVERFITTING,
        epoch=6,
        cause="The validation loss rose for 3 epochs while the training loss fell.",
        fix="Add Dropout or augmentation, stop early, or use a smaller model.",
    )
    run_id = ended_run(home_store, Status.COMPLETED, [overfitting], reason="")
    app = open_page("train", run_id).run()
    assert not app.exception
    warnings = [element.value for element in app.warning]
    assert any(
        "Overfitting" in text and "epoch 6" in text and "What to do:** Add Dropout" in text
        for text in warnings
    ), warnings


def test_a_divergence_that_ended_the_run_is_said_once(home_store: Store) -> None:
    diverged = diagnosis.not_finite(float("nan"), epoch=1, batch=6, learning_rate=10.0)
    run_id = ended_run(home_store, Status.DIVERGED, [diverged], reason=diverged.cause)
    app = open_page("train", run_id).run()
    assert not app.exception
    messages = [element.value for element in app.error]
    assert sum("learning rate 10 is probably too high" in text for text in messages) == 1, messages


def test_the_finder_waits_for_a_click_and_a_valid_model() -> None:
    app = open_page("train").run()
    assert not app.exception
    assert not app.button(key="find_learning_rate").disabled
    assert not [button for button in app.button if button.key == "apply_learning_rate"]
