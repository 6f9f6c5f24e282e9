"""The command line: `python -m cnnlab ...` and the `cnnlab` console script.

Each subcommand is a `_command_<name>(arguments) -> int` function registered in `_parser` (here,
or in the `cnnlab.cli` module of its topic). Errors a user can cause (`CnnLabError`) print their
message and exit 2, without a traceback. Every command that reports takes `--json`
(`cnnlab.cli.output`); `--verbose` keeps TensorFlow's own log lines.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from cnnlab.cli import access as cli_access
from cnnlab.cli import output, run_commands
from cnnlab.cli import sweep as cli_sweep
from cnnlab.cli import trained as cli_trained
from cnnlab.cli import training as cli_training
from cnnlab.errors import CnnLabError, SpecError
from cnnlab.model import shapes
from cnnlab.specs import COLOR_MODES
from cnnlab.store.statuses import Status

Command = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab", description="CNN Lab: build, train and look inside convolutional neural networks."
    )
    cli_access.add_option(parser)  # --as OWNER --role ROLE
    output.add_verbose_option(parser, top_level=True)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands are added below, one block each.
    output.add_json_option(
        subcommands.add_parser("presets", help="list the preset architectures")
    ).set_defaults(handler=_command_presets)
    summary = subcommands.add_parser(
        "summary", help="print a Keras-style table of layers, shapes and parameters"
    )
    summary.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    output.add_json_option(summary).set_defaults(handler=_command_summary)
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
    for option in cli_training.DATA_OPTIONS:
        cli_training.add_setting_option(code, option)
    code.set_defaults(handler=_command_code, early_stopping=None)
    output.add_json_option(
        subcommands.add_parser("datasets", help="list the datasets and whether each is available now")
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
    dataset_info.add_argument("--color-mode", choices=COLOR_MODES, default=None, help="colour mode")
    dataset_info.add_argument("--subset", type=int, default=None, help="use at most this many images")
    dataset_info.add_argument("--validation-fraction", type=float, default=0.15, help="default: 0.15")
    dataset_info.add_argument("--test-fraction", type=float, default=0.15, help="default: 0.15")
    dataset_info.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    output.add_json_option(dataset_info).set_defaults(handler=_command_dataset_info)
    cli_training.add_parsers(subcommands)  # train, lr-find
    runs = subcommands.add_parser("runs", help="list training runs, newest first")
    runs.add_argument(
        "--status",
        default=None,
        choices=[status.value for status in Status],
        help="only runs with this status",
    )
    runs.add_argument("--limit", type=int, default=50, help="at most this many (default: 50)")
    output.add_json_option(runs).set_defaults(handler=_command_runs)
    cli_access.add_people_command(subcommands)
    stop = subcommands.add_parser("stop", help="stop a run after its current batch")
    stop.add_argument("run", metavar="RUN", help="a run id (or a unique prefix)")
    output.add_json_option(stop).set_defaults(handler=_command_stop)
    cli_trained.add_parsers(subcommands)  # predict, evaluate
    run_commands.add_parsers(subcommands)  # continue, fork, history, compare, export, delete
    cli_sweep.add_parsers(subcommands, cli_training.train_settings)  # sweep, sweeps, sweep-show, sweep-stop
    for command in subcommands.choices.values():
        output.add_verbose_option(command, top_level=False)
    return parser


def _command_presets(arguments: argparse.Namespace) -> int:
    from cnnlab.model import presets

    found = presets.summaries()
    if output.wants_json(arguments):
        output.print_json(
            [
                {
                    "name": preset.name,
                    "title": preset.title,
                    "input_shape": list(preset.input_shape),
                    "parameters": analysis.total_parameters,
                }
                for preset, analysis in found
            ]
        )
        return 0
    for preset, analysis in found:
        shape = "x".join(str(size) for size in preset.input_shape)
        print(f"{preset.name:<24} {shape:>11}  {analysis.total_parameters:>12,} params  {preset.title}")
    return 0


def _command_summary(arguments: argparse.Namespace) -> int:
    analysis = shapes.check(cli_training.load_spec(arguments.spec))
    if output.wants_json(arguments):
        output.print_json(
            {
                "name": analysis.spec.name,
                "layers": [
                    {
                        "name": row.name,
                        "type": row.type,
                        "output_shape": list(row.output_shape),
                        "parameters": row.parameters,
                    }
                    for row in analysis.rows
                ],
                "trainable_parameters": analysis.trainable_parameters,
                "non_trainable_parameters": analysis.non_trainable_parameters,
                "total_parameters": analysis.total_parameters,
            }
        )
        return 0
    print(summary_table(analysis))
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

    spec, data, _ = cli_training.train_settings(arguments)
    print(codegen.script(spec, data=data, keep_folder=True))
    return 0


def _command_datasets(arguments: argparse.Namespace) -> int:
    from cnnlab.data import datasets

    found = datasets.registry()
    if output.wants_json(arguments):
        output.print_json(
            [
                {
                    "name": entry.name,
                    "title": entry.title,
                    "image_shape": list(entry.image_shape),
                    "classes": list(entry.class_names),
                    "size": entry.size,
                    "available": entry.available,
                    "unavailable_reason": entry.unavailable_reason,
                }
                for entry in found
            ]
        )
        return 0
    for entry in found:
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
    if output.wants_json(arguments):
        output.print_json(
            {
                "name": data.info.name,
                "title": data.info.title,
                "image_shape": list(data.image_shape),
                "classes": list(data.class_names),
                "counts": data.summary.reset_index().to_dict("records"),
                "skipped": None if data.skipped is None else data.skipped.by_reason,
                "notes": list(data.notes),
            }
        )
        return 0
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


def _command_runs(arguments: argparse.Namespace) -> int:
    import time

    acting = cli_access.runs(arguments)
    listed = acting.list_runs(status=arguments.status, limit=arguments.limit)
    rows = [
        {
            "id": run.id,
            "status": str(run.status),
            "epochs": run.last_epoch,
            "planned_epochs": run.training_settings.get("epochs"),
            **output.best_validation(acting, run),
            "test_accuracy": run.result("test_accuracy"),
            "created_at": run.created_at,
            "name": run.name,
        }
        for run in listed
    ]
    if output.wants_json(arguments):
        output.print_json(rows)
        return 0
    print(
        f"{'RUN':<14} {'STATUS':<12} {'EPOCHS':>7} {'BEST VAL ACC (EPOCH)':>21} {'TEST ACC':>9}  {'CREATED':<19}  NAME"
    )
    for row in rows:
        epochs = f"{row['epochs']}/{row['planned_epochs'] or '?'}"
        test = row["test_accuracy"]
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(str(row["created_at"]))))
        print(
            f"{row['id']:<14} {row['status']:<12} {epochs:>7} {output.describe_best(row):>21} "
            f"{'' if test is None else f'{test:.4f}':>9}  {created:<19}  {row['name']}"
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
    if output.wants_json(arguments):
        output.print_json({"run_id": run.id, "name": run.name, "action": action, "status": str(run.status)})
        return 0
    print(f"Run {run.id} ({run.name}) {action}; status: {run.status}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: `sys.argv[1:]`); return the exit code."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    command: Command = arguments.handler
    if not arguments.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Worker processes inherit it.
    try:
        return command(arguments)
    except CnnLabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
