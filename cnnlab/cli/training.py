"""The command line's training: `train` and `lr-find`, and the options they read.

Every training and data setting is an option (`--learning-rate 3e-3`, `--image-size 32`); an option
with a fixed list (optimizer, schedule, colour mode) lists it in the help, from the one definition in
`cnnlab.specs`. `lr-find` offers only the settings the range test uses. `train` trains in a worker
here, follows the run (`cnnlab.cli.follow`) and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.cli import access as cli_access
from cnnlab.cli import follow, output
from cnnlab.errors import SpecError
from cnnlab.run_request import RunRequest
from cnnlab.specs import ModelSpec

if TYPE_CHECKING:
    from cnnlab.classroom.access import RunAccess
    from cnnlab.specs import DataSettings, TrainingSettings
    from cnnlab.store.records import RunRecord

DATA_OPTIONS = ("image_size", "color_mode", "subset", "validation_fraction", "test_fraction")
TRAIN_OPTIONS: dict[str, Callable[[str], object]] = {
    # Training settings.
    "epochs": int,
    "batch_size": int,
    "learning_rate": float,
    "optimizer": str,
    "schedule": str,
    "momentum": float,
    "l2": float,
    "early_stopping_patience": int,
    "seed": int,
    # Data settings (`DATA_OPTIONS`).
    "image_size": int,
    "color_mode": str,
    "subset": int,
    "validation_fraction": float,
    "test_fraction": float,
}
# What the learning-rate range test uses: it sweeps the rate itself, for its own number of steps.
LR_FIND_OPTIONS = ("batch_size", "optimizer", "momentum", "l2", "seed", *DATA_OPTIONS)


def load_spec(name_or_path: str) -> ModelSpec:
    """A preset by name, or a model spec read from a JSON file."""
    from cnnlab.model import presets

    if name_or_path in presets.PRESETS:
        return presets.get(name_or_path).spec
    path = Path(name_or_path)
    if not path.is_file():
        raise SpecError(
            f"{name_or_path!r} is neither a preset nor a JSON file. Presets: {', '.join(presets.PRESETS)}."
        )
    return ModelSpec.from_json(path.read_text(encoding="utf-8"))


def add_setting_option(parser: argparse.ArgumentParser, option: str) -> None:
    """Add `--OPTION` for a training or data setting: its type, its choices where it has a list, its default."""
    from cnnlab.specs import COLOR_MODES, OPTIMIZERS, SCHEDULES

    choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "color_mode": COLOR_MODES}.get(option)
    parser.add_argument(
        f"--{option.replace('_', '-')}",
        type=TRAIN_OPTIONS[option],
        default=None,
        choices=choices,
        help=_setting_help(option),
    )


def _setting_help(option: str) -> str:
    from cnnlab.setting_ranges import TRAINING_RANGES
    from cnnlab.specs import DataSettings, TrainingSettings

    default = getattr(DataSettings() if option in DATA_OPTIONS else TrainingSettings(), option)
    limits = TRAINING_RANGES.get(option) if option not in DATA_OPTIONS else None
    shown = "the dataset's own" if default is None else default
    return f"default: {shown}" + (f"; in {limits.describe()}" if limits is not None else "")


def add_parsers(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `train` and `lr-find`."""
    train = subcommands.add_parser("train", help="train a model in a worker process; end with one JSON line")
    train.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    train.add_argument("--dataset", default="digits", metavar="NAME_OR_PATH", help="default: digits")
    for option in TRAIN_OPTIONS:
        add_setting_option(train, option)
    train.add_argument(
        "--early-stopping", action="store_true", default=None, help="stop when it stops improving"
    )
    train.add_argument("--name", default=None, help="the run's name")
    train.add_argument("--owner", default="cli", help="the run's owner (default: cli)")
    output.add_json_option(train, help=output.ALWAYS_JSON).set_defaults(handler=command_train)
    lr_find = subcommands.add_parser(
        "lr-find", help="run the learning-rate range test in a worker; print the suggestion"
    )
    lr_find.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    lr_find.add_argument("--dataset", default="digits", metavar="NAME_OR_PATH", help="default: digits")
    for option in LR_FIND_OPTIONS:
        add_setting_option(lr_find, option)
    output.add_json_option(lr_find)
    lr_find.set_defaults(handler=command_lr_find)


def train_settings(arguments: argparse.Namespace) -> tuple[ModelSpec, DataSettings, TrainingSettings]:
    """The spec fitted to the dataset (input shape, one output per class), and the data and training
    settings the options ask for (a command may offer only some of the options)."""
    from cnnlab.data import datasets
    from cnnlab.model import presets
    from cnnlab.specs import DataSettings, TrainingSettings

    given = {
        option: getattr(arguments, option)
        for option in TRAIN_OPTIONS
        if getattr(arguments, option, None) is not None
    }
    if getattr(arguments, "early_stopping", None):
        given["early_stopping"] = True
    try:
        data = DataSettings(
            dataset=arguments.dataset, **{key: given.pop(key) for key in DATA_OPTIONS if key in given}
        )
        # A preset trains with the settings it was written with (e.g. the digits' augmentation).
        preset_training = (
            presets.PRESETS[arguments.spec].training if arguments.spec in presets.PRESETS else {}
        )
        training = TrainingSettings(**{**preset_training, **given})
    except SpecError as error:
        raise SpecError(f"Invalid training option: {error}") from None
    info = datasets.info(arguments.dataset)
    height, width, channels = info.image_shape
    size = data.image_size
    channels = {"grayscale": 1, "rgb": 3}.get(data.color_mode or "", channels)
    shape = (size or height, size or width, channels)
    return presets.adapt(load_spec(arguments.spec), shape, len(info.class_names)), data, training


def train_here(arguments: argparse.Namespace, start: Callable[[RunAccess], RunRecord]) -> int:
    """Start a scheduler here, let `start(access)` queue a run through it, follow the run to its end
    and print its summary as one JSON line; the exit code says how it ended."""
    import json

    from cnnlab.runs.queue import scheduler as scheduling

    runner = scheduling.Scheduler(warm=False).start()
    try:
        acting = cli_access.runs(arguments, owner=getattr(arguments, "owner", None), scheduler=runner)
        run = follow.follow(runner, start(acting))
    finally:
        runner.shutdown()
    print(json.dumps(output.plain(follow.summary(runner.store, run))))
    return follow.exit_code(run)


def command_train(arguments: argparse.Namespace) -> int:
    """Train a model here and end with one JSON line (best validation accuracy with its epoch)."""
    spec, data, training = train_settings(arguments)
    request = RunRequest(spec=spec, data_settings=data, training_settings=training, name=arguments.name)
    return train_here(arguments, lambda acting: acting.submit(request))


def command_lr_find(arguments: argparse.Namespace) -> int:
    """Run the learning-rate range test in a worker and print its suggestion (or why there is none)."""
    from cnnlab.model import shapes
    from cnnlab.runs.queue import learning_rate_range as lr_finder

    spec, data, training = train_settings(arguments)
    print(
        lr_finder.wait_message(shapes.analyse(spec).flops, training.batch_size), file=sys.stderr, flush=True
    )
    result = lr_finder.find_learning_rate_in_worker(spec, data, training)
    if output.wants_json(arguments):
        output.print_json(result.to_dict())
    else:
        print(result.summary())
    return 0
