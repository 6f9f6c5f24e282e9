"""The command line: `python -m cnnlab ...` and the `cnnlab` console script.

Each subcommand is a `_command_<name>(arguments) -> int` function registered in `_parser`.
Errors a user can cause (`CnnLabError`) print their message and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cnnlab.errors import CnnLabError

Command = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab", description="CNN Lab: build, train and look inside convolutional neural networks."
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands are added below, one block each.
    return parser


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
