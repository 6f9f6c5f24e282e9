"""The command line over recorded runs: `continue`, `fork`, `history`, `compare`, `export`, `delete`.

`continue RUN --epochs N` trains a completed, stopped or interrupted run N more epochs from its latest
checkpoint; `fork RUN --epoch E [--learning-rate ...]` starts a new run from the weights after epoch
E with changed settings. Both train here as `train` does (`cnnlab.cli.training.train_here`) and end
with the same JSON line. `history RUN` prints the run's per-epoch metrics, `compare RUN RUN...` the
settings and results where the runs differ (`cnnlab.runs.views.compare`), `export RUN --format
keras|tflite|script|zip` writes what the Runs page downloads (`cnnlab.trained.exports`), and
`delete RUN...` removes ended or queued runs and their files. Each goes through the acting user's
access (`cnnlab.cli.access`), and each that reports takes `--json`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.cli import access as cli_access
from cnnlab.cli import output
from cnnlab.cli import training as cli_training
from cnnlab.errors import RunError

if TYPE_CHECKING:
    from cnnlab.classroom.access import RunAccess
    from cnnlab.store.records import RunRecord

EXPORT_FORMATS = {"keras": ".keras", "tflite": ".tflite", "script": ".py", "zip": ".zip"}
# The training settings a fork may change (the model and the data stay the parent's).
FORK_OPTIONS = tuple(
    option for option in cli_training.TRAIN_OPTIONS if option not in cli_training.DATA_OPTIONS
)


def _run_argument(parser: argparse.ArgumentParser, many: bool = False) -> None:
    parser.add_argument(
        "runs" if many else "run",
        metavar="RUN",
        nargs="+" if many else None,
        help="run ids (or unique prefixes)" if many else "a run id (or a unique prefix)",
    )


def add_parsers(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `continue`, `fork`, `history`, `compare`, `export` and `delete`."""
    more = subcommands.add_parser(
        "continue", help="train an ended run more epochs from its latest checkpoint, here; end with JSON"
    )
    _run_argument(more)
    more.add_argument("--epochs", type=int, default=5, help="how many more epochs (default: 5)")
    output.add_json_option(more, help=output.ALWAYS_JSON).set_defaults(handler=command_continue)
    fork = subcommands.add_parser(
        "fork", help="train a new run from a run's weights after an epoch, with changed settings, here"
    )
    _run_argument(fork)
    fork.add_argument("--epoch", type=int, required=True, help="the parent's epoch to start from")
    for option in FORK_OPTIONS:
        cli_training.add_setting_option(fork, option)
    fork.add_argument(
        "--name", default=None, help="the fork's name (default: the parent's, marked as a fork)"
    )
    output.add_json_option(fork, help=output.ALWAYS_JSON).set_defaults(handler=command_fork)
    history = subcommands.add_parser("history", help="a run's metrics, one row (or JSON object) per epoch")
    _run_argument(history)
    output.add_json_option(history).set_defaults(handler=command_history)
    compare = subcommands.add_parser("compare", help="the settings and results where runs differ")
    _run_argument(compare, many=True)
    compare.add_argument("--all", action="store_true", help="every row, the same ones too")
    output.add_json_option(compare).set_defaults(handler=command_compare)
    export = subcommands.add_parser(
        "export", help="write a run's model (.keras or .tflite), training script or zip of everything"
    )
    _run_argument(export)
    export.add_argument("--format", choices=tuple(EXPORT_FORMATS), default="keras", help="default: keras")
    export.add_argument("--quantize", action="store_true", help="tflite: 8-bit weights, about 4x smaller")
    export.add_argument("--output", default=None, metavar="PATH", help="default: the run's file name, here")
    output.add_json_option(export).set_defaults(handler=command_export)
    delete = subcommands.add_parser("delete", help="delete ended or queued runs and all their files")
    _run_argument(delete, many=True)
    output.add_json_option(delete).set_defaults(handler=command_delete)


def command_continue(arguments: argparse.Namespace) -> int:
    """Queue the run for more epochs, train it here, end with its summary line."""
    return cli_training.train_here(
        arguments, lambda acting: acting.continue_run(arguments.run, arguments.epochs)
    )


def command_fork(arguments: argparse.Namespace) -> int:
    """Queue a fork of the run with the changed settings, train it here, end with its summary line."""
    from cnnlab.errors import SpecError

    def start(acting: RunAccess) -> RunRecord:
        parent = acting.get_run(arguments.run)
        changed = {
            option: getattr(arguments, option)
            for option in FORK_OPTIONS
            if getattr(arguments, option) is not None
        }
        try:
            settings = dataclasses.replace(parent.training(), **changed)
        except SpecError as error:
            raise SpecError(f"Invalid training option: {error}") from None
        return acting.fork(parent.id, arguments.epoch, settings, name=arguments.name)

    return cli_training.train_here(arguments, start)


def command_history(arguments: argparse.Namespace) -> int:
    """Print the run's per-epoch metrics: a table, or with --json one JSON array of epoch objects."""
    acting = cli_access.runs(arguments)
    run = acting.get_run(arguments.run)
    table = acting.epoch_metrics(run.id)
    if output.wants_json(arguments):
        output.print_json(table.to_dict("records"))
        return 0
    if table.empty:
        print(f"Run {run.id} ({run.name}) has no whole epoch yet; status: {run.status}.")
        return 0
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    found = output.best_validation(acting, run)
    if found["best_validation_accuracy"] is not None:
        print(
            f"Best validation accuracy: {found['best_validation_accuracy']:.4f} at epoch {found['best_epoch']}"
        )
    return 0


def command_compare(arguments: argparse.Namespace) -> int:
    """Print where the runs differ (every row with --all); with --json, each run's described settings."""
    from cnnlab.runs.views import compare

    acting = cli_access.runs(arguments)
    runs = [acting.get_run(run_id) for run_id in arguments.runs]
    if output.wants_json(arguments):
        output.print_json(
            [
                {"id": run.id, **compare.describe_run(run), **output.best_validation(acting, run)}
                for run in runs
            ]
        )
        return 0
    table = compare.differences(runs, only_different=not arguments.all)
    if table.empty:
        print("The runs have the same settings and results.")
    else:
        print(table.to_string())
    return 0


def _export_bytes(acting: RunAccess, run: RunRecord, what: str, quantize: bool) -> bytes:
    from cnnlab.trained import exports

    if what == "script":
        return exports.training_script(run).encode("utf-8")
    if what == "keras":
        return exports.model_bytes(acting, run)
    # TFLite conversion prints Keras's "Saved artifact at ..." on stdout: keep stdout for the answer.
    with contextlib.redirect_stdout(io.StringIO()):
        if what == "tflite":
            return exports.tflite_bytes(acting, run, quantize=quantize)
        return exports.bundle(acting, run)


def command_export(arguments: argparse.Namespace) -> int:
    """Write the run's model, script or zip to a file and say where."""
    from cnnlab.trained import exports

    acting = cli_access.runs(arguments)
    run = acting.get_run(arguments.run)
    if arguments.format != "script":
        exports.model_checkpoint(acting, run)  # CheckpointError before any work when it has no model yet.
        output.quiet_tensorflow(arguments)  # Reading and converting the model starts Keras.
    suffix = EXPORT_FORMATS[arguments.format]
    stem = exports.file_stem(run) + (
        "_quantized" if arguments.quantize and arguments.format == "tflite" else ""
    )
    path = Path(arguments.output) if arguments.output else Path(stem + suffix)
    content = _export_bytes(acting, run, arguments.format, arguments.quantize)
    try:
        path.write_bytes(content)
    except OSError as error:
        raise RunError(f"Cannot write {path}: {error.strerror or error}. Choose another --output.") from None
    if output.wants_json(arguments):
        output.print_json(
            {"run_id": run.id, "format": arguments.format, "path": str(path), "bytes": len(content)}
        )
    else:
        print(f"Wrote {path} ({len(content):,} bytes): run {run.id} ({run.name}) as {arguments.format}.")
    return 0


def command_delete(arguments: argparse.Namespace) -> int:
    """Delete each run (ended or queued) with its files; a live one is refused (stop it first)."""
    acting = cli_access.runs(arguments)
    deleted = []
    for run_id in arguments.runs:
        run = acting.get_run(run_id)
        acting.delete(run.id)
        deleted.append({"id": run.id, "name": run.name})
        if not output.wants_json(arguments):
            print(f"Deleted run {run.id} ({run.name}) and its files.")
    if output.wants_json(arguments):
        output.print_json({"deleted": deleted})
    return 0
