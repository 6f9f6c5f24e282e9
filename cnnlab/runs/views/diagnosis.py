"""Why a run is going wrong: the rules that name a cause and a fix, from the figures a run records.

Four diagnoses, each judged at the end of a whole epoch from the epoch metrics (training and
validation loss and accuracy, learning rate) and the first batch's loss:

- `diverged`: the loss became NaN or infinite, or rose far above where it started and stayed
  there; the run ends `diverged` with a reason that names the learning rate;
- `not learning`: after enough epochs and batches the accuracy is still at chance and the loss has
  not fallen clearly below the loss of guessing (ln of the class count), nor is it falling;
- `overfitting`: the validation loss has been rising for several epochs while the training loss
  keeps falling (a warning: the run goes on);
- `plateau`: neither loss has improved for several epochs (a warning), unless the run is already
  good (99% accuracy, training or validation) or early stopping watches it (it ends a plateau itself).

A cause says what the recorded epochs show and why, a fix what to do; neither repeats the other
or the kind (the page shows the kind as the title), so each piece of advice is said once.

The worker records each diagnosis through the store (`Store.add_diagnosis`) as a row of its own
(`cnnlab.store.diagnoses.Diagnosis`: kind, epoch, cause, fix), with its line in the event log,
`[kind, epoch N] cause Fix: fix`, at level `error` (diverged) or `warning`; `read(store, run_id)`
gives the Train page and the CLI the rows. This module imports neither TensorFlow nor streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cnnlab.store.diagnoses import DIVERGED, KINDS, NOT_LEARNING, OVERFITTING, PLATEAU, Diagnosis
from cnnlab.store.reader import RunReader

__all__ = [
    "DIVERGED",
    "KINDS",
    "NOT_LEARNING",
    "OVERFITTING",
    "PLATEAU",
    "Diagnosis",
    "EpochFigures",
    "RunFacts",
]

# A healthy first epoch ends below its first batch's loss; three times above it is far outside the
# noise of a fresh model, so only a destructive step size gets there.
DIVERGENCE_FACTOR = 3.0
# Worse than guessing uniformly (ln of the class count) after having been clearly better than it
# (below this share of it) means the network has thrown away what it learned.
LEARNED_SHARE_OF_GUESSING = 0.9
# "Does not come back": the loss must stay that high for this many whole epochs in a row; one bad
# epoch that recovers is a spike, not a divergence.
DIVERGENCE_EPOCHS = 2
# Not learning waits for the evidence (issue 23: after 3 epochs it fired on 19 of 20 sweep runs, 16
# of which went on to learn; benchmarks/not_learning.py replays recorded sweep runs, and
# docs/performance.md has what it found). At least this many epochs...
NOT_LEARNING_EPOCHS = 5
# ...and this many optimizer steps in all, when the steps per epoch are known: a small learning rate
# or large batches can keep a network at chance for a hundred steps or more before it starts.
NOT_LEARNING_BATCHES = 150
# Accuracy within this many points of chance is chance: a network that learns anything beats it by
# more within a few epochs, and less is within the noise of a small validation set.
CHANCE_MARGIN = 0.1
# The training loss has not fallen meaningfully when its lowest is still above this share of the
# loss of guessing, ln(classes): a network that learns anything gets well below it.
NOT_LEARNING_SHARE_OF_GUESSING = 0.95
# ...and it is not on its way down: over the last NOT_LEARNING_EPOCHS it fell by less than this share.
# On the recorded sweep runs, those that went on to learn sat within 2% of guessing for 5-11 epochs but
# fell 1-2.4% every 5 epochs from the second; those that never learned fell 0-0.4% (lr too high: 0).
NOT_LEARNING_LOSS_CHANGE = 0.005
# Overfitting needs the validation loss above its lowest for this many epochs: one or two higher
# epochs are the noise of a small validation set.
OVERFITTING_EPOCHS = 3
# ...and above its lowest by at least this share, so a flat validation loss is not called a rise.
OVERFITTING_RISE = 0.1
# A plateau is this many epochs without progress: long enough to outlast a noisy stretch, short
# enough to warn while a change of learning rate can still help.
PLATEAU_EPOCHS = 5
# Progress is a loss at least this share below its best before those epochs.
PLATEAU_IMPROVEMENT = 0.02
# A training or validation accuracy this high has little left to learn: a flat loss then is
# convergence, not a plateau.
SOLVED_ACCURACY = 0.99
# A ReLU layer with at least this share of units that never fire has mostly died.
DEAD_SHARE = 0.5


@dataclass(frozen=True)
class EpochFigures:
    """What one whole epoch recorded, as the rules read it (None where it was not measured)."""

    epoch: int
    loss: float
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float = math.nan


@dataclass(frozen=True)
class RunFacts:
    """What the rules know about a run besides its epochs.

    Attributes:
        num_classes: Classes the model tells apart (2 for a single sigmoid output).
        chance_accuracy: The accuracy of always guessing the most frequent training class.
        first_loss: The loss of the fit's first batch (the untrained model), or NaN if unknown.
        early_stopping: True when early stopping watches the run: it ends a plateau by itself, so
            no plateau is diagnosed and no fix suggests turning it on.
        batches_per_epoch: The optimizer steps of one epoch (0 when unknown), for "not learning",
            which waits for enough of them.
    """

    num_classes: int
    chance_accuracy: float
    first_loss: float = math.nan
    early_stopping: bool = False
    batches_per_epoch: int = 0

    @property
    def guessing_loss(self) -> float:
        """The cross-entropy of guessing every class with equal probability, ln(classes)."""
        return math.log(max(self.num_classes, 2))


def recorded_history(store: RunReader, run_id: str) -> list[EpochFigures]:
    """The run's recorded epochs as the rules read them (the worker's `Diagnose` builds the same
    figures from the logs as the fit runs; this reads them back from the store)."""

    def number(value: object) -> float | None:
        return float(value) if isinstance(value, int | float) and math.isfinite(float(value)) else None

    figures = []
    for row in store.epoch_metrics(run_id).to_dict("records"):
        loss = number(row.get("loss"))
        if loss is None:
            continue
        rate = number(row.get("learning_rate"))
        figures.append(
            EpochFigures(
                epoch=int(row["epoch"]),
                loss=loss,
                accuracy=number(row.get("accuracy")),
                val_loss=number(row.get("val_loss")),
                val_accuracy=number(row.get("val_accuracy")),
                learning_rate=math.nan if rate is None else rate,
            )
        )
    return figures


def read(store: RunReader, run_id: str) -> list[Diagnosis]:
    """A run's diagnoses as the store keeps them, oldest first (for the Train page's messages and markers)."""
    return store.diagnoses(run_id)


def _too_high(learning_rate: float) -> str:
    return f"The learning rate {learning_rate:g} is probably too high."


def _diverged_fix(learning_rate: float) -> str:
    """What to do about a divergence: the only place that names lower rates to try."""
    lower = f"try {learning_rate / 10:g} or {learning_rate / 100:g}"
    return f"Lower the learning rate ({lower}), or add BatchNormalization after the convolutions."


def not_finite(loss: float, epoch: int, batch: int, learning_rate: float) -> Diagnosis:
    """The divergence of a loss that became NaN or infinite at `epoch`, `batch` (both from 1)."""
    return Diagnosis(
        DIVERGED,
        epoch,
        f"The loss became {loss} at epoch {epoch}, batch {batch}. {_too_high(learning_rate)}",
        _diverged_fix(learning_rate),
    )


def _is_high(loss: float, lowest_before: float, facts: RunFacts) -> bool:
    if math.isfinite(facts.first_loss) and loss > DIVERGENCE_FACTOR * facts.first_loss:
        return True
    return loss > facts.guessing_loss and lowest_before < LEARNED_SHARE_OF_GUESSING * facts.guessing_loss


def diverged(history: Sequence[EpochFigures], facts: RunFacts) -> Diagnosis | None:
    """`diverged` when the loss stayed far above its start for `DIVERGENCE_EPOCHS` epochs in a row.

    Far above: more than `DIVERGENCE_FACTOR` times the first batch's loss, or above the loss of
    uniform guessing after an epoch clearly below it.
    """
    if len(history) < DIVERGENCE_EPOCHS:
        return None
    window = history[-DIVERGENCE_EPOCHS:]
    earlier = [figures.loss for figures in history[:-DIVERGENCE_EPOCHS]]
    lowest_before = min(earlier, default=math.inf)
    if not all(_is_high(figures.loss, lowest_before, facts) for figures in window):
        return None
    last = window[-1]
    # Say what the recorded epochs show: each epoch's loss, and whether it is falling back.
    losses = ", ".join(f"{figures.loss:.3g} at epoch {figures.epoch}" for figures in window)
    by_start = math.isfinite(facts.first_loss) and all(
        figures.loss > DIVERGENCE_FACTOR * facts.first_loss for figures in window
    )
    if by_start:
        shown = (
            f"The loss started at {facts.first_loss:.3g} and has stayed more than "
            f"{DIVERGENCE_FACTOR:g} times higher for {len(window)} epochs ({losses})"
        )
    else:
        shown = (
            f"The loss had come down to {lowest_before:.3g}, then went back above "
            f"{facts.guessing_loss:.3g} (the loss of guessing) for {len(window)} epochs ({losses})"
        )
    if last.loss < window[0].loss:
        shown += "; it is falling again, but still far too high"
    return Diagnosis(
        DIVERGED, last.epoch, f"{shown}. {_too_high(last.learning_rate)}", _diverged_fix(last.learning_rate)
    )


def _accuracy(figures: EpochFigures) -> float | None:
    return figures.val_accuracy if figures.val_accuracy is not None else figures.accuracy


def not_learning(
    history: Sequence[EpochFigures], facts: RunFacts, dead_shares: Mapping[str, float] | None = None
) -> Diagnosis | None:
    """`not learning` once the evidence is there: after `NOT_LEARNING_EPOCHS` epochs and
    `NOT_LEARNING_BATCHES` batches, the accuracy of the last `NOT_LEARNING_EPOCHS` stayed at chance,
    the training loss never got below `NOT_LEARNING_SHARE_OF_GUESSING` of the loss of guessing
    (ln(classes)), and it fell by less than `NOT_LEARNING_LOSS_CHANGE` over those epochs.

    `dead_shares` (ReLU layer name to the share of its units that never fire) names dead layers
    among the possible causes.
    """
    batches = len(history) * facts.batches_per_epoch
    if len(history) < NOT_LEARNING_EPOCHS or (facts.batches_per_epoch and batches < NOT_LEARNING_BATCHES):
        return None
    window = history[-NOT_LEARNING_EPOCHS:]
    accuracies = [_accuracy(figures) for figures in window]
    if any(accuracy is None or accuracy > facts.chance_accuracy + CHANCE_MARGIN for accuracy in accuracies):
        return None
    guessing, lowest = facts.guessing_loss, min(figures.loss for figures in history)
    if lowest < NOT_LEARNING_SHARE_OF_GUESSING * guessing:
        return None
    first, last = window[0].loss, window[-1].loss
    if first - last >= NOT_LEARNING_LOSS_CHANGE * abs(first):
        return None
    causes = [f"the learning rate {window[-1].learning_rate:g} may be far too low (or far too high)"]
    dead = {name: share for name, share in (dead_shares or {}).items() if share >= DEAD_SHARE}
    causes += [f"{share:.0%} of the units of {name} never fire (dying ReLU)" for name, share in dead.items()]
    causes.append("the last layer may have the wrong activation (softmax over the classes)")
    which = "validation" if window[-1].val_accuracy is not None else "training"
    steps = f" ({batches:,} batches)" if batches else ""
    return Diagnosis(
        NOT_LEARNING,
        window[-1].epoch,
        f"After {len(history)} epochs{steps} the {which} accuracy is {accuracies[-1]:.0%} "
        f"(chance is {facts.chance_accuracy:.0%}) and the training loss has never gone clearly below "
        f"{guessing:.4g}, the loss of guessing every class equally (lowest {lowest:.4g}; "
        f"{first:.4g} to {last:.4g} over the last {NOT_LEARNING_EPOCHS} epochs). "
        f"Possible causes: {'; '.join(causes)}.",
        "Run the learning-rate finder and use its suggestion (with Adam, 0.001 is a safe start); check "
        "the Layer health tab for dead ReLUs and that the last layer is a softmax over the classes.",
    )


def overfitting(history: Sequence[EpochFigures], early_stopping: bool = False) -> Diagnosis | None:
    """`overfitting` when the validation loss stayed above its lowest for `OVERFITTING_EPOCHS`
    epochs (by `OVERFITTING_RISE` now) while the training loss fell below its value at that lowest
    and below the validation loss (the gap that memorising opens).

    `early_stopping`: the run has early stopping on already, so the fix does not suggest it."""
    measured = [(figures, figures.val_loss) for figures in history if figures.val_loss is not None]
    if len(measured) <= OVERFITTING_EPOCHS:
        return None
    lowest, lowest_value = min(measured, key=lambda pair: pair[1])
    last, last_value = measured[-1]
    since = last.epoch - lowest.epoch
    if since < OVERFITTING_EPOCHS or last_value <= lowest_value * (1 + OVERFITTING_RISE):
        return None
    if last.loss >= lowest.loss:
        return None
    if last_value <= last.loss:
        # Validation still fits better than training (dropout and augmentation make the training
        # loss the harder one): a small wobble of a tiny validation loss is no memorising.
        return None
    return Diagnosis(
        OVERFITTING,
        last.epoch,
        f"The validation loss has been above its lowest (epoch {lowest.epoch}) for {since} "
        f"epochs and rose from {lowest_value:.3g} to {last_value:.3g}, while the training loss "
        f"kept falling ({lowest.loss:.3g} to {last.loss:.3g}): the network is memorising the training images.",
        "Add Dropout or data augmentation, "
        + ("" if early_stopping else "turn on early stopping (it keeps the best epoch), ")
        + "use a smaller model, or train on more images.",
    )


def _stalled(values: Sequence[float]) -> bool:
    before, window = values[:-PLATEAU_EPOCHS], values[-PLATEAU_EPOCHS:]
    best_before = min(before)
    return min(window) > best_before - PLATEAU_IMPROVEMENT * abs(best_before)


def _solved(history: Sequence[EpochFigures]) -> bool:
    """True when the last training accuracy, or any validation accuracy, reached `SOLVED_ACCURACY`."""
    last = history[-1].accuracy
    validation = [figures.val_accuracy for figures in history if figures.val_accuracy is not None]
    return (last is not None and last >= SOLVED_ACCURACY) or max(validation, default=0.0) >= SOLVED_ACCURACY


def plateau(history: Sequence[EpochFigures]) -> Diagnosis | None:
    """`plateau` when neither the training nor the validation loss improved by `PLATEAU_IMPROVEMENT`
    on its best in the last `PLATEAU_EPOCHS` epochs, unless the run is solved (`_solved`)."""
    if len(history) <= PLATEAU_EPOCHS or _solved(history):
        return None
    last = history[-1]
    if not _stalled([figures.loss for figures in history]):
        return None
    validation = [figures.val_loss for figures in history if figures.val_loss is not None]
    if len(validation) == len(history) and not _stalled(validation):
        return None
    best = min(figures.loss for figures in history[:-PLATEAU_EPOCHS])
    since = min(figures.loss for figures in history[-PLATEAU_EPOCHS:])
    first_rate, rate = history[0].learning_rate, last.learning_rate
    if rate < first_rate / 10:
        # A schedule has shrunk the steps until they change nothing.
        why = f"the schedule has lowered the learning rate from {first_rate:g} to {rate:g}"
        fix = "Let the schedule lower the learning rate more slowly (a decay rate closer to 1, or "
        fix += "reduce on plateau), or restart from this epoch with a larger learning rate."
    else:
        why = f"the learning rate is {rate:g}"
        fix = "Use a learning-rate schedule (step, or reduce on plateau) or try a larger learning rate "
        fix += f"(e.g. {rate * 3:g}); if the accuracy is good enough, stop here."
    return Diagnosis(
        PLATEAU,
        last.epoch,
        f"The loss has not improved by {PLATEAU_IMPROVEMENT:.0%} in the last {PLATEAU_EPOCHS} "
        f"epochs (best {best:.4g} before them, {since:.4g} since); {why}.",
        fix,
    )


def examine(
    history: Sequence[EpochFigures],
    facts: RunFacts,
    reported: set[str] | frozenset[str] = frozenset(),
    dead_shares: Mapping[str, float] | None = None,
) -> list[Diagnosis]:
    """The diagnoses the history shows now, leaving out kinds already `reported`.

    A divergence outranks everything; "not learning" outranks a plateau (it is a plateau from the
    start); with early stopping on there is no plateau (early stopping ends one itself, see
    `RunFacts.early_stopping`).
    """
    found = diverged(history, facts)
    if found is not None:
        return [found] if DIVERGED not in reported else []
    findings = [
        not_learning(history, facts, dead_shares),
        overfitting(history, facts.early_stopping),
        None if NOT_LEARNING in reported or facts.early_stopping else plateau(history),
    ]
    results = [item for item in findings if item is not None and item.kind not in reported]
    if any(item.kind == NOT_LEARNING for item in results):
        results = [item for item in results if item.kind != PLATEAU]
    return results
