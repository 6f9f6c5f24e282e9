"""A sweep as an Optuna study: the sampler, the pruner, the budget, and the storage beside the run store.

`Search` is what a sweep on Optuna keeps (as JSON in the store's `sweeps.search`): the sampler
(`tpe`, `random` or `grid`), the pruner (`median`, `halving` for successive halving, `hyperband`
or `none`) with its warm-up in epochs, the budget (a number of trials and, optionally, of epochs
in all), how many trials train at once, the seed, and the ranges (`cnnlab.runs.queue.search_space`).

Its trials live in Optuna's own storage beside `runs.sqlite3` in `CNNLAB_HOME`: a journal file,
`optuna.journal` (Optuna's `JournalStorage`, safe for several processes on one machine), so the run
store's schema stays ours. Optuna's SQLite RDB storage was measured first on this 2-core machine: it
took 2.7 s to make its tables and 8 s for 20 trials of ask, report and tell; the journal took 0.6 s.
The study is named after the sweep's id; trial N's run id is its user attribute `run_id`. Samplers
and pruners are not stored by Optuna, so `load` makes them again from the `Search`; the sampler's seed
moves on with the number of trials, so a study loaded again does not draw the same settings again.
Optuna is imported here and in `cnnlab.runs.queue.sweep_watcher` only, when a sweep on it is used.
The importances (fANOVA, which imports scikit-learn: 12 s on this machine under load) are computed
by the server's watcher in a thread of their own as trials finish, and kept in the study.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.errors import SweepError
from cnnlab.runs.queue.search_space import Range
from cnnlab.runs.queue.sweep_plan import MAX_RUNS, Axis, grid_size
from cnnlab.store.records import JsonValue

if TYPE_CHECKING:
    import optuna

SAMPLERS = {
    "tpe": "TPE: each picked from what earlier trials scored",
    "random": "random: each picked at random",
    "grid": "grid: every combination in turn",
}
PRUNERS = {
    "median": "below the median of earlier trials",
    "halving": "successive halving",
    "hyperband": "Hyperband",
    "none": "no pruning",
}
STORAGE_FILE = "optuna.journal"
LOCK_FILE = "optuna.lock"
MONITOR = "val_accuracy"  # what a trial maximises, epoch by epoch: the validation accuracy
_storages: dict[Path, optuna.storages.BaseStorage] = {}
_storages_lock = threading.Lock()


@dataclass(frozen=True)
class Search:
    """How a sweep on Optuna searches: sampler, pruner and warm-up, budget, trials at once, seed and ranges."""

    sampler: str = "tpe"
    pruner: str = "median"
    warmup: int = 2
    trials: int = 12
    max_epochs: int | None = None
    parallel: int = 2
    seed: int = 0
    ranges: tuple[Range, ...] = field(default=())
    stopped: bool = False

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise SweepError(f"Unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}.")
        if self.pruner not in PRUNERS:
            raise SweepError(f"Unknown pruner {self.pruner!r}; choose one of {', '.join(PRUNERS)}.")
        if self.warmup < 1:
            raise SweepError(
                f"The warm-up is the epochs a trial trains before it can be pruned: at least 1; got {self.warmup}."
            )
        if not 1 <= self.trials <= MAX_RUNS * 4:
            raise SweepError(f"A sweep tries 1 to {MAX_RUNS * 4} settings; got {self.trials}.")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise SweepError(f"A budget of epochs needs at least 1 epoch; got {self.max_epochs}.")
        if self.parallel < 1:
            raise SweepError(f"At least one trial trains at a time; got {self.parallel}.")
        if self.sampler == "grid" and self.ranges:
            raise SweepError(
                f"A grid tries listed values; {self.ranges[0].setting} is a range ({self.ranges[0].text()}). "
                "List its values (e.g. 1e-3,3e-3,1e-2), or use the TPE or random sampler for ranges."
            )

    def describe(self) -> str:
        """`TPE: each picked from what earlier trials scored, 12 trials, pruning (below the median of earlier
        trials) from epoch 2`."""
        budget = f"{self.trials} trials" + (f", at most {self.max_epochs} epochs" if self.max_epochs else "")
        pruning = (
            "no pruning"
            if self.pruner == "none"
            else f"pruning ({PRUNERS[self.pruner]}) from epoch {self.warmup}"
        )
        return f"{SAMPLERS[self.sampler]}, {budget}, {pruning}"

    def extended(self, more_trials: int) -> Search:
        """The same search with `more_trials` more trials to try, no longer stopped."""
        if more_trials < 1:
            raise SweepError(f"Extend a sweep by at least 1 trial; got {more_trials}.")
        if self.trials + more_trials > MAX_RUNS * 4:
            raise SweepError(
                f"A sweep tries at most {MAX_RUNS * 4} settings; this one has {self.trials}, so {more_trials} more "
                f"would make {self.trials + more_trials}. Add at most {max(0, MAX_RUNS * 4 - self.trials)}, or "
                "start a new sweep around its best settings."
            )
        return replace(self, trials=self.trials + more_trials, stopped=False)

    def to_json(self) -> dict[str, JsonValue]:
        """The search as the store keeps it."""
        return {
            "sampler": self.sampler,
            "pruner": self.pruner,
            "warmup": self.warmup,
            "trials": self.trials,
            "max_epochs": self.max_epochs,
            "parallel": self.parallel,
            "seed": self.seed,
            "ranges": [dict(item.to_json()) for item in self.ranges],
            "stopped": self.stopped,
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, object]) -> Search:
        """The search `to_json` stored."""
        ranges = stored.get("ranges")
        max_epochs = stored.get("max_epochs")
        return cls(
            sampler=str(stored.get("sampler", "tpe")),
            pruner=str(stored.get("pruner", "median")),
            warmup=int(str(stored.get("warmup", 2))),
            trials=int(str(stored.get("trials", 12))),
            max_epochs=None if max_epochs is None else int(str(max_epochs)),
            parallel=int(str(stored.get("parallel", 2))),
            seed=int(str(stored.get("seed", 0))),
            ranges=tuple(Range.from_json(item) for item in ranges if isinstance(item, dict))
            if isinstance(ranges, list)
            else (),
            stopped=bool(stored.get("stopped")),
        )


@contextlib.contextmanager
def turn(home: Path, *, wait: bool = False) -> Iterator[bool]:
    """True while this caller holds the lock on the store's studies (asking trials, telling results);
    False at once when another holds it, unless `wait`."""
    with open(home / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def trial_budget(search: Search, axes: Sequence[Axis]) -> int:
    """How many trials the sweep can try: its budget, and no more than a grid's combinations."""
    if search.sampler == "grid":
        return min(search.trials, grid_size(axes))
    return search.trials


def storage(home: Path) -> optuna.storages.BaseStorage:
    """This process's Optuna storage for the store at `home` (made once: it keeps what it has read)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    with _storages_lock:
        if home not in _storages:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            _storages[home] = optuna.storages.JournalStorage(JournalFileBackend(str(home / STORAGE_FILE)))
        return _storages[home]


def distributions(
    axes: Sequence[Axis], ranges: Sequence[Range]
) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna's distribution of every swept setting: listed values as a choice, ranges as ints or floats."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, optuna.distributions.BaseDistribution] = {
        item.setting: CategoricalDistribution(list(item.values)) for item in axes
    }
    for item in ranges:
        found[item.setting] = (
            IntDistribution(int(item.low), int(item.high), log=item.log)
            if item.integer
            else FloatDistribution(item.low, item.high, log=item.log)
        )
    return found


def _sampler(search: Search, axes: Sequence[Axis], trials_so_far: int) -> optuna.samplers.BaseSampler:
    import optuna

    seed = search.seed + trials_so_far  # A study loaded again draws new settings, not the first ones again.
    if search.sampler == "grid":
        space = {item.setting: list(item.values) for item in axes}
        return optuna.samplers.GridSampler(space, seed=search.seed)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # A few random trials first, then TPE: a quarter of the budget, at least 3 and at most Optuna's 10.
    startup = min(10, max(3, search.trials // 4))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def pruner(search: Search, epochs: int) -> optuna.pruners.BasePruner:
    """The search's pruner: none before `warmup` epochs; Hyperband's largest budget is `epochs`."""
    import optuna

    if search.pruner == "median":
        # Two finished trials give the first median to compare with.
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=search.warmup)
    if search.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=search.warmup, reduction_factor=3)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=search.warmup, max_resource=max(epochs, search.warmup + 1), reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def load(
    home: Path, sweep_id: str, search: Search, axes: Sequence[Axis], epochs: int, *, create: bool = False
) -> optuna.Study:
    """The sweep's study (made with `create`), with its sampler and pruner made from `search`."""
    import optuna

    where = storage(home)
    if create:
        optuna.create_study(storage=where, study_name=sweep_id, direction="maximize", load_if_exists=True)
    try:
        summary = optuna.study.load_study(study_name=sweep_id, storage=where)
    except KeyError:
        raise SweepError(
            f"Sweep {sweep_id} has no Optuna study in {home / STORAGE_FILE}; it was deleted or made elsewhere."
        ) from None
    count = len(summary.get_trials(deepcopy=False))
    return optuna.study.load_study(
        study_name=sweep_id,
        storage=where,
        sampler=_sampler(search, axes, count),
        pruner=pruner(search, epochs),
    )


def read(home: Path, sweep_id: str) -> optuna.Study:
    """The sweep's study, to read (no sampler or pruner of its own); SweepError if there is none."""
    import optuna

    try:
        return optuna.study.load_study(study_name=sweep_id, storage=storage(home))
    except KeyError:
        raise SweepError(f"Sweep {sweep_id} has no Optuna study in {home / STORAGE_FILE}.") from None


def importance_evaluator() -> optuna.importance.BaseImportanceEvaluator:
    """Optuna's default evaluator (fANOVA), seeded so that the same trials give the same importances."""
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=0)


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's importance of each swept setting (fANOVA, seeded) over the study's finished trials;
    empty while fewer than two trials have finished or nothing varied."""
    import optuna
    from optuna.importance import get_param_importances

    finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(finished) < 2:
        return {}
    try:
        found = get_param_importances(study, evaluator=importance_evaluator())
    except (RuntimeError, ValueError):  # Optuna's words for "no parameter varied among them".
        return {}
    return {setting: float(value) for setting, value in found.items()}


IMPORTANCES = "importances"  # the study's user attribute: the importances and how many trials they saw


def store_importances(study: optuna.Study) -> dict[str, float]:
    """Compute the importances and keep them in the study (read by `stored_importances`), with the
    number of finished trials they were computed from."""
    import optuna

    finished = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    found = importances(study)
    study.set_user_attr(IMPORTANCES, {"finished": finished, "values": found})
    return found


def stored_importances(study: optuna.Study) -> tuple[int, dict[str, float]]:
    """The importances kept in the study and how many finished trials they saw ((0, {}) before any):
    a page reads them without importing what computes them (scikit-learn, seconds on a busy server)."""
    kept = study.user_attrs.get(IMPORTANCES)
    if not isinstance(kept, dict):
        return 0, {}
    values = kept.get("values")
    return int(kept.get("finished", 0)), dict(values) if isinstance(values, dict) else {}
