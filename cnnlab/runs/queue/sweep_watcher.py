"""The server's watch over sweeps on Optuna: report each epoch, prune the losing trials, ask for the next.

The scheduler calls `advance_all` on every round of its watch (`cnnlab.runs.queue.scheduler`): one
indexed read when no sweep on Optuna is open, so it costs nothing then. For each open sweep, `advance`:

1. reports each new epoch's validation accuracy of each training trial (`trial.report`) as the epoch
   rows arrive in the store, and when the study's pruner says so (`trial.should_prune`) ends the run
   through the same control path as Stop, as `pruned`, with the reason ("Pruned at epoch 4: ...");
2. tells the study how each ended trial went: complete with its best validation accuracy, pruned,
   or failed (diverged, failed, interrupted or stopped before an epoch);
3. computes the importances of the swept settings again, in a thread of its own, when more trials
   have finished than they saw;
4. asks for new trials while fewer than `Search.parallel` of its runs are queued or training and the
   budget (trials, and epochs in all) allows, each queued as an ordinary run (the fair queue decides
   when it starts), and closes the sweep once its budget is spent and every trial is told.

Several schedulers may share one store (the server's and a CLI's): a lock file beside the store
(`studies.turn`) lets one of them advance the sweeps at a time; the others skip that round.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import threading
from typing import TYPE_CHECKING

from cnnlab.errors import CnnLabError, RunError
from cnnlab.runs.queue import studies, trials
from cnnlab.runs.queue.sweeps import SweepRecord, Sweeps
from cnnlab.store.records import RunRecord
from cnnlab.store.run_store import Store
from cnnlab.store.statuses import Status

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


class _Queue:
    """Queues a sweep's next trial in the store, where the scheduler's fair queue starts it in turn."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, request: trials.RunRequest) -> RunRecord:
        """Record the run queued."""
        return self.store.create_run(request)


def advance_all(store: Store) -> None:
    """Advance every open sweep on Optuna in the store (see the module); a sweep that fails is logged."""
    book = Sweeps(store)
    if not book.open_searches():
        return
    with studies.turn(store.home) as mine:
        if not mine:
            return
        for sweep in book.open_searches():  # Read again under the lock: a stop may have come meanwhile.
            try:
                advance(book, sweep)
            except CnnLabError as error:
                logger.warning("Sweep %s could not advance: %s", sweep.id, error)


def prune_reason(pruner: str, epoch: int, value: float, study: optuna.Study) -> str:
    """Why a trial was pruned at `epoch` with validation accuracy `value`, in words."""
    import optuna

    earlier = [
        trial.intermediate_values[epoch]
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if epoch in trial.intermediate_values
    ]
    median = f" ({statistics.median(earlier):.1%})" if earlier else ""
    if pruner == "median":
        return (
            f"Pruned at epoch {epoch}: below the median of earlier trials{median}, "
            f"with a validation accuracy of {value:.1%}."
        )
    return (
        f"Pruned at epoch {epoch}: its validation accuracy of {value:.1%} was not among the best trials at that "
        f"epoch ({studies.PRUNERS[pruner]})."
    )


def _best(scores: dict[int, float]) -> float | None:
    return max(scores.values()) if scores else None


def _follow(book: Sweeps, sweep: SweepRecord, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Report a training trial's new epochs and prune it, or tell the study how its ended run went."""
    import optuna

    run_id = trial.user_attrs.get(trials.RUN_ID)
    try:
        run = book.store.get_run(str(run_id)) if run_id else None
    except RunError:  # Its run was deleted.
        run = None
    if run is None:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        return
    rows = book.store.epoch_metrics(run.id)
    scores = {
        int(epoch): float(score)
        for epoch, score in zip(rows.get("epoch", []), rows.get(studies.MONITOR, []), strict=False)
        if score is not None and score == score  # NaN is a missing validation score.
    }
    live = optuna.trial.Trial(study, trial._trial_id)
    for epoch in sorted(set(scores) - set(trial.intermediate_values)):
        live.report(scores[epoch], epoch)
    if run.is_ended:
        if run.status == Status.PRUNED:
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
        elif run.status == Status.COMPLETED and _best(scores) is not None:
            study.tell(trial.number, _best(scores))
        else:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        return
    planned = run.training().epochs
    if (
        run.status == Status.RUNNING
        and run.control is None
        and scores
        and max(scores) < planned
        and live.should_prune()
    ):
        epoch = max(scores)
        assert sweep.search is not None
        with contextlib.suppress(RunError):  # It may have ended meanwhile; its status tells next round.
            book.store.request_prune(run.id, prune_reason(sweep.search.pruner, epoch, scores[epoch], study))


_computing: set[str] = set()  # the sweeps whose importances a thread is computing
_computing_lock = threading.Lock()


def _refresh_importances(book: Sweeps, sweep: SweepRecord, study: optuna.Study) -> None:
    """Compute the importances again in a thread of their own when more trials have finished than
    they saw (the scheduler's round does not wait for them)."""
    import optuna

    finished = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if finished < 2 or studies.stored_importances(study)[0] == finished:
        return
    with _computing_lock:
        if sweep.id in _computing:
            return
        _computing.add(sweep.id)

    def compute() -> None:
        try:
            studies.store_importances(studies.read(book.store.home, sweep.id))
        except Exception:
            logger.exception("The importances of sweep %s could not be computed.", sweep.id)
        finally:
            with _computing_lock:
                _computing.discard(sweep.id)

    threading.Thread(target=compute, name=f"cnnlab-importances-{sweep.id}", daemon=True).start()


def _epochs_committed(book: Sweeps, sweep: SweepRecord) -> int:
    """The epochs the sweep has spent (ended runs) or will spend (queued and training ones)."""
    return sum(
        item.run.last_epoch if item.run.is_ended else item.run.training().epochs
        for item in book.runs(sweep.id)
    )


def advance(book: Sweeps, sweep: SweepRecord) -> None:
    """One round of watching one sweep on Optuna (see the module)."""
    import optuna

    search = sweep.search
    runs = book.runs(sweep.id)
    if search is None or not runs:
        return
    template = trials.template_of(runs[0].run)
    study = trials.load(sweep, book, template)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        _follow(book, sweep, study, trial)
    everything = study.get_trials(deepcopy=False)
    training = sum(trial.state == optuna.trial.TrialState.RUNNING for trial in everything)
    budget = studies.trial_budget(search, sweep.axes)
    queue = _Queue(book.store)
    while not search.stopped and training < search.parallel and len(everything) < budget:
        epochs = template.training_settings.epochs
        if search.max_epochs is not None and _epochs_committed(book, sweep) + epochs > search.max_epochs:
            break
        try:
            trials.ask(study, sweep, template, queue)
        except CnnLabError as error:
            book.store.log_event(runs[0].run.id, f"sweep {sweep.id}: a trial was refused: {error}", "warning")
        everything = study.get_trials(deepcopy=False)
        training = sum(trial.state == optuna.trial.TrialState.RUNNING for trial in everything)
    _refresh_importances(book, sweep, study)
    if training == 0:
        # Nothing trains and nothing more will be asked: the budget is spent, or the sweep was stopped.
        book.set_search(sweep.id, search, closed=True)
