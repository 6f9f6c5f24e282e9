"""The class budget's defaults: they admit every preset's own training and Home's one-click run."""

from __future__ import annotations

from cnnlab.classroom import limits
from cnnlab.classroom.limits import Limits
from cnnlab.classroom.users import Role, User
from cnnlab.model import presets
from cnnlab.specs import TrainingSettings
from cnnlab.ui.session import state

STUDENT = User("ada", "Ada", Role.STUDENT)


def test_the_default_budget_admits_homes_one_click_digits_run() -> None:
    # Exactly what Home's "Train a digits classifier" submits (it refused it at 20 epochs).
    setup = state.default_setup()
    assert setup.training.epochs > 20
    limits.check_submit(
        Limits(),
        STUDENT,
        queued_runs=0,
        spec=setup.model,
        data_settings=setup.data,
        training_settings=setup.training,
    )


def test_the_default_epoch_limit_is_the_most_any_preset_trains() -> None:
    epochs = [TrainingSettings(**preset.training).epochs for preset in presets.PRESETS.values()]
    assert Limits().max_epochs == max(epochs)
    assert all(count <= limits.default_max_epochs() for count in epochs)
