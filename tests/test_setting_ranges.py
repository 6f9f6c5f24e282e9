"""One range per training setting: the specs refuse outside it, the CLI with them, and the Train
page's widgets take their minimum and maximum from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.cli import main as cli
from cnnlab.errors import SpecError
from cnnlab.setting_ranges import AUGMENTATION_RANGES, BATCH_SIZES, TRAINING_RANGES, Range
from cnnlab.specs import AugmentationSettings, TrainingSettings
from cnnlab.store.run_store import Store
from tests.app_pages import no_problems, open_page

# The training options of `python -m cnnlab train`, each a field of TrainingSettings with a range.
CLI_OPTIONS = ["epochs", "batch_size", "learning_rate", "momentum", "l2", "early_stopping_patience", "seed"]


def just_outside(limits: Range) -> list[float]:
    """A value just below the range and one just above it."""
    if limits.whole:
        return [limits.minimum - 1, limits.maximum + 1]
    below = limits.minimum / 10 if limits.minimum > 0 else limits.minimum - 0.01
    return [below, limits.maximum + 0.005]


def test_every_number_of_the_training_settings_has_a_range() -> None:
    numbers = {
        name
        for name, value in TrainingSettings().to_dict().items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    assert numbers == set(TRAINING_RANGES)


@pytest.mark.parametrize("name", sorted(TRAINING_RANGES))
def test_the_specs_take_each_end_of_a_range_and_refuse_just_beyond(name: str) -> None:
    limits = TRAINING_RANGES[name]
    for end in limits.bounds():
        assert getattr(TrainingSettings(**{name: end}), name) == end
    for value in just_outside(limits):
        value = int(value) if limits.whole else value
        with pytest.raises(SpecError, match=rf"{name} must be .* in \[.*\]; got {value!r}"):
            TrainingSettings(**{name: value})


def test_every_strength_of_the_augmentation_has_a_range() -> None:
    numbers = {name for name, value in AugmentationSettings().to_dict().items() if isinstance(value, float)}
    assert numbers == set(AUGMENTATION_RANGES)


@pytest.mark.parametrize("name", sorted(AUGMENTATION_RANGES))
def test_the_augmentation_takes_each_end_of_a_range_and_refuses_just_beyond(name: str) -> None:
    limits = AUGMENTATION_RANGES[name]
    for end in limits.bounds():
        assert getattr(AugmentationSettings(**{name: end}), name) == end
    for value in just_outside(limits):
        with pytest.raises(SpecError, match=rf"{name} must be a number in \[.*\]; got {value!r}"):
            AugmentationSettings(**{name: value})


@pytest.mark.parametrize("name", CLI_OPTIONS)
def test_the_cli_refuses_what_the_train_page_cannot_be_set_to(
    name: str, cnnlab_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limits = TRAINING_RANGES[name]
    for value in just_outside(limits):
        text = str(int(value)) if limits.whole else repr(value)
        code = cli.main(["train", "digits_default", f"--{name.replace('_', '-')}={text}"])
        error = capsys.readouterr().err
        assert code == 2
        assert f"{name} must be" in error and limits.describe() in error and text in error
    assert Store(cnnlab_home).list_runs() == []  # Refused before anything was queued.


def test_the_cli_help_states_each_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in CLI_OPTIONS:
        assert f"in {TRAINING_RANGES[name].describe()}" in help_text, name


def test_the_train_pages_widgets_take_their_bounds_from_the_ranges(cnnlab_home: Path) -> None:
    app = open_page("train").run()
    no_problems(app)
    widgets = {
        "learning_rate": app.number_input(key="learning_rate"),
        "epochs": app.number_input(key="epochs"),
        "l2": app.number_input(key="l2"),
        "seed": app.number_input(key="seed"),
    }
    app.selectbox(key="optimizer").set_value("sgd").run()
    widgets["momentum"] = app.slider(key="momentum")
    app.selectbox(key="optimizer").set_value("adamw").run()
    widgets["weight_decay"] = app.number_input(key="weight_decay")
    app.selectbox(key="schedule").set_value("step").run()
    widgets["schedule_step_epochs"] = app.number_input(key="step_epochs")
    widgets["schedule_decay_rate"] = app.slider(key="decay_rate")
    app.selectbox(key="schedule").set_value("plateau").run()
    widgets["plateau_factor"] = app.slider(key="plateau_factor")
    widgets["plateau_patience"] = app.number_input(key="plateau_patience")
    app.checkbox(key="early_stopping").check().run()
    widgets["early_stopping_patience"] = app.number_input(key="patience")
    no_problems(app)
    for name, widget in widgets.items():
        assert (widget.min, widget.max) == TRAINING_RANGES[name].bounds(), name
    batch_sizes = app.select_slider(key="batch_size").options
    assert [int(size) for size in batch_sizes] == list(BATCH_SIZES)
    assert (BATCH_SIZES[0], BATCH_SIZES[-1]) == TRAINING_RANGES["batch_size"].bounds()


def test_the_data_pages_augmentation_sliders_take_their_bounds_from_the_ranges(cnnlab_home: Path) -> None:
    app = open_page("data").run()
    no_problems(app)
    for name, limits in AUGMENTATION_RANGES.items():
        if name == "rotation":  # Shown in degrees; the setting is Keras's fraction of a turn.
            slider = app.slider(key="augment_rotation_degrees")
            assert (slider.min, slider.max) == tuple(bound * 360 for bound in limits.bounds()), name
            continue
        slider = app.slider(key=f"augment_{name}")
        assert (slider.min, slider.max) == limits.bounds(), name
