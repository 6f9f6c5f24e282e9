"""The same search space swept as a full grid and as TPE with median pruning, on the same digits data.

Both sweeps train real runs through CNN Lab's own scheduler and workers (one run at a time, so the
wall times compare), on the built-in digits with the `digits_default` model and no augmentation:

- the grid: every combination of learning rate x batch size x first-layer filters, each for `--epochs`;
- the search: the same listed values, Optuna's TPE picking each trial from the earlier ones' scores,
  median pruning from epoch `--warmup`, and a budget of `--budget` (default 40%) of the grid's epochs
  in all: the sweep asks for trials while the epochs spent plus those planned fit in it.

For each it prints the epochs spent (the sum of every run's last epoch), the wall time from the first
submit until every run has ended, the best validation accuracy and the run that reached it, and
then the search's share of the grid's epochs and its gap to the grid's best in percentage points.
Goal (issue 23): within 0.5 pp of the grid's best with at most 40% of its epochs.

    python benchmarks/sweeps.py [--epochs 6] [--warmup 2] [--budget 0.4] [--seed 0]

Prints figures; never fails on a timing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab import specs
from cnnlab.model import presets
from cnnlab.run_request import RunRequest
from cnnlab.runs.queue import studies, sweep_plan, sweeps, trials
from cnnlab.runs.queue.scheduler import Scheduler
from cnnlab.store.run_store import Store

SPACE = (
    ("learning_rate", "1e-4, 3e-4, 1e-3, 3e-3"),
    ("batch_size", "32, 128"),
    ("layer 1.filters", "8, 32"),
)


@dataclasses.dataclass(frozen=True)
class Result:
    """What one sweep cost and found."""

    name: str
    runs: int
    pruned: int
    epochs: int
    seconds: float
    best: float
    best_run: str


def _wait(book: sweeps.Sweeps, sweep_id: str) -> None:
    """Until every run of the sweep has ended and a search asks for no more."""
    while True:
        sweep = book.get(sweep_id)
        runs = book.runs(sweep_id)
        if runs and all(item.run.is_ended for item in runs) and (sweep.search is None or sweep.closed):
            return
        time.sleep(0.5)


def _result(name: str, book: sweeps.Sweeps, sweep_id: str, seconds: float) -> Result:
    runs = book.runs(sweep_id)
    top = sweeps.best(runs)
    assert top is not None and top.best_val_accuracy is not None
    return Result(
        name,
        len(runs),
        sum(item.run.status == "pruned" for item in runs),
        sum(item.run.last_epoch for item in runs),
        seconds,
        top.best_val_accuracy,
        top.run.name.split(": ", 1)[-1],
    )


def main() -> None:
    """Run the grid, then the search, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=0.4, help="the search's share of the grid's epochs")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    spec = presets.get("digits_default").spec
    training = specs.TrainingSettings(epochs=arguments.epochs)
    axes = [sweep_plan.axis(setting, values) for setting, values in SPACE]
    plan = sweep_plan.plan(spec, training, axes)
    grid_epochs = len(plan.runs) * arguments.epochs
    with tempfile.TemporaryDirectory(prefix="cnnlab-sweeps-") as home:
        store = Store(Path(home))
        book = sweeps.Sweeps(store)
        scheduler = Scheduler(store, max_workers=1).start()
        try:
            started = time.perf_counter()
            grid, _ = sweeps.submit(
                plan, scheduler, book, data_settings=specs.DataSettings(), name="grid", owner="local"
            )
            _wait(book, grid.id)
            grid_result = _result("grid", book, grid.id, time.perf_counter() - started)
            search = studies.Search(
                sampler="tpe",
                pruner="median",
                warmup=arguments.warmup,
                trials=len(plan.runs),
                max_epochs=int(grid_epochs * arguments.budget),
                parallel=1,
                seed=arguments.seed,
            )
            template = RunRequest(spec=spec, data_settings=specs.DataSettings(), training_settings=training)
            started = time.perf_counter()
            found, _ = trials.start(template, axes, search, scheduler, book, name="tpe")
            _wait(book, found.id)
            search_result = _result("TPE + median pruning", book, found.id, time.perf_counter() - started)
        finally:
            scheduler.shutdown(kill_workers=True)
    print(
        f"Space: {' x '.join(f'{setting} {{{values}}}' for setting, values in SPACE)}; {arguments.epochs} epochs a run"
    )
    print(f"{'sweep':<22} {'runs':>4} {'pruned':>6} {'epochs':>6} {'wall s':>7} {'best val.':>9}  best run")
    for item in (grid_result, search_result):
        print(
            f"{item.name:<22} {item.runs:>4} {item.pruned:>6} {item.epochs:>6} {item.seconds:>7.1f} "
            f"{item.best:>9.2%}  {item.best_run}"
        )
    share = search_result.epochs / grid_result.epochs
    gap = (grid_result.best - search_result.best) * 100
    below = f"{gap:.2f} pp below" if gap >= 0 else f"{-gap:.2f} pp above"
    print(
        f"The search spent {share:.0%} of the grid's epochs and {search_result.seconds / grid_result.seconds:.0%} "
        f"of its wall time; its best is {below} the grid's (goal: at most 40% and within 0.5 pp)."
    )


if __name__ == "__main__":
    main()
