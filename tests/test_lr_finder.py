"""The learning-rate finder: the smoothing and the suggestion on known curves, the range test on the
digits with the digits preset (a suggestion near the preset's learning rate, the model untouched),
and the CLI's `lr-find`, which runs it in a worker process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cnnlab import specs
from cnnlab.data import datasets
from cnnlab.errors import RunError
from cnnlab.model import presets
from cnnlab.runs.queue import learning_rate_range
from cnnlab.runs.worker import lr_finder, training

ROOT = Path(__file__).resolve().parents[1]


def test_smoothing_is_fastais_bias_corrected_average_and_the_two_way_one_does_not_lag() -> None:
    np.testing.assert_allclose(
        learning_rate_range.smooth([2.0, 4.0], beta=0.5), [2.0, (0.25 * 2 + 0.5 * 4) / 0.75]
    )
    steps = np.arange(101)
    bump = -np.exp(-(((steps - 50) / 8.0) ** 2))  # A dip centred on step 50.
    assert int(np.argmin(learning_rate_range.smooth(bump.tolist()))) >= 55  # One way lags behind the dip.
    assert int(np.argmin(learning_rate_range.smooth_both_ways(bump.tolist()))) == 50


def test_the_suggestion_is_a_tenth_of_the_minimum_and_the_steepest_point_comes_before_it() -> None:
    rates = np.logspace(-7, 1, 81)
    losses = 2.3 - np.tanh(np.log10(rates) + 3) + np.maximum(0.0, np.log10(rates) + 1) ** 2
    suggestion, minimum, steepest = learning_rate_range.suggest(rates, losses)
    assert minimum == pytest.approx(rates[np.argmin(losses)]) and suggestion == pytest.approx(minimum / 10)
    assert steepest == pytest.approx(1e-3, rel=0.3)  # tanh falls fastest at log10(rate) = -3.


def test_on_the_digits_it_suggests_near_the_presets_rate_and_leaves_the_model_untouched() -> None:
    preset = presets.get("digits_default")
    settings = specs.TrainingSettings(**preset.training)
    data = datasets.load(specs.DataSettings(dataset="digits"))
    model = training.new_model(preset.spec, settings)
    before = [weight.copy() for weight in model.get_weights()]
    result = lr_finder.find_learning_rate(model, data.x_train, data.y_train, batch_size=settings.batch_size)
    assert settings.learning_rate / 10 <= result.suggestion <= settings.learning_rate * 10
    for original, after in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(original, after)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0  # Its optimizer never stepped.
    rates = np.asarray(result.learning_rates)
    assert rates[0] == pytest.approx(learning_rate_range.START_LEARNING_RATE) and np.all(np.diff(rates) > 0)
    assert len(result.losses) == len(result.smoothed_losses) == len(rates) <= learning_rate_range.STEPS
    assert learning_rate_range.FinderResult.from_dict(result.to_dict()) == result


def test_a_loss_that_explodes_stops_the_test() -> None:
    """Adam without augmentation blows the loss up on the digits as the learning rate nears 10."""
    preset = presets.get("digits_default")
    settings = specs.TrainingSettings()
    data = datasets.load(specs.DataSettings(dataset="digits"))
    model = training.new_model(preset.spec, settings)
    result = lr_finder.find_learning_rate(model, data.x_train, data.y_train, batch_size=settings.batch_size)
    assert result.stopped_early
    assert max(result.losses[-3:]) > learning_rate_range.EXPLOSION_FACTOR * min(result.smoothed_losses)


def test_the_cli_runs_the_range_test_in_a_worker_and_prints_the_suggestion(tmp_path: Path) -> None:
    environment = {**os.environ, "CNNLAB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cnnlab", "lr-find", "digits_default", "--dataset", "digits"]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    first = completed.stdout.splitlines()[0]
    assert first.startswith("suggested learning rate: ")
    suggestion = float(first.split(": ")[1].split()[0])
    assert 1e-4 <= suggestion <= 1e-2
    assert "batches from 1e-07" in completed.stdout


def test_a_worker_error_a_user_can_fix_comes_back_as_its_message() -> None:
    spec = presets.get("digits_default").spec
    data = specs.DataSettings(dataset="digits")
    settings = specs.TrainingSettings()
    wrong = presets.adapt(spec, (8, 8, 1), 3)  # Three outputs for ten classes.
    with pytest.raises(RunError, match="class"):
        learning_rate_range.find_learning_rate_in_worker(wrong, data, settings)
