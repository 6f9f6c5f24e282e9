"""The command line's subcommands over a trained run: `predict` and `evaluate`.

`python -m cnnlab predict RUN IMAGE... [--top-k 3] [--checkpoint best|latest|N]` prints one JSON
line per image with the same preprocessing and out-of-distribution hint as the Predict page
(`cnnlab.trained.prediction`); `python -m cnnlab evaluate RUN [--split test|validation]` prints the
Evaluate page's per-class table and overall figures. An unknown run or checkpoint raises a
`CnnLabError` (the CLI prints it and exits 2); an image that cannot be read is reported on stderr,
the other images are still predicted, and the exit code is 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.cli import output
from cnnlab.errors import CnnLabError

if TYPE_CHECKING:
    from cnnlab.data.info import DatasetInfo, SplitData
    from cnnlab.trained.checkpoints import Checkpoint, TrainedModel


def add_parsers(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `predict` and `evaluate` on the CLI's subcommands."""
    predict = subcommands.add_parser(
        "predict", help="predict images with a trained run; one JSON line per image"
    )
    predict.add_argument("run", metavar="RUN", help="a run id (or a unique prefix)")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    predict.add_argument("--top-k", type=int, default=3, help="how many classes to list (default: 3)")
    predict.add_argument(
        "--checkpoint", default="best", help="best, latest or an epoch number (default: best)"
    )
    predict.set_defaults(handler=command_predict)
    evaluate = subcommands.add_parser(
        "evaluate", help="print a trained run's per-class precision, recall and F1"
    )
    evaluate.add_argument("run", metavar="RUN", help="a run id (or a unique prefix)")
    evaluate.add_argument(
        "--checkpoint", default="best", help="best, latest or an epoch number (default: best)"
    )
    evaluate.add_argument("--split", choices=("test", "validation"), default="test", help="default: test")
    output.add_json_option(evaluate).set_defaults(handler=command_evaluate)


def _checkpoint_request(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _load_run(
    arguments: argparse.Namespace, run_id: str, which: str
) -> tuple[str, Checkpoint, TrainedModel, SplitData, DatasetInfo]:
    """The run's id, checkpoint, model, data and dataset description (CnnLabError when missing or not
    the acting user's to read)."""
    from cnnlab.cli import access as cli_access
    from cnnlab.data import datasets
    from cnnlab.trained import checkpoints, prediction

    store = cli_access.runs(arguments)
    run = store.get_run(run_id)
    checkpoint = checkpoints.find(store, run.id, _checkpoint_request(which))
    output.quiet_tensorflow(arguments)
    model = checkpoints.load(checkpoint)
    data = datasets.load(run.data())
    info = prediction.run_info(run)  # The description the Predict page and downloaded model files use.
    return run.id, checkpoint, model, data, info


def command_predict(arguments: argparse.Namespace) -> int:
    """Predict each image; print one JSON line per image, and each unreadable image's error on stderr."""
    from cnnlab.trained import calibration, prediction

    if arguments.top_k < 1:
        raise CnnLabError(f"--top-k must be 1 or more; got {arguments.top_k}.")
    images, names, failed = [], [], 0
    for name in arguments.images:
        try:
            images.append(prediction.decode(Path(name).read_bytes()))
            names.append(name)
        except OSError as error:
            print(
                f"error: {name}: cannot be read ({error.strerror or error}). Check the path.", file=sys.stderr
            )
            failed += 1
        except CnnLabError as error:
            print(f"error: {name}: {error}", file=sys.stderr)
            failed += 1
    _, checkpoint, model, data, info = _load_run(arguments, arguments.run, arguments.checkpoint)
    try:
        measured: calibration.Calibration | None = prediction.for_run(checkpoint, model, data)
    except calibration.CalibrationError as error:
        print(f"note: no out-of-distribution calibration: {error}", file=sys.stderr)
        measured = None
    prepared = []
    for name, image in zip(names, images, strict=True):
        try:
            prepared.append((name, prediction.prepare([image], info)[0]))
        except CnnLabError as error:
            print(f"error: {name}: {error}", file=sys.stderr)
            failed += 1
    results = prediction.classify(
        model,
        [item for _, item in prepared],
        info,
        measured,
        names=[name for name, _ in prepared],
        top_k=arguments.top_k,
    )
    for result in results:
        print(json.dumps(result.to_json()), flush=True)
    return 2 if failed else 0


def command_evaluate(arguments: argparse.Namespace) -> int:
    """Print the per-class precision, recall, F1 and support, then the overall figures."""
    from cnnlab.trained import evaluation

    run_id, checkpoint, model, data, _ = _load_run(arguments, arguments.run, arguments.checkpoint)
    images, labels = evaluation.split_arrays(data, arguments.split)
    result = evaluation.evaluate(model, images, labels, data.class_names)
    if output.wants_json(arguments):
        output.print_json(
            {
                "run_id": run_id,
                "checkpoint": checkpoint.name,
                "epoch": checkpoint.epoch,
                "split": arguments.split,
                "count": result.count,
                "accuracy": result.accuracy,
                "loss": result.loss,
                "per_class": evaluation.per_class_report(result).to_dict("records"),
            }
        )
        return 0
    print(
        f"Run {run_id}, checkpoint {checkpoint.name} (epoch {checkpoint.epoch}), {arguments.split} split: "
        f"{result.count} images, accuracy {result.accuracy:.4f}, loss {result.loss:.4f}"
    )
    print()
    print(
        evaluation.per_class_report(result).to_string(index=False, float_format=lambda value: f"{value:.4f}")
    )
    print()
    print(evaluation.summary(result).to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    return 0
