"""The command line: `python -m cnnlab ...` and the `cnnlab` console script.

Each subcommand is a `_command_<name>(arguments) -> int` function registered in `_parser`.
Errors a user can cause (`CnnLabError`) print their message and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.cli import access as cli_access
from cnnlab.cli import sweep as cli_sweep
from cnnlab.cli import trained as cli_trained
from cnnlab.errors import CnnLabError, SpecError
from cnnlab.model import shapes
from cnnlab.run_request import RunRequest
from cnnlab.specs import ModelSpec
from cnnlab.store.statuses import Status

if TYPE_CHECKING:
    from cnnlab.specs import DataSettings, TrainingSettings
    from cnnlab.store.records import RunRecord
    from cnnlab.store.run_store import Store

Command = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab", description="CNN Lab: build, train and look inside convolutional neural networks."
    )
    cli_access.add_option(parser)  # --as OWNER --role ROLE
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands are added below, one block each.
    subcommands.add_parser("presets", help="list the preset architectures").set_defaults(
        handler=_command_presets
    )
    summary = subcommands.add_parser(
        "summary", help="print a Keras-style table of layers, shapes and parameters"
    )
    summary.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    summary.set_defaults(handler=_command_summary)
    code = subcommands.add_parser(
        "code", help="print a runnable Keras training script for a model (needs no CNN Lab to run)"
    )
    code.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    code.add_argument(
        "--dataset",
        default="digits",
        metavar="NAME_OR_PATH",
        help="the dataset the script loads (default: digits)",
    )
    for option in _DATA_OPTIONS:
        _add_train_option(code, option)
    code.set_defaults(handler=_command_code, early_stopping=None)
    subcommands.add_parser(
        "datasets", help="list the datasets and whether each is available now"
    ).set_defaults(handler=_command_datasets)
    dataset_info = subcommands.add_parser(
        "dataset-info", help="load a dataset and print counts per class and split, and skipped files"
    )
    dataset_info.add_argument(
        "dataset", metavar="NAME_OR_PATH", help="a dataset name, or a folder or .zip of images"
    )
    dataset_info.add_argument(
        "--image-size", type=int, default=None, help="resize to this many pixels per side"
    )
    dataset_info.add_argument("--color-mode", choices=("grayscale", "rgb"), default=None, help="colour mode")
    dataset_info.add_argument("--subset", type=int, default=None, help="use at most this many images")
    dataset_info.add_argument("--validation-fraction", type=float, default=0.15, help="default: 0.15")
    dataset_info.add_argument("--test-fraction", type=float, default=0.15, help="default: 0.15")
    dataset_info.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    dataset_info.set_defaults(handler=_command_dataset_info)
    train = subcommands.add_parser("train", help="train a model in a worker process; end with one JSON line")
    train.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    train.add_argument("--dataset", default="digits", metavar="NAME_OR_PATH", help="default: digits")
    for option in _TRAIN_OPTIONS:
        _add_train_option(train, option)
    train.add_argument(
        "--early-stopping", action="store_true", default=None, help="stop when it stops improving"
    )
    train.add_argument("--name", default=None, help="the run's name")
    train.add_argument("--owner", default="cli", help="the run's owner (default: cli)")
    train.set_defaults(handler=_command_train)
    runs = subcommands.add_parser("runs", help="list training runs, newest first")
    runs.add_argument(
        "--status",
        default=None,
        choices=[status.value for status in Status],
        help="only runs with this status",
    )
    runs.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    runs.set_defaults(handler=_command_runs)
    cli_access.add_people_command(subcommands)
    stop = subcommands.add_parser("stop", help="stop a run after its current batch")
    stop.add_argument("run", metavar="RUN", help="a run id (or a unique prefix)")
    stop.set_defaults(handler=_command_stop)
    lr_find = subcommands.add_parser(
        "lr-find", help="run the learning-rate range test in a worker; print the suggestion"
    )
    lr_find.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    lr_find.add_argument("--dataset", default="digits", metavar="NAME_OR_PATH", help="default: digits")
    for option, kind in _TRAIN_OPTIONS.items():
        lr_find.add_argument(
            f"--{option.replace('_', '-')}", type=kind, default=None, help=_train_help(option)
        )
    lr_find.set_defaults(handler=_command_lr_find, early_stopping=None)
    cli_trained.add_parsers(subcommands)  # predict, evaluate
    cli_sweep.add_parsers(subcommands, _train_settings)  # sweep, sweeps, sweep-show, sweep-stop
    return parser


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


def _command_presets(arguments: argparse.Namespace) -> int:
    from cnnlab.model import presets

    for preset, analysis in presets.summaries():
        shape = "x".join(str(size) for size in preset.input_shape)
        print(f"{preset.name:<24} {shape:>11}  {analysis.total_parameters:>12,} params  {preset.title}")
    return 0


def _command_summary(arguments: argparse.Namespace) -> int:
    spec = load_spec(arguments.spec)
    print(summary_table(shapes.check(spec)))
    return 0


def summary_table(analysis: shapes.Analysis) -> str:
    """A Keras-style summary: layers, output shapes, parameters; the last line is the total."""
    widths = (34, 24, 14)
    rule = "─" * (sum(widths) + 4)
    lines = [f'Model: "{analysis.spec.name}"', rule]
    lines.append(f" {'Layer (type)':<{widths[0]}} {'Output Shape':<{widths[1]}} {'Param #':>{widths[2]}}")
    lines.append(rule)
    for row in analysis.rows:
        layer = f"{row.name} ({row.type})"
        shape = "(None, " + ", ".join(str(size) for size in row.output_shape) + ")"
        lines.append(f" {layer:<{widths[0]}} {shape:<{widths[1]}} {row.parameters:>{widths[2]},}")
    lines.append(rule)
    lines.append(f" Trainable params: {analysis.trainable_parameters:,}")
    lines.append(f" Non-trainable params: {analysis.non_trainable_parameters:,}")
    lines.append(f"Total params: {analysis.total_parameters:,}")
    return "\n".join(lines)


def _command_code(arguments: argparse.Namespace) -> int:
    from cnnlab.model import codegen

    spec, data, _ = _train_settings(arguments)
    print(codegen.script(spec, data=data))
    return 0


def _command_datasets(arguments: argparse.Namespace) -> int:
    from cnnlab.data import datasets

    for entry in datasets.registry():
        shape = "x".join(str(size) for size in entry.image_shape)
        status = "available" if entry.available else "not available"
        print(
            f"{entry.name:<14} {shape:>8}  {len(entry.class_names):>3} classes  {entry.size:>7,} images  "
            f"{status:<13}  {entry.title}"
        )
        if entry.unavailable_reason:
            print(f"{'':<16}{entry.unavailable_reason}")
    return 0


def _command_dataset_info(arguments: argparse.Namespace) -> int:
    from cnnlab.data import datasets
    from cnnlab.specs import DataSettings

    try:
        settings = DataSettings(
            dataset=arguments.dataset,
            image_size=arguments.image_size,
            color_mode=arguments.color_mode,
            subset=arguments.subset,
            validation_fraction=arguments.validation_fraction,
            test_fraction=arguments.test_fraction,
            seed=arguments.seed,
        )
    except SpecError as error:
        raise SpecError(f"Invalid data settings: {error}") from None
    data = datasets.load(settings)
    shape = "x".join(str(size) for size in data.image_shape)
    print(
        f"{data.info.title} ({data.info.name}): {data.info.size:,} images of {shape}, {data.num_classes} classes"
    )
    print(f"Source: {data.info.source}. Licence: {data.info.licence}.")
    print()
    table = data.summary.copy()
    table.loc["(all classes)"] = data.summary.sum()
    print(table.to_string())
    if data.skipped is not None:
        print()
        print(data.skipped.to_text())
    return 0


_DATA_OPTIONS = ("image_size", "color_mode", "subset", "validation_fraction", "test_fraction")
_TRAIN_OPTIONS: dict[str, Callable[[str], object]] = {
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
    # Data settings (`_DATA_OPTIONS`).
    "image_size": int,
    "color_mode": str,
    "subset": int,
    "validation_fraction": float,
    "test_fraction": float,
}


def _add_train_option(parser: argparse.ArgumentParser, option: str) -> None:
    """Add `--OPTION` for a training or data setting: its type, its choices where it has a list, its default."""
    from cnnlab.specs import COLOR_MODES, OPTIMIZERS, SCHEDULES

    choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "color_mode": COLOR_MODES}.get(option)
    parser.add_argument(
        f"--{option.replace('_', '-')}",
        type=_TRAIN_OPTIONS[option],
        default=None,
        choices=choices,
        help=_train_help(option),
    )


def _train_help(option: str) -> str:
    from cnnlab.setting_ranges import TRAINING_RANGES
    from cnnlab.specs import DataSettings, TrainingSettings

    default = getattr(DataSettings() if option in _DATA_OPTIONS else TrainingSettings(), option)
    limits = TRAINING_RANGES.get(option) if option not in _DATA_OPTIONS else None
    shown = "the dataset's own" if default is None else default
    return f"default: {shown}" + (f"; in {limits.describe()}" if limits is not None else "")


def _train_settings(arguments: argparse.Namespace) -> tuple[ModelSpec, DataSettings, TrainingSettings]:
    """The spec fitted to the dataset, and the data and training settings the options ask for."""
    from cnnlab.data import datasets
    from cnnlab.model import presets
    from cnnlab.specs import DataSettings, TrainingSettings

    given = {
        option: getattr(arguments, option)
        for option in _TRAIN_OPTIONS
        if getattr(arguments, option, None) is not None  # A command may offer only some of them.
    }
    if getattr(arguments, "early_stopping", None):
        given["early_stopping"] = True
    try:
        data = DataSettings(
            dataset=arguments.dataset, **{key: given.pop(key) for key in _DATA_OPTIONS if key in given}
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


def _progress_line(store: Store, run: RunRecord, steps_per_epoch: int | None) -> str:
    """`epoch 3/10 [#####.....] 41% loss 0.3123 accuracy 0.912 ETA 0:07` for a running run."""
    import time

    epochs = run.training().epochs
    if run.status == Status.QUEUED:
        return f"queued (position {run.queue_position})"
    latest = store.batch_metrics(run.id).tail(1)
    if latest.empty or not steps_per_epoch:
        return f"{run.status}..."
    row = latest.iloc[0]
    done = min(1.0, ((row["epoch"] - 1) * steps_per_epoch + row["batch"]) / (epochs * steps_per_epoch))
    elapsed = time.time() - (run.started_at or time.time())
    remaining = int(elapsed * (1 - done) / done) if done > 0 else 0
    bar = "#" * int(done * 30) + "." * (30 - int(done * 30))
    return (
        f"epoch {int(row['epoch'])}/{epochs} [{bar}] {done:4.0%} loss {row['loss']:.4f} "
        f"accuracy {row['accuracy']:.3f} ETA {remaining // 60}:{remaining % 60:02d}"
    )


def _command_train(arguments: argparse.Namespace) -> int:
    import json
    import math
    import time

    from cnnlab.runs.queue import scheduler as scheduling

    spec, data, training = _train_settings(arguments)
    runner = scheduling.Scheduler(warm=False).start()
    acting = cli_access.runs(arguments, owner=arguments.owner, scheduler=runner)
    try:
        run = acting.submit(
            RunRequest(spec=spec, data_settings=data, training_settings=training, name=arguments.name)
        )
    except CnnLabError:
        runner.shutdown()
        raise
    steps_per_epoch, shown = None, ""
    try:
        while not run.is_ended:
            time.sleep(0.5)
            run = runner.store.get_run(run.id)
            train_images = run.train_images()
            if steps_per_epoch is None and train_images:
                steps_per_epoch = math.ceil(train_images / training.batch_size)
            line = _progress_line(runner.store, run, steps_per_epoch)
            if sys.stderr.isatty():
                print(f"\r{line:<100}", end="", file=sys.stderr, flush=True)
            elif line.split("[")[0] != shown:
                # Without a terminal, one line per epoch (or status) instead of a redrawn bar.
                print(line, file=sys.stderr, flush=True)
            shown = line.split("[")[0]
    except KeyboardInterrupt:
        runner.stop(run.id)
        run = runner.wait(run.id, timeout=60)
    finally:
        runner.shutdown()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    results = run.results or {}
    summary: dict[str, object] = {
        "run_id": run.id,
        "status": run.status.value,
        "epochs": results.get("epochs", 0),
    }
    for split, prefix in (("train", ""), ("validation", "val_"), ("test", "test_")):
        for metric in ("accuracy", "loss"):
            summary[f"{split}_{metric}"] = results.get(f"{prefix}{metric}")
    if run.reason:
        summary["reason"] = run.reason
    summary["diagnoses"] = _print_diagnoses(runner.store, run.id)
    print(json.dumps(summary))
    return 0 if run.status in (Status.COMPLETED, Status.STOPPED) else 1


def _print_diagnoses(store: Store, run_id: str) -> list[str]:
    """Print the run's diagnoses (`cnnlab.runs.views.diagnosis`) to stderr; return their event lines."""
    from cnnlab.runs.views import diagnosis

    found = diagnosis.read(store, run_id)
    for item in found:
        print(f"{item.title} (epoch {item.epoch}): {item.cause}\n  Fix: {item.fix}", file=sys.stderr)
    return [item.message() for item in found]


def _command_lr_find(arguments: argparse.Namespace) -> int:
    from cnnlab.model import shapes
    from cnnlab.runs.queue import learning_rate_range as lr_finder

    spec, data, training = _train_settings(arguments)
    print(
        lr_finder.wait_message(shapes.analyse(spec).flops, training.batch_size), file=sys.stderr, flush=True
    )
    result = lr_finder.find_learning_rate_in_worker(spec, data, training)
    print(result.summary())
    return 0


def _command_runs(arguments: argparse.Namespace) -> int:
    import time

    print(f"{'RUN':<14} {'STATUS':<12} {'EPOCHS':>7} {'VAL ACC':>8} {'TEST ACC':>9}  {'CREATED':<19}  NAME")
    for run in cli_access.runs(arguments).list_runs(status=arguments.status, limit=arguments.limit):
        epochs = f"{run.last_epoch}/{run.training_settings.get('epochs', '?')}"
        validation, test = run.result("val_accuracy"), run.result("test_accuracy")
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created_at))
        print(
            f"{run.id:<14} {run.status:<12} {epochs:>7} {'' if validation is None else f'{validation:.4f}':>8} "
            f"{'' if test is None else f'{test:.4f}':>9}  {created:<19}  {run.name}"
        )
    return 0


def _command_stop(arguments: argparse.Namespace) -> int:
    acting = cli_access.runs(arguments)
    before = acting.get_run(arguments.run)
    run = acting.stop(before.id)
    if before.is_ended:
        action = "had already ended"
    else:
        action = "stopped" if run.is_ended else "was asked to stop after its current batch"
    print(f"Run {run.id} ({run.name}) {action}; status: {run.status}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: `sys.argv[1:]`); return the exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    command: Command = arguments.handler
    try:
        return command(arguments)
    except CnnLabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
