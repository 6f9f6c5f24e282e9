"""The command line: `python -m cnnlab ...` and the `cnnlab` console script.

Each subcommand is a `_command_<name>(arguments) -> int` function registered in `_parser`.
Errors a user can cause (`CnnLabError`) print their message and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cnnlab import shapes
from cnnlab.errors import CnnLabError, SpecError
from cnnlab.specs import ModelSpec

Command = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab", description="CNN Lab: build, train and look inside convolutional neural networks."
    )
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
    code = subcommands.add_parser("code", help="print a runnable Keras training script for a model")
    code.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    code.add_argument("--dataset", default="digits", help="the dataset the script loads (default: digits)")
    code.set_defaults(handler=_command_code)
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
    return parser


def load_spec(name_or_path: str) -> ModelSpec:
    """A preset by name, or a model spec read from a JSON file."""
    from cnnlab import presets

    if name_or_path in presets.PRESETS:
        return presets.get(name_or_path).spec
    path = Path(name_or_path)
    if not path.is_file():
        raise SpecError(
            f"{name_or_path!r} is neither a preset nor a JSON file. Presets: {', '.join(presets.PRESETS)}."
        )
    return ModelSpec.from_json(path.read_text(encoding="utf-8"))


def _command_presets(arguments: argparse.Namespace) -> int:
    from cnnlab import presets

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
    from cnnlab import codegen
    from cnnlab.specs import DataSettings

    print(codegen.script(load_spec(arguments.spec), data=DataSettings(dataset=arguments.dataset)))
    return 0


def _command_datasets(arguments: argparse.Namespace) -> int:
    from cnnlab import datasets

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
    from cnnlab import datasets
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
    except ValueError as error:
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
