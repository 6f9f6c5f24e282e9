"""The command line's sweeps: `sweep`, `sweeps`, `sweep-show` and `sweep-stop`.

`python -m cnnlab sweep SPEC --learning-rate 1e-3,3e-3,1e-2 --batch-size 32,64 [--dropout 0.2,0.5]
[--layer 3.filters=16,32] [--random N --seed S] [--dataset NAME] [--wait]` plans a grid (or a random
sample) over any training setting and layer parameter, checks every run, prints them and queues
them. With `--wait` it trains them here (through the scheduler, as many at once as
`CNNLAB_MAX_WORKERS` allows) and ends with the results table, best validation accuracy first;
without it the runs wait in the queue for the app's server to start them. `sweep-stop SWEEP` stops
every queued or live run of a sweep.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cnnlab.cli import access as cli_access
from cnnlab.cli import output
from cnnlab.errors import CnnLabError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import sweep_plan, sweeps
from cnnlab.runs.queue.sweep_plan import TRAINING_SETTINGS
from cnnlab.store import statuses

if TYPE_CHECKING:
    from cnnlab.classroom.access import RunAccess
    from cnnlab.runs.queue.scheduler import Scheduler
    from cnnlab.specs import DataSettings, ModelSpec, TrainingSettings
    from cnnlab.store.records import RunRecord

    TrainSettings = Callable[[argparse.Namespace], tuple[ModelSpec, DataSettings, TrainingSettings]]

POLL_SECONDS = 1.0
_DATA_OPTIONS: dict[str, Callable[[str], object]] = {
    "image_size": int,
    "color_mode": str,
    "subset": int,
    "validation_fraction": float,
    "test_fraction": float,
}


class _Options(argparse.Namespace):
    """The `train` command's options as `cli._train_settings` reads them: any option not given is None."""

    def __getattr__(self, name: str) -> None:
        return None


def _option(setting: str) -> str:
    """The CLI option sweeping a training setting (`seed` is the sample's seed, so `--training-seed`)."""
    return "--training-seed" if setting == "seed" else f"--{setting.replace('_', '-')}"


def add_parsers(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser], train_settings: TrainSettings
) -> None:
    """Register the sweep subcommands; `train_settings` reads a spec and data options as `train` does."""
    sweep = subcommands.add_parser(
        "sweep", help="train a grid or random sample of settings as one named group of runs"
    )
    sweep.add_argument("spec", metavar="SPEC", help="a preset name or a model JSON file")
    sweep.add_argument("--dataset", default="digits", metavar="NAME_OR_PATH", help="default: digits")
    for option, kind in _DATA_OPTIONS.items():
        sweep.add_argument(f"--{option.replace('_', '-')}", type=kind, default=None, help="one value")
    for setting in TRAINING_SETTINGS:
        sweep.add_argument(
            _option(setting), dest=f"axis_{setting}", metavar="VALUES", default=None, help="comma-separated"
        )
    sweep.add_argument("--dropout", metavar="VALUES", default=None, help="the rate of every Dropout layer")
    sweep.add_argument(
        "--layer",
        metavar="N.PARAMETER=VALUES",
        action="append",
        default=[],
        help="a parameter of layer N (from 1), e.g. 3.filters=16,32; repeatable",
    )
    sweep.add_argument("--random", type=int, default=None, metavar="N", help="a random sample of N runs")
    sweep.add_argument("--seed", type=int, default=0, help="the random sample's seed (default: 0)")
    sweep.add_argument("--name", default="sweep", help="the sweep's name (default: sweep)")
    sweep.add_argument("--owner", default="cli", help="the runs' owner (default: cli)")
    sweep.add_argument("--wait", action="store_true", help="train the runs here and print the results")
    output.add_json_option(sweep).set_defaults(
        handler=lambda arguments: command_sweep(arguments, train_settings)
    )
    output.add_json_option(
        subcommands.add_parser("sweeps", help="list the sweeps, newest first")
    ).set_defaults(handler=command_sweeps)
    show = subcommands.add_parser("sweep-show", help="a sweep's runs, best validation accuracy first")
    show.add_argument("sweep", metavar="SWEEP", help="a sweep id (or a unique prefix)")
    output.add_json_option(show).set_defaults(handler=command_show)
    stop = subcommands.add_parser("sweep-stop", help="stop every queued or running run of a sweep")
    stop.add_argument("sweep", metavar="SWEEP", help="a sweep id (or a unique prefix)")
    output.add_json_option(stop).set_defaults(handler=command_stop)


def axes_from(arguments: argparse.Namespace) -> list[sweep_plan.Axis]:
    """The swept settings the options name, in the order of the settings, then dropout and layers."""
    axes = [
        sweep_plan.axis(setting, getattr(arguments, f"axis_{setting}"))
        for setting in TRAINING_SETTINGS
        if getattr(arguments, f"axis_{setting}") is not None
    ]
    if arguments.dropout is not None:
        axes.append(sweep_plan.axis(sweep_plan.DROPOUT, arguments.dropout))
    axes.extend(sweep_plan.layer_axis(text) for text in arguments.layer)
    return axes


class _OwnedRuns:
    """Queues every run of the sweep as the CLI's acting user: started here (--wait) or left for the server."""

    def __init__(self, access: RunAccess, start: bool) -> None:
        self.access, self.start = access, start

    def submit(self, request: RunRequest) -> RunRecord:
        """Queue one run of the sweep, owned by the acting user and checked against the class budget."""
        return self.access.submit(request, start=self.start)


def command_sweep(arguments: argparse.Namespace, train_settings: TrainSettings) -> int:
    """Plan, check, print and queue a sweep; with --wait, train it and print the results."""
    from cnnlab.data import datasets
    from cnnlab.runs.queue import scheduler as scheduling
    from cnnlab.store.run_store import Store

    options = _Options(spec=arguments.spec, dataset=arguments.dataset)
    for option in _DATA_OPTIONS:
        setattr(options, option, getattr(arguments, option))
    spec, data, training = train_settings(options)
    plan = sweep_plan.plan(
        spec,
        training,
        axes_from(arguments),
        sample=arguments.random,
        seed=arguments.seed,
        num_classes=len(datasets.info(arguments.dataset).class_names),
    )
    store = Store()
    book = sweeps.Sweeps(store)
    runner = scheduling.Scheduler(store).start() if arguments.wait else None
    access = cli_access.runs(arguments, owner=arguments.owner, scheduler=runner)
    submitter = _OwnedRuns(access, start=runner is not None)
    try:
        sweep, queued = sweeps.submit(
            plan, submitter, book, data_settings=data, name=arguments.name, owner=access.user.id
        )
        if not output.wants_json(arguments):
            print(f"Sweep {sweep.id} ({sweep.name}): {sweep.describe()}; {len(queued)} runs queued.")
            print(_planned_table(plan, queued))
        if runner is None:
            if output.wants_json(arguments):
                output.print_json(_described(sweep, book.runs(sweep.id)))
            print(
                "The runs wait in the queue until the app's server starts them (`streamlit run app.py`); "
                "run the sweep with --wait to train them here.",
                file=sys.stderr,
            )
            return 0
        _follow(book, sweep.id, runner)
    finally:
        if runner is not None:
            runner.shutdown()
    runs = book.runs(sweep.id)
    if output.wants_json(arguments):
        output.print_json(_described(sweep, runs))
    else:
        print(sweeps.table(sweep, runs, by_accuracy=True).drop(columns=["best"]).to_string(index=False))
    return (
        0
        if all(item.run.status in (statuses.Status.COMPLETED, statuses.Status.STOPPED) for item in runs)
        else 1
    )


def _described(sweep: sweeps.SweepRecord, runs: list[sweeps.SweepRun]) -> dict[str, object]:
    """The sweep and its runs (best validation accuracy first) as one JSON-ready object."""
    table = sweeps.table(sweep, runs, by_accuracy=True).drop(columns=["best"])
    return {
        "id": sweep.id,
        "name": sweep.name,
        "settings": sweep.describe(),
        "runs": table.to_dict("records"),
    }


def _planned_table(plan: sweep_plan.Plan, queued: list[RunRecord]) -> str:
    import pandas as pd

    rows = [
        {"run": run.id, **{key: sweep_plan.format_value(value) for key, value in planned.values.items()}}
        for planned, run in zip(plan.runs, queued, strict=True)
    ]
    return pd.DataFrame(rows).to_string(index=False)


def _follow(book: sweeps.Sweeps, sweep_id: str, runner: Scheduler) -> None:
    """Print a line whenever the sweep's progress changes until every run has ended (Ctrl-C stops them all)."""
    shown = ""
    try:
        while True:
            runs = book.runs(sweep_id)
            ended = sum(item.run.is_ended for item in runs)
            running = sum(item.run.status in statuses.LIVE for item in runs)
            top = sweeps.best(runs)
            line = f"{ended}/{len(runs)} runs ended, {running} training" + (
                f"; best val_accuracy so far {top.best_val_accuracy:.4f} "
                f"(run {top.run.id}, {_best_values(book, sweep_id, top)})"
                if top
                else ""
            )
            if line != shown:
                print(line, file=sys.stderr, flush=True)
                shown = line
            if ended == len(runs):
                return
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        sweeps.stop(book, sweep_id, runner)
        for item in book.runs(sweep_id):
            runner.wait(item.run.id, timeout=60)


def _best_values(book: sweeps.Sweeps, sweep_id: str, top: sweeps.SweepRun) -> str:
    """The swept settings of the best run so far: "learning_rate=0.003, batch_size=32"."""
    values = top.values(book.get(sweep_id))
    return ", ".join(
        f"{name}={'—' if value is None else sweep_plan.format_value(value)}" for name, value in values.items()
    )


def _own_sweep(arguments: argparse.Namespace, book: sweeps.Sweeps, sweep_id: str) -> sweeps.SweepRecord:
    """The sweep `sweep_id` if the acting user may see it (their own, or any for a teacher); AccessError if not."""
    from cnnlab.classroom.access import not_yours
    from cnnlab.errors import SweepError

    user = cli_access.parse_user(
        getattr(arguments, cli_access.DESTINATION, None),
        getattr(arguments, cli_access.ROLE_DESTINATION, None),
    )
    if user.sees_everything:
        return book.get(sweep_id)
    try:
        sweep = book.get(sweep_id)
    except SweepError as error:
        raise not_yours(sweep_id, "Sweep") from error  # Missing and not yours read the same.
    if sweep.owner != user.id:
        raise not_yours(sweep_id, "Sweep")
    return sweep


def command_sweeps(arguments: argparse.Namespace) -> int:
    """List the sweeps the acting user may see, newest first."""
    from cnnlab.store.run_store import Store

    store = Store()
    book = sweeps.Sweeps(store)
    visible = []
    for listed in book.list_sweeps():
        try:
            visible.append(_own_sweep(arguments, book, listed.id))
        except CnnLabError:
            continue
    rows = [
        {"id": sweep.id, "runs": len(book.runs(sweep.id)), "name": sweep.name, "settings": sweep.describe()}
        for sweep in visible
    ]
    if output.wants_json(arguments):
        output.print_json(rows)
        return 0
    print(f"{'SWEEP':<14} {'RUNS':>4}  {'NAME':<20} SETTINGS")
    for row in rows:
        print(f"{row['id']:<14} {row['runs']:>4}  {row['name']:<20} {row['settings']}")
    return 0


def command_show(arguments: argparse.Namespace) -> int:
    """Print a sweep's runs, best validation accuracy first."""
    from cnnlab.store.run_store import Store

    book = sweeps.Sweeps(Store())
    sweep = _own_sweep(arguments, book, arguments.sweep)
    if output.wants_json(arguments):
        output.print_json(_described(sweep, book.runs(sweep.id)))
        return 0
    print(f"Sweep {sweep.id} ({sweep.name}): {sweep.describe()}")
    print(
        sweeps.table(sweep, book.runs(sweep.id), by_accuracy=True)
        .drop(columns=["best"])
        .to_string(index=False)
    )
    return 0


def command_stop(arguments: argparse.Namespace) -> int:
    """Stop every queued or live run of a sweep (as the acting user: only their own)."""
    from cnnlab.store.run_store import Store

    store = Store()
    book = sweeps.Sweeps(store)
    sweep = _own_sweep(arguments, book, arguments.sweep)
    asked = sweeps.stop(book, sweep.id, cli_access.runs(arguments))
    if output.wants_json(arguments):
        output.print_json({"id": sweep.id, "name": sweep.name, "asked_to_stop": asked})
        return 0
    if not asked:
        print(f"Sweep {sweep.id} ({sweep.name}) has no queued or running run to stop.")
        return 0
    print(f"Asked {len(asked)} runs of sweep {sweep.id} ({sweep.name}) to stop: {', '.join(asked)}.")
    return 0
