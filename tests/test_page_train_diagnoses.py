"""The Train page says why a run went wrong: the worker's diagnoses, and the finder's panel (AppTest)."""

from __future__ import annotations

import pytest

from cnnlab import specs
from cnnlab.runs.views import diagnosis
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.app_pages import open_page, read_back
from tests.made_runs import make_run, reached
from tests.test_pages import new_run

pytestmark = pytest.mark.usefixtures("cnnlab_home")


def ended_run(
    store: Store, status: Status, findings: list[diagnosis.Diagnosis], reason: str, hint: str | None = None
) -> str:
    """A run that ended in `status` (with `reason` and `hint`), with `findings` recorded as the worker records them."""
    run = new_run(store, "diagnosed run")
    store.set_status(run.id, Status.STARTING)
    store.set_status(run.id, Status.RUNNING)
    for finding in findings:
        store.add_diagnosis(run.id, finding)
    store.set_status(run.id, status, reason=reason, hint=hint)
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


def recorded_epochs(store: Store, run_id: str, epochs: int) -> None:
    """Epoch metrics for epochs 1..`epochs`, as the worker records them."""
    for epoch in range(1, epochs + 1):
        store.add_epoch_metrics(run_id, {"epoch": epoch, "loss": 1.0 / epoch, "learning_rate": 0.001})


def messages(app: object) -> list[str]:
    """The page's alerts as the user reads them (the escapes of quoted user text taken off)."""
    return [
        read_back(element.value)
        for kind in ("error", "warning", "info", "success")
        for element in getattr(app, kind)
    ]


def test_a_diverged_run_says_cnn_lab_stopped_it_and_gives_each_advice_once(home_store: Store) -> None:
    figures = [
        diagnosis.EpochFigures(1, 30.6, learning_rate=10.0),
        diagnosis.EpochFigures(2, 7.27, learning_rate=10.0),
    ]
    found = diagnosis.diverged(figures, diagnosis.RunFacts(10, 0.1, first_loss=2.32))
    assert found is not None
    # The worker ends the run with the cause as its reason and the fix as its hint.
    run_id = ended_run(home_store, Status.DIVERGED, [found], reason=found.cause, hint=found.fix)
    app = open_page("train", run_id).run()
    assert not app.exception
    said = messages(app)
    (error,) = [text for text in said if "CNN Lab stopped this run" in text]
    assert "30.6 at epoch 1, 7.27 at epoch 2" in error and "stayed there" not in error
    assert sum(text.count("try 1 or 0.1") for text in said) == 1, said


def test_a_run_stopped_by_request_says_so_once(home_store: Store) -> None:
    run = reached(home_store, make_run(home_store).id, Status.RUNNING)
    recorded_epochs(home_store, run.id, 21)
    home_store.set_status(run.id, Status.STOPPED, reason="Stopped by the user after 21 epoch(s).")
    app = open_page("train", run.id).run()
    assert not app.exception
    said = messages(app)
    assert "Stopped after epoch 21: Stop was pressed." in said, said
    assert not any("Stopped by the user" in text or "CNN Lab stopped" in text for text in said), said


def test_early_stopping_says_cnn_lab_ended_the_run_and_gets_no_plateau(home_store: Store) -> None:
    settings = specs.TrainingSettings(epochs=30, early_stopping=True, early_stopping_patience=4)
    run = reached(home_store, make_run(home_store, training=settings).id, Status.RUNNING)
    recorded_epochs(home_store, run.id, 12)
    home_store.set_status(
        run.id, Status.COMPLETED, reason="Early stopping after epoch 12: val_loss stopped improving."
    )
    app = open_page("train", run.id).run()
    assert not app.exception
    said = messages(app)
    assert any(
        text.startswith("Completed after 12 of 30 epochs.")
        and "CNN Lab stopped it early (early stopping): the validation loss had not improved for 4 epochs."
        in text
        for text in said
    ), said


def test_a_plateau_title_is_not_repeated_in_its_text(home_store: Store) -> None:
    stuck = [
        diagnosis.EpochFigures(epoch, loss, accuracy=0.6, learning_rate=0.001)
        for epoch, loss in enumerate([2.0, 1.5, 1.2, 1.19, 1.2, 1.19, 1.2, 1.19], start=1)
    ]
    found = diagnosis.plateau(stuck)
    assert found is not None
    run_id = ended_run(home_store, Status.COMPLETED, [found], reason="")
    app = open_page("train", run_id).run()
    (warning,) = [element.value for element in app.warning if "Plateau" in element.value]
    assert warning.startswith("**Plateau** (epoch 8): The loss has not improved")
    assert warning.count("Plateau") == 1 and warning.count("larger learning rate") == 1


def test_the_finder_waits_for_a_click_and_a_valid_model() -> None:
    app = open_page("train").run()
    assert not app.exception
    assert not app.button(key="find_learning_rate").disabled
    assert not [button for button in app.button if button.key == "apply_learning_rate"]
