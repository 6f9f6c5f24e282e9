"""The command line's sweeps: `sweep`, `sweeps`, `sweep-show` and `sweep-stop`.

`python -m cnnlab sweep SPEC --learning-rate 1e-3,3e-3,1e-2 --batch-size 32,64 [--dropout 0.2,0.5]
[--layer 3.filters=16,32] [--random N --seed S] [--dataset NAME] [--wait]` plans a grid (or a random
sample) over any training setting and layer parameter, checks every run, prints them and queues
them. With `--wait` it trains them here (through the scheduler, as many at once as
`CNNLAB_MAX_WORKERS` allows) and ends with the results table, best validation accuracy first;
without it the runs wait in the queue for the app's server to start them. `sweep-stop SWEEP` stops
every queued or live run of a sweep.

With `--sampler tpe|random|grid` (or any range, `--learning-rate 1e-4..1e-2:log`, `--layer 1.filters=16..64`)
the sweep is a search on Optuna (`cnnlab.runs.queue.trials`): `--trials N` settings tried, `--max-epochs E`
epochs in all at most, losing trials pruned (`--pruner median|halving|hyperband|none`, from epoch
`--warmup W`). `sweep --resume NAME --trials +N [--wait]` gives such a sweep N more trials.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cnnlab.cli import access as cli_access
from cnnlab.cli import output
from cnnlab.errors import CnnLabError, SweepError
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import search_space, studies, sweep_plan, sweeps, trials
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
    sweep.add_argument("spec", metavar="SPEC", nargs="?", help="a preset name or a model JSON file")
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
    sweep.add_argument(
        "--sampler",
        choices=list(studies.SAMPLERS),
        default=None,
        help="search with Optuna: tpe (learns from earlier trials), random or grid (default with a range: tpe)",
    )
    sweep.add_argument(
        "--pruner",
        choices=list(studies.PRUNERS),
        default="median",
        help="how losing trials are stopped early (default: median)",
    )
    sweep.add_argument(
        "--warmup", type=int, default=2, metavar="EPOCHS", help="epochs before pruning (default: 2)"
    )
    sweep.add_argument(
        "--trials", default=None, metavar="N", help="settings to try (default: 12); +N with --resume"
    )
    sweep.add_argument("--max-epochs", type=int, default=None, metavar="E", help="at most E epochs in all")
    sweep.add_argument("--parallel", type=int, default=None, metavar="N", help="trials training at once")
    sweep.add_argument(
        "--resume", default=None, metavar="SWEEP", help="extend a search (name or id) by --trials +N"
    )
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


def space_from(arguments: argparse.Namespace) -> list[sweep_plan.Axis | search_space.Range]:
    """The swept settings the options name (lists and ranges), in the order of the settings, then
    dropout and layers."""
    found = [
        search_space.values(setting, getattr(arguments, f"axis_{setting}"))
        for setting in TRAINING_SETTINGS
        if getattr(arguments, f"axis_{setting}") is not None
    ]
    if arguments.dropout is not None:
        found.append(search_space.values(sweep_plan.DROPOUT, arguments.dropout))
    for text in arguments.layer:
        target, separator, values = text.partition("=")
        if search_space.RANGE_MARK not in values:
            found.append(sweep_plan.layer_axis(text))
            continue
        position, _, parameter = target.strip().partition(".")
        if not separator or not position.isdigit() or not parameter:
            raise SweepError(
                f"--layer takes POSITION.PARAMETER=LOW..HIGH, e.g. 1.filters=16..64; got {text!r}."
            )
        found.append(
            search_space.values(f"{sweep_plan.LAYER_PREFIX}{int(position)}.{parameter.strip()}", values)
        )
    return found


def axes_from(arguments: argparse.Namespace) -> list[sweep_plan.Axis]:
    """The listed settings the options name (SweepError for a range: a plain grid or sample has none)."""
    return search_space.listed_only(space_from(arguments))


def _trials(text: str | None, resume: bool) -> int | None:
    """The --trials count: N, or +N (more trials) with --resume."""
    if text is None:
        return None
    if text.strip().startswith("+") != resume:
        raise SweepError(
            f"--trials {text}: write +N with --resume (N more trials), and N without it; got {text!r}."
        )
    try:
        count = int(text.strip().lstrip("+"))
    except ValueError:
        raise SweepError(
            f"--trials takes a whole number of trials (+N with --resume); got {text!r}."
        ) from None
    return count


class _OwnedRuns:
    """Queues every run of the sweep as the CLI's acting user: started here (--wait) or left for the server."""

    def __init__(self, access: RunAccess, start: bool) -> None:
        self.access, self.start = access, start

    def submit(self, request: RunRequest) -> RunRecord:
        """Queue one run of the sweep, owned by the acting user and checked against the class budget."""
        return self.access.submit(request, start=self.start)


def command_sweep(arguments: argparse.Namespace, train_settings: TrainSettings) -> int:
    """Plan, check, print and queue a sweep (a grid, a sample, or a search on Optuna), or extend a
    search with --resume; with --wait, train it here and print the results."""
    from cnnlab.data import datasets

    if arguments.resume is not None:
        return _resume(arguments)
    if arguments.spec is None:
        raise SweepError(
            "sweep needs SPEC (a preset name or a model JSON file), or --resume SWEEP --trials +N."
        )
    options = _Options(spec=arguments.spec, dataset=arguments.dataset)
    for option in _DATA_OPTIONS:
        setattr(options, option, getattr(arguments, option))
    spec, data, training = train_settings(options)
    num_classes = len(datasets.info(arguments.dataset).class_names)
    space = space_from(arguments)
    if (
        arguments.sampler is not None
        or arguments.trials is not None
        or any(isinstance(item, search_space.Range) for item in space)
    ):
        if arguments.random is not None:
            raise SweepError(
                f"--random {arguments.random} samples a grid of listed values; a search (a range, --sampler "
                "or --trials) picks its own: use --sampler random --trials N for random picks."
            )
        template = RunRequest(spec=spec, data_settings=data, training_settings=training)
        return _search(arguments, template, space, num_classes)
    plan = sweep_plan.plan(
        spec,
        training,
        axes_from(arguments),
        sample=arguments.random,
        seed=arguments.seed,
        num_classes=num_classes,
    )
    with _Session(arguments) as session:
        sweep, queued = sweeps.submit(
            plan,
            session.submitter,
            session.book,
            data_settings=data,
            name=arguments.name,
            owner=session.owner,
        )
        if not session.json:
            print(f"Sweep {sweep.id} ({sweep.name}): {sweep.describe()}; {len(queued)} runs queued.")
            print(_planned_table(plan, queued))
        return session.finish(sweep)


class _Session:
    """The store, the scheduler (with --wait) and the acting user's access for one sweep command."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        from cnnlab.runs.queue import scheduler as scheduling
        from cnnlab.store.run_store import Store

        store = Store()
        self.book = sweeps.Sweeps(store)
        self.runner = scheduling.Scheduler(store).start() if arguments.wait else None
        self.access = cli_access.runs(arguments, owner=arguments.owner, scheduler=self.runner)
        self.submitter = _OwnedRuns(self.access, start=self.runner is not None)
        self.owner = self.access.user.id
        self.json = output.wants_json(arguments)

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *_: object) -> None:
        if self.runner is not None:
            self.runner.shutdown()

    def finish(self, sweep: sweeps.SweepRecord) -> int:
        """Without --wait, say where the runs wait; with it, follow them to the end and print the table."""
        if self.runner is None:
            if self.json:
                output.print_json(_described(sweep, self.book.runs(sweep.id)))
            print(
                "The runs wait in the queue until the app's server starts them (`streamlit run app.py`); "
                "run the sweep with --wait to train them here.",
                file=sys.stderr,
            )
            return 0
        _follow(self.book, sweep.id, self.runner)
        runs = self.book.runs(sweep.id)
        table = sweeps.table(sweep, runs, by_accuracy=True).drop(columns=["best"])
        if self.json:
            output.print_json(_described(sweep, runs))
        else:
            print(table.to_string(index=False))
        return 0 if all(item.run.status in _FINE for item in runs) else 1


# A sweep whose runs all ended so went well: finished, stopped by the user, or pruned by the sweep.
_FINE = (statuses.Status.COMPLETED, statuses.Status.STOPPED, statuses.Status.PRUNED)


def _search(
    arguments: argparse.Namespace,
    template: RunRequest,
    space: list[sweep_plan.Axis | search_space.Range],
    num_classes: int,
) -> int:
    """Start a search on Optuna over `space` and print its first trials (then --wait follows them all)."""
    from cnnlab.runs.queue.capacity import default_max_workers

    search = studies.Search(
        sampler=arguments.sampler or "tpe",
        pruner=arguments.pruner,
        warmup=arguments.warmup,
        trials=_trials(arguments.trials, resume=False) or 12,
        max_epochs=arguments.max_epochs,
        parallel=arguments.parallel or default_max_workers(),
        seed=arguments.seed,
        ranges=tuple(item for item in space if isinstance(item, search_space.Range)),
    )
    axes = [item for item in space if isinstance(item, sweep_plan.Axis)]
    with _Session(arguments) as session:
        sweep, queued = trials.start(
            dataclasses.replace(template, owner=session.owner),
            axes,
            search,
            session.submitter,
            session.book,
            name=arguments.name,
            num_classes=num_classes,
            check_budget=session.access.check_budget,
        )
        if not session.json:
            print(
                f"Sweep {sweep.id} ({sweep.name}): {sweep.describe()}; first {len(queued)} trial(s) queued."
            )
            for run in queued:
                print(f"{run.id}  {run.name}")
        return session.finish(sweep)


def _resume(arguments: argparse.Namespace) -> int:
    """Give a search on Optuna --trials +N more trials (and with --wait, train them here)."""
    more = _trials(arguments.trials, resume=True)
    if more is None:
        raise SweepError("--resume SWEEP needs --trials +N: how many more settings to try, e.g. --trials +6.")
    with _Session(arguments) as session:
        found = trials.find(session.book, arguments.resume)
        sweep = _own_sweep(arguments, session.book, found.id)
        sweep = trials.extend(session.book, sweep.id, more, check_budget=session.access.check_budget)
        done = len(session.book.runs(sweep.id))
        if not session.json:
            print(
                f"Sweep {sweep.id} ({sweep.name}): {sweep.describe()}; {done} trials so far, {more} more to try."
            )
        if session.runner is not None:
            session.runner.tick()  # The watcher asks for the next trials at once.
        return session.finish(sweep)


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
            pruned = sum(item.run.status == statuses.Status.PRUNED for item in runs)
            line = (
                f"{ended}/{len(runs)} runs ended"
                + (f" ({pruned} pruned)" if pruned else "")
                + f", {running} training"
                + (
                    f"; best val_accuracy so far {top.best_val_accuracy:.4f} "
                    f"(run {top.run.id}, {_best_values(book, sweep_id, top)})"
                    if top
                    else ""
                )
            )
            if line != shown:
                print(line, file=sys.stderr, flush=True)
                shown = line
            if ended == len(runs) and not _searching(book, sweep_id):
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


def _searching(book: sweeps.Sweeps, sweep_id: str) -> bool:
    """True while a search on Optuna may still ask for trials (its budget not spent, not stopped)."""
    sweep = book.get(sweep_id)
    return sweep.search is not None and not sweep.closed


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
