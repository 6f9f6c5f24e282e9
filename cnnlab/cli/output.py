"""What the command line prints, defined once: `--json`, the best validation accuracy, TensorFlow's quiet.

- `--json` (`add_json_option`, `print_json`): a command that reports prints one JSON document on
  stdout instead of its table, with plain numbers (NaN as null) for scripts to read.
- "Validation accuracy" in the CLI is always the run's best, with its epoch (`best_validation`):
  the epoch the `best` checkpoint holds (`cnnlab.store.best`), as the pages show it.
- TensorFlow's own start-up lines (absl's "All log messages before absl::InitializeLog()", oneDNN's
  notes) go to the process's stderr before any Python setting can stop them, so `quiet_tensorflow`
  imports TensorFlow with stderr pointed at /dev/null; `--verbose` keeps them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnlab.store.reader import RunReader
    from cnnlab.store.records import RunRecord

JSON_DESTINATION = "as_json"
VERBOSE_DESTINATION = "verbose"


def add_json_option(
    parser: argparse.ArgumentParser, help: str = "print one JSON document instead"
) -> argparse.ArgumentParser:
    """Add `--json` (one JSON document on stdout instead of the table) to a command's parser."""
    parser.add_argument("--json", dest=JSON_DESTINATION, action="store_true", help=help)
    return parser


ALWAYS_JSON = "accepted for scripts: the command always ends with its one JSON line"


def add_verbose_option(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """Add `--verbose` (keep TensorFlow's own log lines), before the command or after it."""
    parser.add_argument(
        "--verbose",
        dest=VERBOSE_DESTINATION,
        action="store_true",
        # A command's own copy must not reset what was given before the command.
        default=False if top_level else argparse.SUPPRESS,
        help="show TensorFlow's own log lines on stderr (quiet by default)",
    )


def wants_json(arguments: argparse.Namespace) -> bool:
    """True when the command was given `--json`."""
    return bool(getattr(arguments, JSON_DESTINATION, False))


def plain(value: Any) -> Any:
    """`value` ready for JSON: numpy numbers as Python numbers, NaN and infinities as None."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(value: Any) -> None:
    """Print `value` as one JSON document on stdout."""
    print(json.dumps(plain(value), default=str), flush=True)


def best_validation(store: RunReader, run: RunRecord) -> dict[str, float | int | None]:
    """The run's best validation accuracy and its epoch: what "validation accuracy" means in the CLI.

    An ended run's results record them; a live run's are read from its epoch metrics so far. Both
    None before a whole epoch, or when the run has no validation split.
    """
    from cnnlab.store import best
    from cnnlab.trained import checkpoints

    score = checkpoints.recorded_best(run) or checkpoints.best_epoch(store, run.id)
    if score is None or score.monitor != best.MONITOR:
        return {"best_validation_accuracy": None, "best_epoch": None}
    return {"best_validation_accuracy": score.value, "best_epoch": score.epoch}


def describe_best(found: Mapping[str, object]) -> str:
    """`best_validation`'s figures as a table cell: "0.9123 (3)"; empty before there is one."""
    value, epoch = found["best_validation_accuracy"], found["best_epoch"]
    return f"{value:.4f} ({epoch})" if isinstance(value, int | float) else ""


def quiet_tensorflow(arguments: argparse.Namespace) -> None:
    """Import TensorFlow and Keras now, their start-up lines kept off stderr unless `--verbose`.

    Also sets `TF_CPP_MIN_LOG_LEVEL` (inherited by worker processes) and absl's Python logging to
    errors only. Importing again later is free, so call it before anything that uses TensorFlow.
    """
    if getattr(arguments, VERBOSE_DESTINATION, False) or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    silent = os.open(os.devnull, os.O_WRONLY)
    os.dup2(silent, 2)
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
        from absl import logging as absl_logging
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(silent)
    absl_logging.set_verbosity(absl_logging.ERROR)
