"""Diagnoses: the rules on hand-made histories, then each one provoked by a real tiny fit on the
built-in digits through the real training job, and the CLI's `train` ending `diverged` with the
learning rate named.

Each real run trains in this process as the worker would (`worker.run_job` with `training.run`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab import specs
from cnnlab.errors import RunError
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.views import diagnosis
from cnnlab.runs.worker import main as worker
from cnnlab.runs.worker import training
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status
from tests.made_runs import make_run

# Trains models or starts processes: the file runs among the first (tests/conftest.py orders them).
pytestmark = pytest.mark.slow

SPEC = presets.get("digits_default").spec
ROOT = Path(__file__).resolve().parents[1]
TEN_CLASSES = diagnosis.RunFacts(num_classes=10, chance_accuracy=0.1, first_loss=2.3)
LARGE_DENSE = specs.ModelSpec.from_dict(
    {
        "name": "large_dense",
        "input_shape": [8, 8, 1],
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 512, "activation": "relu"},
            {"type": "Dense", "units": 512, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
    }
)


def history(losses: list[float], **columns: list[float]) -> list[diagnosis.EpochFigures]:
    """Epochs 1, 2, ... with these training losses and, optionally, other columns; learning rate 0.01."""
    return [
        diagnosis.EpochFigures(
            epoch=index + 1,
            loss=loss,
            learning_rate=0.01,
            **{name: values[index] for name, values in columns.items()},
        )
        for index, loss in enumerate(losses)
    ]


# The rules, on hand-made histories.


def test_a_diagnosis_is_read_back_from_its_row_and_event_lines_are_not_diagnoses(store: Store) -> None:
    run = store.create_run(
        RunRequest(
            spec=presets.get("digits_default").spec,
            data_settings=specs.DataSettings(),
            training_settings=specs.TrainingSettings(),
        )
    )
    found = diagnosis.Diagnosis(diagnosis.OVERFITTING, 7, "Validation loss rose.", "Add dropout.")
    assert found.level == "warning" and found.title == "Overfitting"
    # A line that merely looks like a diagnosis is an event, not a diagnosis.
    store.log_event(run.id, "[plateau, epoch 2] cause Fix: fix", level="warning")
    store.add_diagnosis(run.id, found)
    assert diagnosis.read(store, run.id) == [found]
    events = store.events(run.id)
    assert events["message"].iloc[-1] == found.message() and events["level"].iloc[-1] == "warning"
    # A kind the rules do not make is refused, and nothing of it is kept.
    with pytest.raises(RunError, match="Unknown diagnosis kind 'unknown'; the kinds are diverged"):
        store.add_diagnosis(run.id, diagnosis.Diagnosis("unknown", 2, "cause", "fix"))
    assert diagnosis.read(store, run.id) == [found]


def test_divergence_needs_the_loss_far_above_its_start_for_two_epochs() -> None:
    high = diagnosis.DIVERGENCE_FACTOR * TEN_CLASSES.first_loss + 1
    assert diagnosis.diverged(history([high]), TEN_CLASSES) is None  # One epoch may be a spike.
    assert diagnosis.diverged(history([high, 2.0]), TEN_CLASSES) is None  # It came back.
    found = diagnosis.diverged(history([high, high]), TEN_CLASSES)
    assert found is not None and found.epoch == 2 and found.level == "error"
    assert "The learning rate 0.01 is probably too high." in found.cause
    assert "try 0.001 or 0.0001" in found.fix and "try" not in found.cause  # The advice is said once.


def test_divergence_above_guessing_after_having_learned() -> None:
    guessing = TEN_CLASSES.guessing_loss
    learned = diagnosis.LEARNED_SHARE_OF_GUESSING * guessing - 0.1
    assert diagnosis.diverged(history([learned, guessing + 0.2, guessing + 0.3]), TEN_CLASSES) is not None
    # Above guessing from the start is not a divergence (nothing was learned to be lost).
    assert diagnosis.diverged(history([guessing + 0.2, guessing + 0.3]), TEN_CLASSES) is None


def test_not_learning_means_chance_accuracy_and_a_loss_that_never_fell_below_guessing() -> None:
    flat = [2.30, 2.301, 2.299, 2.30, 2.302]
    at_chance = [0.1, 0.11, 0.1, 0.09, 0.1]
    found = diagnosis.not_learning(
        history(flat, val_accuracy=at_chance), TEN_CLASSES, {"dense": 0.9, "conv": 0.1}
    )
    assert found is not None and found.epoch == diagnosis.NOT_LEARNING_EPOCHS == 5
    assert "90% of the units of dense never fire" in found.cause and "conv" not in found.cause
    assert "never gone clearly below 2.303, the loss of guessing every class equally" in found.cause
    assert diagnosis.not_learning(history(flat[:4], val_accuracy=at_chance[:4]), TEN_CLASSES) is None
    above_chance = [*at_chance[:4], 0.1 + diagnosis.CHANCE_MARGIN + 0.01]
    assert diagnosis.not_learning(history(flat, val_accuracy=above_chance), TEN_CLASSES) is None
    # Below guessing by more than 5% at some point: it learned something, whatever the accuracy says.
    dipped = [2.30, 2.15, 2.30, 2.30, 2.30]
    assert diagnosis.not_learning(history(dipped, val_accuracy=at_chance), TEN_CLASSES) is None
    # Still falling towards guessing from far above it: on its way, not stuck.
    falling = [3.5, 3.2, 2.9, 2.6, 2.35]
    assert diagnosis.not_learning(history(falling, val_accuracy=at_chance), TEN_CLASSES) is None


def test_not_learning_waits_for_enough_batches_when_it_knows_them() -> None:
    """Ten batches an epoch: five epochs are only 50 steps, too few to tell a slow start from none."""
    facts = dataclasses.replace(TEN_CLASSES, batches_per_epoch=10)
    epochs = -(-diagnosis.NOT_LEARNING_BATCHES // 10)  # 15
    flat = history([2.30] * epochs, val_accuracy=[0.1] * epochs)
    assert diagnosis.not_learning(flat[: epochs - 1], facts) is None
    found = diagnosis.not_learning(flat, facts)
    assert found is not None and found.epoch == epochs and f"({epochs * 10:,} batches)" in found.cause


def test_overfitting_is_validation_loss_rising_while_training_loss_falls() -> None:
    training_losses = [1.0, 0.5, 0.3, 0.2, 0.1]
    rising = [0.9, 0.5, 0.6, 0.65, 0.7]
    found = diagnosis.overfitting(history(training_losses, val_loss=rising))
    assert found is not None and found.epoch == 5 and "epoch 2" in found.cause
    assert diagnosis.overfitting(history(training_losses[:4], val_loss=rising[:4])) is None  # Too soon.
    flat = [0.9, 0.5, 0.51, 0.52, 0.53]  # Above its lowest, but by less than OVERFITTING_RISE.
    assert diagnosis.overfitting(history(training_losses, val_loss=flat)) is None
    both_rise = [1.0, 0.5, 0.6, 0.7, 0.8]
    assert diagnosis.overfitting(history(both_rise, val_loss=rising)) is None
    # The default digits run (dropout, augmentation): a validation loss far below the training loss
    # that wobbles up from 0.017 to 0.023 is not memorising.
    regularised = [0.40, 0.30, 0.25, 0.23, 0.22]
    wobbling = [0.030, 0.0171, 0.020, 0.022, 0.0231]
    assert diagnosis.overfitting(history(regularised, val_loss=wobbling)) is None


def test_a_plateau_is_no_progress_for_several_epochs_unless_the_training_set_is_solved() -> None:
    stuck = [2.0, 1.5, 1.2, 1.19, 1.2, 1.19, 1.2, 1.19]
    found = diagnosis.plateau(history(stuck, accuracy=[0.5] * len(stuck)))
    assert found is not None and found.epoch == len(stuck) and "larger learning rate" in found.fix
    assert diagnosis.plateau(history(stuck, accuracy=[1.0] * len(stuck))) is None
    assert diagnosis.plateau(history([2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6])) is None


def test_examine_reports_each_kind_once_and_a_divergence_alone() -> None:
    flat = history([2.30, 2.301, 2.299, 2.3, 2.3, 2.3, 2.3], val_accuracy=[0.1] * 7)
    first = diagnosis.examine(flat, TEN_CLASSES)
    assert [found.kind for found in first] == [diagnosis.NOT_LEARNING]  # Not also a plateau.
    assert diagnosis.examine(flat, TEN_CLASSES, {diagnosis.NOT_LEARNING}) == []
    high = [10.0, 10.0, 10.0, 10.0]
    assert [found.kind for found in diagnosis.examine(history(high), TEN_CLASSES)] == [diagnosis.DIVERGED]


def test_every_threshold_is_a_named_constant_with_a_reason() -> None:
    source = Path(diagnosis.__file__).read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(source):
        if line and line.split(" = ")[0].isupper() and " = " in line and line[0].isalpha():
            name = line.split(" = ")[0]
            if name in {"DIVERGED, NOT_LEARNING, OVERFITTING, PLATEAU", "KINDS", "DIVERGED_FIX"}:
                continue
            assert source[index - 1].startswith("#") or "#" in line, f"{name} has no sentence saying why"


# The rules on curves recorded in the store the way the worker records them (the shapes of real runs).


def recorded(
    store: Store, rows: list[dict[str, float]], learning_rate: float = 0.001
) -> list[diagnosis.EpochFigures]:
    """Record `rows` (loss, accuracy, val_loss, val_accuracy per epoch) as a run's epoch metrics;
    read them back as the rules read a history."""
    run = make_run(store, status=Status.RUNNING)
    for epoch, row in enumerate(rows, start=1):
        store.add_epoch_metrics(
            run.id, {"epoch": epoch, "learning_rate": learning_rate, "epoch_seconds": 1.0, **row}
        )
    return diagnosis.recorded_history(store, run.id)


def converged_digits_run(epochs: int = 45) -> list[dict[str, float]]:
    """The default digits run's shape at 99.6%: dropout keeps the training accuracy near 98.5% and
    the loss flat for the last epochs while validation sits at 99.6%."""
    rows = []
    for epoch in range(1, epochs + 1):
        settled = min(epoch, 20) / 20
        rows.append(
            {
                "loss": 1.2 - 1.15 * settled + 0.002 * (epoch % 2),
                "accuracy": 0.6 + 0.385 * settled,
                "val_loss": 0.5 - 0.48 * settled,
                "val_accuracy": 0.85 + 0.146 * settled,
            }
        )
    return rows


def test_a_run_at_99_percent_validation_accuracy_gets_no_plateau(store: Store) -> None:
    figures = recorded(store, converged_digits_run())
    assert figures[-1].accuracy is not None and figures[-1].accuracy < diagnosis.SOLVED_ACCURACY
    assert figures[-1].val_accuracy == pytest.approx(0.996)
    facts = diagnosis.RunFacts(num_classes=10, chance_accuracy=0.1, first_loss=2.3)
    assert diagnosis.examine(figures, facts) == []
    # The same flat curve at 90% is a plateau, unless early stopping watches the run (it ends one itself).
    mediocre = [dataclasses.replace(figure, val_accuracy=0.9) for figure in figures]
    assert [found.kind for found in diagnosis.examine(mediocre, facts)] == [diagnosis.PLATEAU]
    watched = diagnosis.RunFacts(num_classes=10, chance_accuracy=0.1, first_loss=2.3, early_stopping=True)
    assert diagnosis.examine(mediocre, watched) == []


def test_a_divergence_says_what_the_recorded_epochs_show(store: Store) -> None:
    """SGD at 10: the first batch at 2.32, epoch 1 at 30.6, epoch 2 falling back to 7.27."""
    figures = recorded(store, [{"loss": 30.6, "accuracy": 0.1}, {"loss": 7.27, "accuracy": 0.1}], 10.0)
    facts = diagnosis.RunFacts(num_classes=10, chance_accuracy=0.1, first_loss=2.32)
    (found,) = diagnosis.examine(figures, facts)
    assert found.kind == diagnosis.DIVERGED and found.epoch == 2
    assert "started at 2.32" in found.cause and "30.6 at epoch 1, 7.27 at epoch 2" in found.cause
    assert "falling again" in found.cause and "stayed there" not in found.cause
    # Each piece of advice once: the rates to try are in the fix only, and no text repeats the kind.
    assert "try 1 or 0.1" in found.fix and "try" not in found.cause
    assert not found.cause.lower().startswith(("diverged", "training diverged"))


def test_a_divergence_after_learning_names_the_lowest_loss(store: Store) -> None:
    rows = [{"loss": loss} for loss in (1.2, 0.6, 2.6, 2.9)]
    (found,) = diagnosis.examine(recorded(store, rows, 0.5), TEN_CLASSES)
    assert "had come down to 0.6" in found.cause and "2.6 at epoch 3, 2.9 at epoch 4" in found.cause
    assert "falling" not in found.cause


def test_no_diagnosis_repeats_its_kind_or_another_diagnosis_advice(store: Store) -> None:
    stuck = [
        {"loss": loss, "accuracy": 0.4, "val_loss": val, "val_accuracy": 0.4}
        for loss, val in zip(
            [2.0, 1.5, 1.0, 0.8, 0.79, 0.79, 0.79, 0.79, 0.79],
            [1.8, 1.3, 1.0, 1.2, 1.3, 1.35, 1.4, 1.45, 1.5],
            strict=True,
        )
    ]
    found = diagnosis.examine(recorded(store, stuck), TEN_CLASSES)
    assert {item.kind for item in found} == {diagnosis.OVERFITTING, diagnosis.PLATEAU}
    for item in found:
        assert not item.cause.lower().startswith(item.kind)
        assert item.fix not in item.cause
    advice = [sentence.strip() for item in found for sentence in item.fix.split(";")]
    assert len(advice) == len(set(advice))
    # With early stopping on, overfitting's fix does not suggest turning it on.
    watched = diagnosis.RunFacts(num_classes=10, chance_accuracy=0.1, first_loss=2.3, early_stopping=True)
    (overfit,) = diagnosis.examine(recorded(store, stuck), watched)
    assert overfit.kind == diagnosis.OVERFITTING and "early stopping" not in overfit.fix


# Each diagnosis provoked by a real fit.


def _train(
    store: Store,
    settings: specs.TrainingSettings,
    data: specs.DataSettings,
    spec: specs.ModelSpec = SPEC,
) -> str:
    run = store.create_run(RunRequest(spec=spec, data_settings=data, training_settings=settings))
    store.set_status(run.id, Status.STARTING)
    worker.run_job(run.id, store, training.run)
    return run.id


def _kinds(store: Store, run_id: str) -> list[str]:
    return [found.kind for found in diagnosis.read(store, run_id)]


def test_sgd_at_learning_rate_10_diverges_naming_the_learning_rate(store: Store) -> None:
    settings = specs.TrainingSettings(optimizer="sgd", learning_rate=10.0, epochs=5)
    run = store.get_run(_train(store, settings, specs.DataSettings()))
    assert run.status == Status.DIVERGED
    assert "The learning rate 10 is probably too high." in run.reason
    assert "Lower the learning rate (try 1 or 0.1)" in run.hint
    events = store.events(run.id)
    assert _kinds(store, run.id) == [diagnosis.DIVERGED]
    assert (events["level"][events["message"].str.startswith("[diverged")] == "error").all()


def test_a_loss_that_rises_far_above_its_start_without_nan_ends_the_run_diverged(store: Store) -> None:
    # With batches of 128 the loss jumps to about 50 and stays far above its start, but stays finite.
    settings = specs.TrainingSettings(optimizer="sgd", learning_rate=10.0, epochs=5, batch_size=128)
    run = store.get_run(_train(store, settings, specs.DataSettings()))
    table = store.epoch_metrics(run.id)
    assert table["loss"].map(math.isfinite).all()
    assert run.status == Status.DIVERGED and "has stayed more than 3 times higher" in run.reason
    for epoch, loss in zip(
        table["epoch"], table["loss"], strict=True
    ):  # The text names what the chart shows.
        assert f"{loss:.3g} at epoch {epoch}" in run.reason
    assert "The learning rate 10 is probably too high" in run.reason
    assert run.last_epoch == diagnosis.DIVERGENCE_EPOCHS < settings.epochs  # Stopped when it was sure.
    assert (table["loss"] > diagnosis.DIVERGENCE_FACTOR * 2.0).all()


def test_a_learning_rate_of_1e_7_is_not_learning_and_the_run_goes_on(store: Store) -> None:
    # Batches of 8 make 35 an epoch of the 280 training images: enough batches by epoch 5.
    settings = specs.TrainingSettings(learning_rate=1e-7, epochs=6, batch_size=8)
    run = store.get_run(_train(store, settings, specs.DataSettings(subset=400)))
    assert run.status == Status.COMPLETED and run.last_epoch == 6
    (found,) = diagnosis.read(store, run.id)
    assert found.kind == diagnosis.NOT_LEARNING and found.epoch == diagnosis.NOT_LEARNING_EPOCHS
    assert "the learning rate 1e-07 may be far too low" in found.cause
    assert "After 5 epochs (175 batches)" in found.cause  # 280 training images in batches of 8.


def test_a_large_dense_model_on_100_images_overfits_with_a_warning(store: Store) -> None:
    settings = specs.TrainingSettings(learning_rate=0.003, epochs=14, batch_size=16)
    data = specs.DataSettings(subset=130)  # 90 training and 20 validation images.
    run = store.get_run(_train(store, settings, data, LARGE_DENSE))
    assert run.status == Status.COMPLETED and run.last_epoch == 14  # A warning: the run went on.
    assert _kinds(store, run.id) == [diagnosis.OVERFITTING]
    found = diagnosis.read(store, run.id)[0]
    table = store.epoch_metrics(run.id).set_index("epoch")
    lowest = int(table["val_loss"].idxmin())
    assert found.epoch - lowest >= diagnosis.OVERFITTING_EPOCHS
    assert table.loc[found.epoch, "loss"] < table.loc[lowest, "loss"]
    events = store.events(run.id)
    assert (events["level"][events["message"].str.startswith("[overfitting")] == "warning").all()


def test_a_learning_rate_decayed_to_nothing_is_a_plateau(store: Store) -> None:
    settings = specs.TrainingSettings(
        learning_rate=0.003, epochs=9, schedule="exponential", schedule_decay_rate=0.1
    )
    run = store.get_run(_train(store, settings, specs.DataSettings(subset=400)))
    assert run.status == Status.COMPLETED
    (found,) = diagnosis.read(store, run.id)
    assert found.kind == diagnosis.PLATEAU and "the schedule has lowered the learning rate" in found.cause


def test_a_healthy_run_gets_no_diagnosis(store: Store) -> None:
    run_id = _train(store, specs.TrainingSettings(epochs=6), specs.DataSettings(subset=600))
    assert store.get_run(run_id).status == Status.COMPLETED and _kinds(store, run_id) == []


def test_the_cli_run_at_learning_rate_10_ends_diverged_naming_it(tmp_path: Path) -> None:
    environment = {**os.environ, "CNNLAB_HOME": str(tmp_path / "cli-home"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cnnlab", "train", "digits_default", "--dataset", "digits"]
    command += ["--optimizer", "sgd", "--learning-rate", "10", "--epochs", "5"]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert completed.returncode == 1 and summary["status"] == "diverged"
    assert "the learning rate 10 is probably too high." in summary["reason"].lower()
    assert summary["diagnoses"] and summary["diagnoses"][0].startswith("[diverged, epoch ")
    assert "Diverged (epoch " in completed.stderr


def test_a_continued_fit_does_not_take_its_trained_loss_as_the_start(store: Store) -> None:
    """A continue starts from trained weights: a later ordinary batch three times its first one is no divergence."""
    from cnnlab.runs.worker.callbacks import FitProgress
    from cnnlab.runs.worker.diagnosis_callbacks import Diagnose

    facts = diagnosis.RunFacts(num_classes=10, chance_accuracy=0.1)
    continued = Diagnose(store, "no-run", FitProgress(), facts)
    continued.on_epoch_begin(3)
    continued.on_train_batch_end(0, {"loss": 0.05})
    assert math.isnan(continued.facts.first_loss)
    fresh = Diagnose(store, "no-run", FitProgress(), facts)
    fresh.on_epoch_begin(0)
    fresh.on_train_batch_end(0, {"loss": 2.3})
    assert fresh.facts.first_loss == pytest.approx(2.3)
